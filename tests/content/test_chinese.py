"""Every text a learner reads in a bundled entry is in Chinese too.

A field counts as Chinese when it is `{en, zh}` with Chinese characters in `zh`, or a text with
nothing to translate (a name, a number, a formula, code: no two English words in a row).
`definition_zh` must be as complete as the English: at least 35% as many characters (Chinese
takes 40-60% of the characters English does for the same text; the old, partial ones were 17-30%).
"""

from __future__ import annotations

import re

from kb.config import BUNDLED_CONTENT
from kb.loader import parse_file

HAN = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_PHRASE = re.compile(r"[A-Za-z]{2,}[ ]+[A-Za-z]{2,}")


def _entries():
    for path in sorted(BUNDLED_CONTENT.rglob("*.yaml")):
        result = parse_file(path)
        assert result.concept is not None, result.errors
        yield result.concept


def _fields(concept) -> list[tuple[str, object]]:
    fields: list[tuple[str, object]] = []
    for i, formula in enumerate(concept.formulas):
        fields.append((f"formulas[{i}].name", formula.name))
        fields += [(f"formulas[{i}].where[{symbol}]", meaning) for symbol, meaning in formula.where.items()]
    fields += [(f"pitfalls[{i}]", pitfall) for i, pitfall in enumerate(concept.pitfalls)]
    for card in concept.cards:
        for name in ("front", "back", "text", "question", "note"):
            if getattr(card, name, None) is not None:
                fields.append((f"{card.id}.{name}", getattr(card, name)))
        if card.type in ("choice", "typed"):
            fields.append((f"{card.id}.answer", card.answer))
        for i, distractor in enumerate(getattr(card, "distractors", [])):
            fields.append((f"{card.id}.distractors[{i}]", distractor))
    return fields


def _has_chinese(value: object) -> bool:
    if isinstance(value, str):
        return not ENGLISH_PHRASE.search(value)  # nothing to translate
    # {en, zh}: Chinese in zh, unless the text is a name, number or formula in both.
    return bool(HAN.search(value.zh)) or not ENGLISH_PHRASE.search(value.en)


def test_every_user_visible_field_of_every_bundled_entry_has_chinese():
    missing, total = [], 0
    for concept in _entries():
        for name, value in _fields(concept):
            total += 1
            if not _has_chinese(value):
                missing.append(f"{concept.id}: {name}")
    assert total > 2000
    assert not missing, f"{len(missing)} of {total} fields have no Chinese: {missing[:20]}"


def test_every_chinese_definition_is_as_complete_as_the_english():
    short = []
    for concept in _entries():
        zh = concept.definition_zh or ""
        if len(zh) < 0.35 * len(concept.definition):
            short.append(f"{concept.id}: {len(zh)} characters against {len(concept.definition)}")
    assert not short, short
