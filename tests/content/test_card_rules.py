"""Rules every bundled card is held to, so that each can be learned and graded fairly.

- a cloze deletion is not visible in the rest of its own text (in either language);
- a choice card's answer is not also one of its distractors (in either language);
- a typed card's question does not contain its own answer;
- no card text (a question, a front, a cloze) is repeated in another concept.
"""

from __future__ import annotations

import re
from collections import defaultdict

from kb.bilingual import both_languages, localized
from kb.quiz import CLOZE_RE, normalize_answer

from .test_chinese import _entries

MIN_REVEALING = 4  # shorter deletions ("0", "K") occur by chance in any text


def _cloze_leaks(text: str) -> list[str]:
    leaks = []
    for match in CLOZE_RE.finditer(text):
        answer = normalize_answer(match.group(2))
        rest = normalize_answer(text[: match.start()] + " " + text[match.end() :])
        number = match.group(1)
        rest = normalize_answer(CLOZE_RE.sub(lambda m, n=number: m.group(2) if m.group(1) != n else "", rest))
        if len(answer) >= MIN_REVEALING and answer in rest:
            leaks.append(match.group(2))
    return leaks


def test_no_cloze_deletion_is_visible_in_the_rest_of_its_text():
    leaks = [
        f"{concept.id}/{card.id}: {leak!r}"
        for concept in _entries()
        for card in concept.cards
        if card.type == "cloze"
        for side in both_languages(card.text)
        for leak in _cloze_leaks(side)
    ]
    assert not leaks, leaks


def test_no_choice_answer_is_also_a_distractor():
    bad = []
    for concept in _entries():
        for card in concept.cards:
            if card.type != "choice":
                continue
            for language in ("en", "zh"):
                answer = normalize_answer(localized(card.answer, language))
                if answer in {normalize_answer(localized(d, language)) for d in card.distractors}:
                    bad.append(f"{concept.id}/{card.id} ({language})")
    assert not bad, bad


def test_no_typed_question_contains_its_own_answer():
    bad = []
    for concept in _entries():
        for card in concept.cards:
            if card.type != "typed":
                continue
            for language in ("en", "zh"):
                question = normalize_answer(localized(card.question, language))
                first = localized(card.answer, language).split("|")[0]
                answer = normalize_answer(first)
                if len(answer) >= MIN_REVEALING and not re.fullmatch(r"[-\d.,\s]+", answer) and answer in question:
                    bad.append(f"{concept.id}/{card.id} ({language}): {first!r}")
    assert not bad, bad


def test_no_card_text_is_repeated_in_another_concept():
    seen: dict[str, set[str]] = defaultdict(set)
    for concept in _entries():
        for card in concept.cards:
            for field in ("question", "front", "text"):
                value = getattr(card, field, None)
                if value is not None:
                    seen[normalize_answer(localized(value, "en"))].add(concept.id)
    repeated = {text[:80]: sorted(ids) for text, ids in seen.items() if len(ids) > 1}
    assert not repeated, repeated
