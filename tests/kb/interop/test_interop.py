"""Anki, JSON and Markdown interop: exports checked by the real Anki library, and imports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers import FIXED_NOW, write_concept
from kb.bilingual import localized
from kb.cli import main
from kb.config import BUNDLED_CONTENT, Settings
from kb.interop.anki import build_notes
from kb.interop.anki_import import concepts_from_notes, read_package
from kb.interop.html_text import from_html, to_html
from kb.service import KnowledgeBase, export_anki, export_json, export_markdown, import_anki
from kb.store.queries import export_rows

CARDS = """\
formulas:
  - name: stable softmax
    latex: 'p_i = \\frac{e^{z_i - m}}{\\sum_k e^{z_k - m}}, \\; a < b'
    where: {z: the scores, m: 'the largest score, \\max_j z_j'}
cards:
  - {type: basic, id: logits, front: 'Does <b> stay text? a[i] & $x^2$', back: Raw logits.}
  - {type: cloze, id: shift, text: 'Subtracting the {{c1::maximum}} keeps {{c2::exp}} from overflowing.'}
  - {type: choice, id: range, question: Can it be 0?, answer: 'Yes, by underflow', distractors: ['No', 'Only in fp16']}
  - {type: typed, id: sum, question: What do the outputs sum to?, answer: '1|one'}
  - {type: computed, id: value, question: The value?, answer: 'round(p, 4)'}
