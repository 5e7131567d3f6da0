"""The facade the CLI and the TUI call: one place for each use case (Anki's "Collection").

It returns plain dicts and dataclasses, never table rows, and opens the database lazily so that
`import kb.service` stays cheap.
"""

from __future__ import annotations

import difflib
import platform
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

from kb.config import Settings, load_settings
from kb.loader import CheckReport, check_files, find_yaml_files


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SearchHit:
    id: str
    title_en: str
    title_zh: str
    category: str
    snippet_text: str

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": {"en": self.title_en, "zh": self.title_zh},
            "category": self.category,
            "snippet_text": self.snippet_text,
        }


class KnowledgeBase:
    """The knowledge base of one KB_HOME: its decks and its database."""

    def __init__(self, settings: Settings | None = None, *, clock: Callable[[], datetime] = utc_now):
        self.settings = settings or load_settings()
        self.clock = clock
        self._engine = None

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def engine(self):
        if self._engine is None:
            from kb.store.engine import open_engine  # sqlmodel costs ~0.4 s: only when needed

            self._engine = open_engine(self.settings.db_path)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- content -------------------------------------------------------------------------------

    def sync(self):
        from kb.store.ingest import sync_decks

        self.settings.notes_dir.mkdir(parents=True, exist_ok=True)
        return sync_decks(self.engine, self.settings.decks(), now=self.clock())

    def deck_files(self) -> list[Path]:
        files = []
        for deck in self.settings.decks():
            if deck.path.is_dir():
                files.extend(find_yaml_files(deck.path))
        return files

    def check(self, paths: list[Path] | None = None) -> CheckReport:
        """Validate files without touching the database. Given paths, ids of the decks count as known."""
        if not paths:
            return check_files(self.deck_files())
        targets: list[Path] = []
        for path in paths:
            targets.extend(find_yaml_files(path) if path.is_dir() else [path])
        resolved = {p.resolve() for p in targets}
        others = check_files([p for p in self.deck_files() if p.resolve() not in resolved])
        known = {item.concept.id for item in others.parsed if item.concept is not None}
        return check_files(targets, extra_known_ids=known)

    def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        from kb.store.queries import search

        return [SearchHit(r.id, r.title_en, r.title_zh, r.category, r.snippet_text) for r in search(self.engine, query, limit=limit)]

    def concept_ids(self) -> list[str]:
        from kb.store.queries import all_concept_ids

        return all_concept_ids(self.engine)

    def suggest_ids(self, concept_id: str) -> list[str]:
        return difflib.get_close_matches(concept_id, self.concept_ids(), n=3, cutoff=0.6)

    def show(self, concept_id: str) -> dict | None:
        """The concept as loaded (every schema field) plus its cards, last run and origin."""
        from kb.store.queries import cards_of, concept_data, last_run

        stored = concept_data(self.engine, concept_id)
        if stored is None:
            return None
        out = dict(stored["data"])
        out["cards"] = cards_of(self.engine, concept_id)
        out["last_run"] = last_run(self.engine, concept_id)
        out["source_path"] = stored["source_path"]
        out["retired"] = stored["retired"]
        return out

    # --- diagnostics ---------------------------------------------------------------------------

    def doctor(self) -> dict:
        from kb.store.engine import quick_check
        from kb.store.queries import counts

        def version(name: str) -> str | None:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return None

        import yaml

        info = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version,
            "libyaml": bool(getattr(yaml, "__with_libyaml__", False)),
            "packages": {n: version(n) for n in ("mlkb", "textual", "sqlmodel", "pydantic", "pyyaml", "numpy", "torch", "fsrs")},
            "kb_home": str(self.settings.home),
            "database": str(self.settings.db_path),
            "decks": [
                {"name": d.name, "path": str(d.path), "trusted": d.trusted, "exists": d.path.is_dir()}
                for d in self.settings.decks()
            ],
        }
        info["integrity"] = quick_check(self.engine)
        info["counts"] = counts(self.engine)
        info["executable"] = sys.executable
        return info


def json_schema() -> dict:
    from kb.schema import json_schema as build

    return build()
