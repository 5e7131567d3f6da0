"""Command palette: find a concept by title, alias or tag, in English or Chinese."""

from __future__ import annotations

from functools import partial
from typing import cast

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content


class ConceptProvider(Provider):
    """Searches the knowledge base (the same full-text search as `/`) as the user types."""

    async def discover(self) -> Hits:
        kb = getattr(self.app, "kb", None)
        if kb is None:
            return
        for concept in (await self._list(kb))[:30]:
            title = f"{concept['title']['en']} / {concept['title']['zh']}"
            # Content, not str: deck text must never be parsed as markup ("a[i]", "[/x]").
            category = Content(concept["category"])
            yield DiscoveryHit(Content(title), partial(self._open, concept["id"]), text=title, help=category)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        kb = getattr(self.app, "kb", None)
        if kb is None or not query.strip():
            return
        import asyncio

        hits = await asyncio.to_thread(kb.search, query, limit=20)
        for rank, hit in enumerate(hits):
            title = f"{hit.title_en} / {hit.title_zh}"
            yield Hit(
                1.0 - rank / 40,
                Content(title),
                partial(self._open, hit.id),
                text=title,
                help=Content(f"{hit.id} · {hit.category}"),  # type: ignore[arg-type]
            )

    async def _list(self, kb):
        import asyncio

        return await asyncio.to_thread(kb.list_concepts)

    def _open(self, concept_id: str) -> None:
        from app.app import KBApp

        cast(KBApp, self.app).open_concept(concept_id)