related: [other]
"""


@pytest.fixture
def small(kb: KnowledgeBase, deck: Path) -> KnowledgeBase:
    """A deck of two concepts: one with every card type, a formula and a Chinese title."""
    path = write_concept(deck, "softmax", title_en="Softmax", title_zh="归一化指数函数", extra=CARDS, definition="DEF")
    code = "Exponentiate, then normalise:\n\n  ```python\n  p = z.exp() / z.exp().sum()\n  ```"
    path.write_text(path.read_text(encoding="utf-8").replace("DEF", code), encoding="utf-8")
    write_concept(deck, "other", category="vision", title_zh="其他")
    kb.sync()
    return kb


def _by_id(notes):
    return {n.card_id: n for n in notes}


def test_notes_one_per_card_cloze_per_spec_and_computed_skipped(small):
    notes, skipped = build_notes(export_rows(small.engine), deck="kb")
    by_id = _by_id(notes)
    assert skipped == ["softmax/value"]  # no passing run yet
    assert by_id["softmax/shift"].model == "cloze" and by_id["softmax/shift"].cards == 2
    assert "softmax/shift-c1" not in by_id
    assert by_id["softmax/sum"].model == "typed" and by_id["softmax/sum"].fields[1] == "1"
    assert "also accepted: one" in by_id["softmax/sum"].fields[2]
    choice = by_id["softmax/range"].fields[0]
    assert choice.count("<li>") == 3 and "Only in fp16" in choice
    basic = by_id["softmax/logits"].fields[0]
    assert "&lt;b&gt;" in basic and r"\(x^2\)" in basic and "<b>" not in basic
    formula = by_id["softmax/formula-0"].fields[1]
    assert formula.startswith(r"\[p_i = \frac") and "a &lt; b" in formula and r"\(m\)" in formula
    definition = by_id["softmax/definition"]
    assert "归一化指数函数" in definition.fields[0] and 'class="highlight"' in definition.fields[1]
    assert definition.deck == "kb::fundamentals" and by_id["other/definition"].deck == "kb::vision"
    assert definition.tags == ("fundamentals",)
    # GUIDs come from card ids: the same on every export, distinct across cards.
    again = _by_id(build_notes(export_rows(small.engine), deck="other")[0])
    assert all(again[k].guid == n.guid for k, n in by_id.items())
    assert len({n.guid for n in notes}) == len(notes)


def test_computed_card_exported_with_its_value_after_a_passing_run(small):
    from kb.store.queries import record_run

    record_run(
        small.engine,
        "softmax",
        {
            "code_hash": "x",
            "status": "passed",
            "device": "cpu",
            "duration_s": 0.1,
            "output": "",
            "truncated": False,
            "values_json": json.dumps({"round(p, 4)": {"value": 0.2689}}),
        },
        now=FIXED_NOW,
    )
    notes, skipped = build_notes(export_rows(small.engine), deck="kb")
    assert skipped == [] and _by_id(notes)["softmax/value"].fields[1] == "0.2689"


def test_html_round_trip_keeps_text():
    text = "Use $a < b$ & `x[i]`:\n\n$$\\sum_i a_i$$\n```python\nprint('<&>')\n```\nDone."
    assert from_html(to_html(text)) == text
    assert from_html("<div>Hello&nbsp;<b>world</b></div><div>two<br>three</div>") == "Hello world\ntwo\nthree"


def _anki_collection(tmp_path: Path, name: str = "c"):
    anki_collection = pytest.importorskip("anki.collection")
    return anki_collection, anki_collection.Collection(str(tmp_path / f"{name}.anki2"))


def _anki_import(module, col, package: Path):
    request = module.ImportAnkiPackageRequest(
        package_path=str(package), options=module.ImportAnkiPackageOptions(merge_notetypes=True)
    )
    return col.import_anki_package(request)


def test_export_imports_into_anki_and_again_adds_nothing(small, tmp_path):
    module, col = _anki_collection(tmp_path)
    out = tmp_path / "kb.apkg"
    result = export_anki(small, out)
    try:
        _anki_import(module, col, out)
        assert col.note_count() == result.notes and col.card_count() == result.cards
        cloze = col.get_note(col.find_notes("note:kb*Cloze")[0])
        assert len(cloze.cards()) == 2 and "{{c2::exp}}" in cloze["Text"]
        [formula] = col.find_notes('"front:stable softmax"')
        assert r"\frac{e^{z_i - m}}" in col.get_note(formula)["Back"]
        [definition] = col.find_notes("front:*归一化指数函数*")
        assert "kb::fundamentals" in col.decks.all_names()
        assert col.decks.name(col.get_note(definition).cards()[0].did) == "kb::fundamentals"
        log = _anki_import(module, col, out).log
        assert len(log.new) == 0 and col.note_count() == result.notes and col.card_count() == result.cards
        # A later export matches the same notes by GUID.
        export_anki(small, tmp_path / "again.apkg")
        assert len(_anki_import(module, col, tmp_path / "again.apkg").log.new) == 0
        assert col.note_count() == result.notes
    finally:
        col.close()


def test_bundled_content_round_trip(tmp_path):
    """The whole bundled content: Anki takes every note once, and kb -> Anki -> kb keeps every card's text."""
    module, col = _anki_collection(tmp_path)
    settings = Settings(home=tmp_path / "home", bundled_content=BUNDLED_CONTENT)
    out = tmp_path / "all.apkg"
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        result = export_anki(kb, out)
        rows = export_rows(kb.engine)
        try:
            _anki_import(module, col, out)
            assert (col.note_count(), col.card_count()) == (result.notes, result.cards)
            assert len(_anki_import(module, col, out).log.new) == 0
            assert (col.note_count(), col.card_count()) == (result.notes, result.cards)
        finally:
            col.close()
        assert result.notes > 900 and set(result.decks) >= {"kb::fundamentals", "kb::vision", "kb::llm"}
        outcome = import_anki(kb, out, name="round-trip")
        assert outcome.skipped == [] and len(outcome.concepts) == result.notes
        imported = [
            card
            for row in export_rows(kb.engine)
            if row["data"]["id"] in set(outcome.concepts)
            for card in row["cards"]
            if card["type"] in ("basic", "cloze")
        ]
    sides = {(c["front"], c["back"]) for c in imported if c["type"] == "basic"}
    texts = {c["text"] for c in imported if c["type"] == "cloze"}
    originals = [c for row in rows for c in row["cards"] if c["type"] in ("basic", "cloze")]
    assert originals
    for card in originals:
        # A bilingual text travels as both languages, English first, in one field.
        if card["type"] == "basic":
            front, back = (localized(card[side], "both", "\n\n").strip() for side in ("front", "back"))
            assert (front, back) in sides, card["id"]
        else:
            assert localized(card["text"], "both", "\n\n").strip() in texts, card["id"]


def _real_anki_package(tmp_path: Path) -> Path:
    """A package written by Anki itself (legacy format): a Basic and a Cloze note, tagged."""
    module, col = _anki_collection(tmp_path, "source")
    try:
        basic = col.new_note(col.models.by_name("Basic"))
        basic["Front"], basic["Back"] = "What is <b>ReLU</b>?&nbsp;", "<div>max(0, x)</div><div>\\(x\\)</div>"
        basic.tags = ["vision", "Deep::Activations"]
        col.add_note(basic, col.decks.id("Default"))
        cloze = col.new_note(col.models.by_name("Cloze"))
        cloze["Text"] = "卷积 is {{c1::convolution}} and {{c2::padding::p}}"
        col.add_note(cloze, col.decks.id("Default"))
        empty = col.new_note(col.models.by_name("Basic"))
        empty["Front"], empty["Back"] = "<img src='a.png'>", "only media"
        col.add_note(empty, col.decks.id("Default"))
        out = tmp_path / "From Anki.apkg"
        from anki.import_export_pb2 import ExportAnkiPackageOptions, ExportLimit

        col.export_anki_package(out_path=str(out), options=ExportAnkiPackageOptions(legacy=True), limit=ExportLimit())
        return out
    finally:
        col.close()


