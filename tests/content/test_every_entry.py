"""The bar every bundled entry meets, checked across the whole of content/ at once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kb.bilingual import both_languages, localized
from kb.loader import check_files, find_yaml_files

CONTENT = Path(__file__).resolve().parents[2] / "content"
FILES = find_yaml_files(CONTENT)
REPORT = check_files(FILES)
PARSED = {item.path.name: item for item in REPORT.parsed}


def test_the_bundled_content_is_complete_and_clean():
    assert len(FILES) >= 100
    assert REPORT.errors == []


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_entry_meets_the_bar(path, computed_value):
    item = PARSED[path.name]
    concept = item.concept
    assert concept is not None
    assert path.read_text(encoding="utf-8").splitlines()[0] == "# yaml-language-server: $schema=../schema.json"
    assert path.stem == concept.id and path.parent.name == concept.category
    assert concept.title.en.strip() and concept.title.zh.strip() and concept.definition_zh
    assert any(re.search(r"[\u4e00-\u9fff]", alias) for alias in concept.aliases), "a Chinese alias, for search"
    assert concept.sources, "the paper or official documentation"
    assert all(source.url.startswith("https://") for source in concept.sources)
    assert concept.related or concept.prerequisites
    assert concept.id not in concept.related + concept.prerequisites
    assert len(concept.cards) >= 4 and len({card.type for card in concept.cards}) >= 2
    assert len({card.id for card in concept.cards}) == len(concept.cards), "every card has its own stable id"
    for card in concept.cards:
        if card.type == "cloze":
            for text in both_languages(card.text):
                numbers = sorted({int(n) for n in re.findall(r"\{\{c(\d+)::", text)})
                assert numbers == list(range(1, len(numbers) + 1)) and numbers, (
                    f"{card.id}: clozes c1, c2, ... in order"
                )
        elif card.type == "choice":
            assert len(card.distractors) >= 3, card.id
            for language in ("en", "zh"):  # in each language, the answer is not one of the distractors
                shown = [localized(d, language) for d in card.distractors]
                assert localized(card.answer, language) not in shown, f"{card.id} ({language})"
        elif card.type == "computed":
            assert computed_value(concept.id, card.id) is not None, f"{card.id}: the snippet computes it"
    if concept.status == "verified":
        assert concept.snippet is not None and "assert" in concept.snippet.code
        assert concept.pitfalls
    for formula in concept.formulas:
        assert formula.where, f"{formula.name}: every symbol explained"
