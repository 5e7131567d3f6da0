"""What trusting a snippet covers: every string kb executes for a concept.

Functions: executed_strings, executed_from_concept, trust_hash, describe_changes. Pure.

A concept's snippet code runs, and so does the `answer` of each of its computed cards (evaluated in
the snippet's namespace after it passes). Trust is recorded as one hash over all of them, so an
update that only adds or edits a computed card's expression is untrusted again, exactly like an
edit of the code. Labels name each string as a user would find it in the file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from typing import Any

CODE_LABEL = "snippet code"


def _card_label(card_id: str | None, position: int) -> str:
    return f"computed card {card_id or f'card-{position}'}"  # the card key kb.quiz derives


def executed_strings(data: Mapping[str, Any]) -> dict[str, str]:
    """label -> source, for a concept as stored (its canonical JSON, as a dict); {} without a snippet."""
    snippet = data.get("snippet")
    if not snippet:
        return {}
    out = {CODE_LABEL: snippet["code"]}
    for position, card in enumerate(data.get("cards") or ()):
        if card.get("type") == "computed":
            out[_card_label(card.get("id"), position)] = card["answer"]
    return out


def executed_from_concept(concept: Any) -> dict[str, str]:
    """The same as executed_strings, from a validated kb.schema.Concept."""
    if concept.snippet is None:
        return {}
    out = {CODE_LABEL: concept.snippet.code}
    for position, card in enumerate(concept.cards):
        if card.type == "computed":
            out[_card_label(card.id, position)] = card.answer
    return out


def trust_hash(executed: Mapping[str, str]) -> str | None:
    """The hash `kb trust` records and every run is checked against; None when nothing runs."""
    if not executed:
        return None
    payload = json.dumps(sorted(executed.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=12).hexdigest()


def describe_changes(trusted: Mapping[str, str] | None, current: Mapping[str, str]) -> list[str]:
    """One line per executed string that differs from what was trusted.

    `trusted` is None when only the hash was recorded (trust given before kb kept the strings):
    then the change cannot be itemised.
    """
    if trusted is None:
        return ["changed since trusted (this kb recorded only a hash then; read the snippet and its computed cards)"]
    lines = []
    for label in sorted(set(trusted) | set(current), key=lambda name: (name != CODE_LABEL, name)):
        before, after = trusted.get(label), current.get(label)
        if before == after:
            continue
        if before is None:
            lines.append(f"{label} added: {_one_line(after)}")
        elif after is None:
            lines.append(f"{label} removed")
        elif "\n" in before or "\n" in after:
            diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0))
            added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
            removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
            lines.append(f"{label} changed (+{added} -{removed} lines)")
        else:
            lines.append(f"{label} changed: {_one_line(before)} -> {_one_line(after)}")
    return lines


def _one_line(text: str | None, limit: int = 500) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