def test_import_an_anki_package_as_an_untrusted_deck(small, tmp_path):
    package = _real_anki_package(tmp_path)
    outcome = import_anki(small, package)
    assert outcome.deck == small.settings.home / "decks" / "from-anki"
    assert len(outcome.concepts) == 2 and len(outcome.skipped) == 1
    relu = small.show("what-is-relu")
    assert relu["category"] == "vision" and relu["tags"] == ["deep-activations"]
    assert relu["title"] == {"en": "What is ReLU?", "zh": "What is ReLU?"}
    assert relu["cards"][-1]["back"] == "max(0, x)\n$x$"
    [cloze_id] = [c for c in outcome.concepts if c != "what-is-relu"]
    cloze = small.show(cloze_id)
    assert cloze["category"] == "fundamentals" and cloze["title"]["zh"] == "卷积 is convolution and padding"
    assert [c["key"] for c in cloze["cards"]][-2:] == ["card-c1", "card-c2"]
    deck = next(d for d in small.doctor()["decks"] if d["name"] == "from-anki")
    assert deck["trusted"] is False
    with pytest.raises(Exception, match="already exists"):
        import_anki(small, package)


def test_import_ids_avoid_existing_concepts(small, tmp_path):
    notes = read_package(_real_anki_package(tmp_path))
    concepts, _ = concepts_from_notes(notes, {"what-is-relu"})
    assert concepts[0]["id"] == "what-is-relu-2"


def test_json_export(small, tmp_path):
    out = tmp_path / "kb.json"
    assert export_json(small, out) == 2
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["schema_version"] >= 1 and document["format"] == "kb-export"
    softmax = next(c for c in document["concepts"] if c["id"] == "softmax")
    assert softmax["title"]["zh"] == "归一化指数函数" and softmax["last_run"] is None
    assert {c["id"] for c in softmax["cards"]} >= {"softmax/definition", "softmax/shift-c2", "softmax/value"}


def test_markdown_export(small, tmp_path):
    out = tmp_path / "site"
    assert export_markdown(small, out) == {"concepts": 2, "categories": 2}
    page = (out / "fundamentals" / "softmax.md").read_text(encoding="utf-8")
    assert page.startswith('---\ntitle: "Softmax / 归一化指数函数"')
    assert "$$p_i = \\frac{e^{z_i - m}}" in page and "- $m$: the largest score" in page
    assert "[Other](../vision/other.md)" in page and "```python" in page
    assert "(softmax.md)" in (out / "fundamentals" / "index.md").read_text(encoding="utf-8")
    assert "(vision/index.md)" in (out / "index.md").read_text(encoding="utf-8")


def test_imported_decks_are_untrusted_and_hidden_ones_skipped(tmp_path):
    settings = Settings(home=tmp_path)
    (tmp_path / "decks" / "mine").mkdir(parents=True)
    (tmp_path / "decks" / ".staging").mkdir()
    extra = [d for d in settings.decks() if d.name not in ("bundled", "notes")]
    assert [(d.name, d.trusted) for d in extra] == [("mine", False)]


@pytest.fixture
def env(tmp_path, monkeypatch, deck):
    write_concept(deck, "softmax", title_zh="归一化指数函数", extra=CARDS.replace("related: [other]\n", ""))
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    monkeypatch.delenv("KB_CONTENT", raising=False)


def _run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_and_import(env, tmp_path, capsys):
    code, out, err = _run(capsys, "export", "anki", str(tmp_path / "a.apkg"), "--deck", "ML")
    assert code == 0 and re.match(r"exported 7 notes \(8 Anki cards\) in 1 decks", out) and "1 computed" in out
    code, out, _ = _run(capsys, "export", "json", str(tmp_path / "a.json"))
    assert code == 0 and "1 concepts" in out
    code, out, _ = _run(capsys, "export", "markdown", str(tmp_path / "md"))
    assert code == 0 and (tmp_path / "md" / "index.md").exists()
    code, out, err = _run(capsys, "import", str(tmp_path / "a.apkg"), "--name", "back")
    assert code == 0 and "imported 7 concepts" in out and err == ""


@pytest.mark.parametrize(
    "args, message",
    [
        (("export", "anki", "x.apkg", "--category", "nope"), "--category must be one of"),
        (("export", "pdf", "x"), "no choice 'pdf'; the choices: anki, json, markdown"),
        (("import", "missing.apkg"), "no such file"),
        (("import", "bad.apkg"), "not an Anki package"),
    ],
)
def test_cli_bad_input_is_one_line(env, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.apkg").write_text("not a zip")
    code, out, err = _run(capsys, *args)
    assert code == 1 and err.count("\n") == 1 and err.startswith("kb: ") and message in err
