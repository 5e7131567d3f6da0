"""Cards from concepts. Pure: no database, no clock.

Every concept yields a `definition` card (title -> summary and definition), a `reverse` card
(summary -> title), one `formula-N` card per formula, and its own cards. A card's key is stable
under edits of its text (the card keeps its history); a cloze card yields one card per number.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from kb.schema import ClozeCard, Concept

CLOZE_RE = re.compile(r"\{\{c(\d+)::(.*?)(?:::(.*?))?\}\}", re.DOTALL)


@dataclass(frozen=True)
class DerivedCard:
    """One reviewable card: `key` is unique within its concept; `payload` is what the quiz shows."""

    key: str
    kind: str
    payload: dict

    @property
    def content_hash(self) -> str:
        text = json.dumps(self.payload, sort_keys=True, ensure_ascii=False)
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def cloze_numbers(text: str) -> list[int]:
    return sorted({int(m.group(1)) for m in CLOZE_RE.finditer(text)})


def derive_cards(concept: Concept) -> list[DerivedCard]:
    cards = [
        DerivedCard(
            "definition",
            "definition",
            {"title": concept.title.model_dump(), "summary": concept.summary.model_dump(), "definition": concept.definition},
        ),
        DerivedCard("reverse", "reverse", {"summary": concept.summary.model_dump(), "title": concept.title.model_dump()}),
    ]
    for i, formula in enumerate(concept.formulas):
        cards.append(DerivedCard(f"formula-{i}", "formula", formula.model_dump()))
    for i, spec in enumerate(concept.cards):
        key = spec.id or f"card-{i}"
        payload = spec.model_dump(exclude_none=True)
        if isinstance(spec, ClozeCard):
            for number in cloze_numbers(spec.text) or [1]:
                cards.append(DerivedCard(f"{key}-c{number}", "cloze", {**payload, "cloze": number}))
        else:
            cards.append(DerivedCard(key, spec.type, payload))
    return cards
