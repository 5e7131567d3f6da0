"""Structural checks of the five exemplary entries: the bar the rest of the content follows."""

from __future__ import annotations

import re

import pytest

from kb.bilingual import both_languages, localized
from kb.schema import Concept

EXEMPLARY = ("softmax", "ema-weights", "kl-divergence", "self-attention", "psnr")
SCHEMA_LINE = "# yaml-language-server: $schema=../schema.json"


@pytest.fixture(params=EXEMPLARY)
def concept_id(request) -> str:
    return request.param


def test_validates_against_schema(concept_id, load_entry):
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.id == concept_id


def test_first_line_points_at_schema(concept_id, entry_path):
    with entry_path(concept_id).open(encoding="utf-8") as fh:
        assert fh.readline().rstrip("\n") == SCHEMA_LINE


def test_file_lives_under_its_category(concept_id, load_entry, entry_path):
    assert entry_path(concept_id).parent.name == load_entry(concept_id)["category"]


def test_cards_are_varied_and_uniquely_named(concept_id, load_entry):
    cards = Concept.model_validate(load_entry(concept_id)).cards
    assert len(cards) >= 4
    assert len({c.type for c in cards}) >= 3
    ids = [c.id for c in cards]
    assert all(ids) and len(set(ids)) == len(ids), "every card needs a unique, stable id"
    assert any(c.type == "computed" for c in cards)


def test_cloze_cards_use_anki_syntax(concept_id, load_entry):
    for card in Concept.model_validate(load_entry(concept_id)).cards:
        if card.type == "cloze":
            for text in both_languages(card.text):
                numbers = re.findall(r"\{\{c(\d+)::[^}]+\}\}", text)
                assert numbers, card.id
                assert sorted(set(map(int, numbers))) == list(range(1, len(set(numbers)) + 1)), card.id


def test_choice_cards_have_distractors(concept_id, load_entry):
    for card in Concept.model_validate(load_entry(concept_id)).cards:
        if card.type == "choice":
            assert len(card.distractors) >= 2, card.id
            for language in ("en", "zh"):
                assert localized(card.answer, language) not in [localized(d, language) for d in card.distractors]


def test_computed_cards_evaluate(concept_id, load_entry, computed_value):
    for card in Concept.model_validate(load_entry(concept_id)).cards:
        if card.type == "computed":
            assert computed_value(concept_id, card.id) is not None, card.id


def test_formulas_explain_their_symbols(concept_id, load_entry):
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.formulas
    for formula in concept.formulas:
        assert formula.where, formula.name


def test_entry_is_complete(concept_id, load_entry):
    concept = Concept.model_validate(load_entry(concept_id))
    assert concept.definition_zh
    assert len(concept.pitfalls) >= 3
    assert concept.sources and all(s.url.startswith("https://") for s in concept.sources)
    assert concept.snippet is not None and "torch" in concept.snippet.requires
    assert "computed-card" in concept.tags
    assert any(re.search(r"[\u4e00-\u9fff]", a) for a in concept.aliases), "needs a Chinese alias"


def test_references_point_at_existing_entries(concept_id, load_entry, content_root):
    known = {p.stem for p in content_root.glob("**/*.yaml")}
    concept = Concept.model_validate(load_entry(concept_id))
    assert set(concept.related) <= known
    assert set(concept.prerequisites) <= known
    assert concept_id not in concept.related + concept.prerequisites


def test_snippet_prints_something(concept_id, run_entry, snippet_output):
    run_entry(concept_id)
    assert snippet_output(concept_id).strip()
