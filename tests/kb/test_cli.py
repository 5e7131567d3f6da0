"""The CLI contract: exit codes, one-line errors, and the documented JSON shapes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import concept_yaml, write_concept
from kb.cli import main

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.both_backends


@pytest.fixture
def env(tmp_path, monkeypatch, deck):
    """A KB_HOME of its own, an empty bundled deck, and the test deck as an extra (untrusted) deck."""
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    (tmp_path / "bundled").mkdir()
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(tmp_path / "bundled"))
    monkeypatch.setenv("KB_CONTENT", str(deck))
    write_concept(deck, "cli-attention", title_en="CLI Attention", title_zh="命令行注意力", category="attention")
    return deck


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_no_arguments_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "COMMAND" in out


def test_bad_argument_is_one_line_exit_1(capsys):
    code, out, err = run(capsys, "search")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("kb: ")
    code, _, err = run(capsys, "frobnicate")
    assert code == 1 and err.startswith("kb: no command 'frobnicate'; the commands: check, sync, search")
    code, _, err = run(capsys, "serch", "softmax")
    assert code == 1 and err.startswith("kb: no command 'serch' (did you mean 'search'?)") and err.count("\n") == 1


def test_check_reports_typo_with_position(env, capsys, tmp_path):
    bad = tmp_path / "note.yaml"
    bad.write_text(concept_yaml("my-note").replace("definition:", "defintion:"), encoding="utf-8")
    code, out, err = run(capsys, "check", str(bad))
    assert code == 1
    assert f"{bad}:9:1: unknown field 'defintion' (did you mean 'definition'?)" in err.splitlines()
    code, out, _ = run(capsys, "check", str(bad), "--json")
    payload = json.loads(out)
    assert code == 1 and payload["ok"] is False
    assert {
        "path": str(bad),
        "line": 9,
        "col": 1,
        "message": "unknown field 'defintion' (did you mean 'definition'?)",
    } in payload["errors"]


def test_check_all_decks_ok(env, capsys):
    code, out, err = run(capsys, "check", "--json")
    assert json.loads(out) == {"ok": True, "errors": []}, err
    assert code == 0


def test_bundled_content_checks_clean(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KB_CONTENT", raising=False)
    code, out, err = run(capsys, "check", "--json")
    assert json.loads(out) == {"ok": True, "errors": []}
    assert code == 0


def test_check_missing_path(env, capsys):
    code, _, err = run(capsys, "check", "/nonexistent/x.yaml")
    assert code == 1 and err == "kb: no such file or directory: /nonexistent/x.yaml\n"


def test_sync_then_search_json_contract(env, capsys):
    code, out, _ = run(capsys, "sync")
    assert code == 0 and "cli-attention" in out
    code, out, _ = run(capsys, "search", "命令行", "--json")
    hits = json.loads(out)
    assert code == 0
    assert hits[0] == {
        "id": "cli-attention",
        "title": {"en": "CLI Attention", "zh": "命令行注意力"},
        "category": "attention",
        "snippet_text": hits[0]["snippet_text"],
    }
    assert "«命令行»" in hits[0]["snippet_text"]


def test_show_json_contract(env, capsys):
    code, out, _ = run(capsys, "show", "cli-attention", "--json")
    concept = json.loads(out)
    assert code == 0
    from kb.schema import Concept

    assert set(Concept.model_fields) <= set(concept)
    assert concept["last_run"] is None
    assert [c["id"] for c in concept["cards"]] == ["cli-attention/definition", "cli-attention/reverse"]
    assert all({"id", "type"} <= set(c) for c in concept["cards"])


def test_show_unknown_id_suggests(env, capsys):
    run(capsys, "sync")
    code, _, err = run(capsys, "show", "cli-atention")
    assert code == 1
    assert err.startswith("kb: no concept with id 'cli-atention' (did you mean 'cli-attention'")
    assert err.count("\n") == 1


def test_sync_with_broken_file_exits_1_and_names_it(env, capsys):
    broken = env / "fundamentals" / "broken.yaml"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text("id: [\n", encoding="utf-8")
    code, out, err = run(capsys, "sync")
    assert code == 1
    assert err.startswith(f"{broken}:2:1: ")


@pytest.mark.sqlite_only
def test_corrupt_database_is_a_clear_error(env, capsys, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "kb.sqlite").write_bytes(b"this is not a database at all" * 100)
    code, _, err = run(capsys, "sync")
    assert code == 1
    assert err.startswith("kb: ") and "not a database" in err and err.count("\n") == 1


@pytest.mark.sqlite_only
def test_zero_byte_database_is_not_taken_as_new(env, capsys, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "kb.sqlite").write_bytes(b"")
    code, _, err = run(capsys, "sync")
    assert code == 1 and "empty (0 bytes)" in err
    assert (home / "kb.sqlite").stat().st_size == 0


@pytest.mark.sqlite_only
def test_newer_schema_refused(env, capsys, tmp_path):
    import sqlite3

    run(capsys, "sync")
    conn = sqlite3.connect(tmp_path / "home" / "kb.sqlite")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    code, _, err = run(capsys, "sync")
    assert code == 1 and "newer kb" in err


def test_schema_json_is_committed_and_current(capsys):
    code, out, _ = run(capsys, "schema")
    assert code == 0
    committed = json.loads((ROOT / "content" / "schema.json").read_text(encoding="utf-8"))
    assert json.loads(out) == committed


def test_doctor(env, capsys):
    code, out, _ = run(capsys, "doctor", "--json")
    info = json.loads(out)
    assert code == 0 and info["integrity"] == "ok" and info["libyaml"] is True
    code, out, _ = run(capsys, "doctor")
    iso = info["isolation"]
    assert code == 0 and f"isolation: {iso['level']} (" in out
    assert ("untrusted snippets may run with --sandbox" in out) == iso["sandbox_capable"]
    assert f"deck {env.name}: {env} (KB_CONTENT, snippets " in out


def test_subprocess_error_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n\tfoo: 1\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "kb", "check", str(bad)],
        capture_output=True,
        text=True,
        env={"KB_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"{bad}:2:1: ")


def test_check_path_reports_duplicate_of_a_deck_id(env, capsys, tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text(concept_yaml("cli-attention"), encoding="utf-8")
    code, _, err = run(capsys, "check", str(dup))
    assert code == 1
    assert f"{dup}:1:5: duplicate id 'cli-attention' (also defined in " in err


def _editor(tmp_path, old: str, new: str) -> str:
    """An $EDITOR that rewrites the file it is given: the template with one substitution."""
    script = tmp_path / "fake-editor.py"
    script.write_text(
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        f"p.write_text(p.read_text(encoding='utf-8').replace({old!r}, {new!r}), encoding='utf-8')\n",
        encoding="utf-8",
    )
    return f"{sys.executable} {script}"


def test_add_saves_a_valid_note(env, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "My concept", "Attention note"))
    code, out, err = run(capsys, "add", "attention-note", "--category", "attention")
    assert code == 0, err
    saved = tmp_path / "home" / "notes" / "attention" / "attention-note.yaml"
    assert saved.exists() and f"saved attention-note to {saved}" in out
    code, out, _ = run(capsys, "show", "attention-note", "--json")
    assert json.loads(out)["title"]["en"] == "Attention note"


def test_add_reports_errors_and_keeps_the_draft(env, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EDITOR", _editor(tmp_path, "definition:", "defintion:"))
    with open(os.devnull) as no_terminal:
        monkeypatch.setattr(sys, "stdin", no_terminal)
        code, _, err = run(capsys, "add", "broken-note")
    assert code == 1
    assert "unknown field 'defintion' (did you mean 'definition'?)" in err
    assert "your text is kept in" in err
    assert not (tmp_path / "home" / "notes" / "fundamentals" / "broken-note.yaml").exists()


def test_add_without_editor_says_how(env, capsys, monkeypatch):
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.delenv("VISUAL", raising=False)
    code, _, err = run(capsys, "add", "x")
    assert code == 1 and "set $EDITOR" in err


def test_show_json_card_ids_are_full_ids(env, capsys):
    write_concept(env, "with-own-card", extra="cards:\n  - {type: basic, id: own, front: F?, back: B.}\n")
    code, out, _ = run(capsys, "show", "with-own-card", "--json")
    cards = json.loads(out)["cards"]
    assert [c["id"] for c in cards] == ["with-own-card/definition", "with-own-card/reverse", "with-own-card/own"]
    assert cards[-1]["key"] == "own" and cards[-1]["type"] == "basic"


# --- text from decks and runs never acts on the terminal ---------------------------------------------

EVIL_SNIPPET = (
    "snippet:\n  code: |\n"
    "    class Evil:\n"
    "        def __repr__(self):\n"
    "            return '\\x1b]0;pwned\\x07\\x1b[2J\\x9b6n\\u202e'\n"
    "    e = Evil()\n"
)
FAILING_SNIPPET = "snippet:\n  code: |\n    assert False, '\\x1b]52;c;cHduZWQ=\\x07\\x1b[2J clipboard'\n"


def assert_no_control_characters(text: str) -> None:
    assert not [
        c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E
    ], repr(text)


def test_a_failing_snippets_message_is_shown_escaped(tmp_path, monkeypatch, capsys):
    deck = tmp_path / "deck"
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    write_concept(deck, "esc-fail", extra=FAILING_SNIPPET)
    code, out, err = run(capsys, "verify", "esc-fail", "--jobs", "1")
    assert code == 1
    assert_no_control_characters(out + err)
    assert "AssertionError: \\x1b]52;c;cHduZWQ=\\x07\\x1b[2J clipboard" in out
    code, out, err = run(capsys, "verify", "esc-fail", "--jobs", "1", "--json")
    assert_no_control_characters(out + err)
    (result,) = json.loads(out)["results"]
    assert result["message"] == "AssertionError: \x1b]52;c;cHduZWQ=\x07\x1b[2J clipboard"  # the value itself is intact


def learn_siblings_first(concept_id: str) -> None:
    """Answer the concept's definition and reverse cards (Easy) on the two days before today, so that
    today its own card is the only new one (its siblings are not due)."""
    from datetime import datetime, timedelta, timezone

    from kb.config import load_settings
    from kb.service import KnowledgeBase

    for days_ago, card in ((3, "definition"), (2, "reverse")):
        then = datetime.now(timezone.utc) - timedelta(days=days_ago)
        with KnowledgeBase(load_settings(), clock=lambda then=then: then) as kb:
            kb.answer(f"{concept_id}/{card}", 4, duration_ms=1000)


def test_a_computed_value_whose_repr_is_escape_codes_is_shown_escaped(tmp_path, monkeypatch, capsys):

    deck = tmp_path / "deck"
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    write_concept(
        deck, "esc-value", extra=EVIL_SNIPPET + "cards:\n  - {type: computed, id: v, question: 'Value?', answer: 'e'}\n"
    )
    assert run(capsys, "verify", "esc-value", "--jobs", "1")[0] == 0
    learn_siblings_first("esc-value")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("anything\n1\nq\n"))
    code, out, err = run(capsys, "quiz", "--plain")
    assert code == 0 and "esc-value/v" in out, out
    assert_no_control_characters(out + err)
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\x9b6n\\u202e" in out


def test_undo_takes_back_only_this_sessions_answers(tmp_path, monkeypatch, capsys):
    """A new session has nothing to undo: pressing u again and again never erases earlier days."""
    import io

    deck = tmp_path / "deck"
    for i in range(4):
        write_concept(deck, f"undo-{i}")
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    monkeypatch.setattr("sys.stdin", io.StringIO("\n3\n\n3\n"))
    assert run(capsys, "quiz", "--plain", "--limit", "2")[0] == 0
    before = json.loads(run(capsys, "stats", "--json")[1])["reviews_total"]
    assert before == 2
    monkeypatch.setattr("sys.stdin", io.StringIO("\nu\nu\nu\nq\n"))  # a new session: u three times
    code, out, _ = run(capsys, "quiz", "--plain")
    assert code == 0 and out.count("nothing to undo in this session") == 3
    assert json.loads(run(capsys, "stats", "--json")[1])["reviews_total"] == before
    # Within a session, u takes back that session's answers, newest first, and no further; the card
    # taken back is shown again.
    monkeypatch.setattr("sys.stdin", io.StringIO("\n3\nanything\nu\n\nu\nq\n"))
    code, out, _ = run(capsys, "quiz", "--plain")
    assert "undid the answer to " in out and "nothing to undo in this session" in out
    assert json.loads(run(capsys, "stats", "--json")[1])["reviews_total"] == before


def test_show_and_plain_quiz_print_math_as_text_and_raw_on_request(tmp_path, monkeypatch, capsys):
    import io

    deck = tmp_path / "deck"
    write_concept(
        deck,
        "math-note",
        definition="Scores $z_i$ over $\\sqrt{d_k}$ keys.",
        extra="formulas:\n  - name: scaled\n    latex: '\\frac{QK^\\top}{\\sqrt{d_k}}'\n    where: {d_k: 'key size $d_k$'}\n"
        "cards:\n  - {type: basic, id: b, front: 'What is $\\alpha$?', back: 'A rate $\\eta$.'}\n",
    )
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    code, out, _ = run(capsys, "show", "math-note")
    assert code == 0 and "Scores zᵢ over √(d[k]) keys." in out and "scaled:  (QKᵀ)/(√(d[k]))" in out
    assert "$" not in out and "\\frac" not in out
    code, out, _ = run(capsys, "show", "math-note", "--raw")
    assert "Scores $z_i$ over $\\sqrt{d_k}$ keys." in out and "\\frac{QK^\\top}{\\sqrt{d_k}}" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("\n3\n" * 4 + "q\n"))
    code, out, _ = run(capsys, "quiz", "--plain")
    assert code == 0 and "Scores zᵢ over √(d[k]) keys." in out and "$" not in out


def test_a_shape_typed_with_x_is_graded_correct(tmp_path, monkeypatch, capsys):
    import io

    deck = tmp_path / "deck"
    write_concept(
        deck,
        "shape-note",
        extra="cards:\n  - {type: typed, id: s, question: 'Output shape?', answer: '(1, 16, 16, 16)'}\n",
    )
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    assert run(capsys, "sync")[0] == 0
    learn_siblings_first("shape-note")
    monkeypatch.setattr("sys.stdin", io.StringIO("1x16x16x16\n\nq\n"))
    code, out, _ = run(capsys, "quiz", "--plain")
    assert code == 0 and "Output shape?" in out, out
    assert "verdict: correct" in out


def test_cards_that_cannot_be_shown_are_never_counted_as_due(tmp_path, monkeypatch, capsys):
    """A computed card whose snippet has not produced its value waits, and kb says why."""
    import io

    from kb.config import load_settings
    from kb.service import KnowledgeBase

    deck = tmp_path / "deck"
    note = write_concept(deck, "late-value", extra="snippet:\n  code: |\n    x = 6 * 7\n")
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    assert run(capsys, "verify", "late-value", "--jobs", "1")[0] == 0  # a run without the card's value
    note.write_text(note.read_text() + "cards:\n  - {type: computed, id: v, question: 'x?', answer: 'x'}\n")
    assert run(capsys, "sync")[0] == 0
    learn_siblings_first("late-value")
    with KnowledgeBase(load_settings()) as kb:
        overview = kb.due_overview()
    assert overview.showable == 0 and overview.waiting_for_a_run == ["late-value"]
    monkeypatch.setattr("sys.stdin", io.StringIO("q\n"))
    code, out, _ = run(capsys, "quiz", "--plain")
    assert "computed cards waiting for their snippet to give a value (late-value)" in out


@pytest.mark.parametrize(
    "key, good, bad, message",
    [
        ("learning_steps", "30s 5m 1h", "5 minutes", "'5' is not a step"),
        ("relearning_steps", "", "1x", "'1x' is not a step"),
        ("maximum_interval", "365", "0", "must be between 1 and 36500"),
        ("leech_threshold", "5", "0", "must be between 1 and 99"),
        ("leech_action", "tag", "delete", "must be one of: suspend, tag"),
        ("desired_retention", "0.85", "0.5", "must be between 0.7 and 0.99"),
    ],
)
def test_kb_config_scheduling_settings(tmp_path, monkeypatch, capsys, key, good, bad, message):
    monkeypatch.setenv("KB_HOME", str(tmp_path / "cfg-home"))
    assert run(capsys, "config", "set", key, good)[0] == 0
    code, out, _ = run(capsys, "config", "get", key)
    assert code == 0 and out.strip() == good
    code, _, err = run(capsys, "config", "set", key, bad)
    assert code == 1 and err.startswith(f"kb: {key}: ") and message in err and err.count("\n") == 1
    assert run(capsys, "config", "get", key)[1].strip() == good  # the bad value stored nothing


def test_kb_config_sets_checks_lists_and_overrides(tmp_path, monkeypatch, capsys):
    home = tmp_path / "cfg-home"
    monkeypatch.setenv("KB_HOME", str(home))
    monkeypatch.delenv("KB_NEW_PER_DAY", raising=False)
    assert run(capsys, "config", "set", "new_per_day", "7")[0] == 0
    assert (home / "settings.toml").read_text().splitlines()[1:] == ["new_per_day = 7"]
    from kb.config import load_settings

    assert load_settings().new_per_day == 7
    code, out, err = run(capsys, "config", "set", "new_per_day", "lots")
    assert code == 1 and err == "kb: new_per_day: 'lots' is not a whole number\n"
    code, out, err = run(capsys, "config", "set", "new_per_dya", "3")
    assert code == 1 and "unknown setting 'new_per_dya' (did you mean 'new_per_day'?)" in err
    monkeypatch.setenv("KB_NEW_PER_DAY", "9")  # the environment overrides the file
    code, out, _ = run(capsys, "config", "list", "--json")
    row = next(r for r in json.loads(out) if r["key"] == "new_per_day")
    assert (row["value"], row["source"]) == ("9", "KB_NEW_PER_DAY")
    monkeypatch.delenv("KB_NEW_PER_DAY")
    (home / "settings.toml").write_text("new_per_day = -4\n")
    code, out, err = run(capsys, "stats")
    assert code == 1 and err.startswith(f"kb: {home / 'settings.toml'}:1: new_per_day: -4 must be between 0 and 10000")
    assert run(capsys, "config", "unset", "new_per_day")[0] == 0 and run(capsys, "stats")[0] == 0


def test_kb_cards_lists_what_a_search_selects(tmp_path, monkeypatch, capsys):
    deck = tmp_path / "deck"
    write_concept(deck, "soft-max", extra="tags: [activation]\n")
    write_concept(deck, "other", category="layers")
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    code, out, _ = run(capsys, "cards", "concept:soft-max", "--json")
    cards = json.loads(out)
    assert code == 0 and {c["card_id"] for c in cards} == {"soft-max/definition", "soft-max/reverse"}
    assert all(c["state"] == "new" and c["retrievability"] is None and c["reviews"] == 0 for c in cards)
    code, out, _ = run(capsys, "cards", "-tag:activation", "category:layers", "--json")  # '-' negates, not an option
    assert code == 0 and [c["card_id"] for c in json.loads(out)] == ["other/definition", "other/reverse"]
    code, out, _ = run(capsys, "cards", "-tag:activation")
    assert code == 0 and "soft-max" not in out and out.rstrip().endswith("2 card(s)")
    code, out, err = run(capsys, "cards", "kind:cloze", "(is:new")
    assert code == 1 and err == "kb: search, column 12: '(' is never closed\n"


def test_custom_study_quizzes_a_concepts_cards_past_the_daily_limits(tmp_path, monkeypatch, capsys):
    """With one new card a day and siblings buried, the daily quiz would show one card of this
    concept today; `--search` shows all of them, first, as real reviews."""
    import io

    deck = tmp_path / "deck"
    for name in ("alpha", "beta", "gamma"):
        write_concept(deck, name)
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    monkeypatch.setenv("KB_NEW_PER_DAY", "1")
    monkeypatch.setattr("sys.stdin", io.StringIO("\n4\n" * 5 + "q\n"))
    code, out, _ = run(capsys, "quiz", "--plain", "--search", "concept:gamma")
    shown = re.findall(r"^\[\d+\] (\S+)", out, re.M)
    assert code == 0 and shown == ["gamma/definition", "gamma/reverse"]
    assert "2 reviewed" in out
    code, out, _ = run(capsys, "cards", "concept:gamma", "--json")
    assert [c["reviews"] for c in json.loads(out)] == [1, 1]
    code, out, err = run(capsys, "quiz", "--plain", "--search", "prop:x>1")
    assert code == 1 and err.startswith("kb: search, column 6: prop: is a property")


def test_kb_cards_changes_cards_in_the_log_and_undo_takes_the_change_back(tmp_path, monkeypatch, capsys):
    deck = tmp_path / "deck"
    write_concept(deck, "soft-max", extra="tags: [activation]\n")
    write_concept(deck, "other", category="layers")
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    code, out, _ = run(capsys, "cards", "-category:layers", "--suspend")  # '-' negates, not an option
    assert code == 0 and out == "2 card(s) suspended; kb cards --undo takes it back\n"
    code, out, _ = run(capsys, "cards", "is:suspended", "--json")
    assert [c["card_id"] for c in json.loads(out)] == ["soft-max/definition", "soft-max/reverse"]
    code, out, _ = run(capsys, "cards", "concept:other", "kind:reverse", "--flag", "2")
    assert code == 0 and out.startswith("1 card(s) flagged")
    code, out, _ = run(capsys, "cards", "flag:2")
    assert "orange flag" in out and out.endswith("1 card(s)\n")
    code, out, _ = run(capsys, "cards", "is:flagged", "--json")
    assert [(c["card_id"], c["flag"]) for c in json.loads(out)] == [("other/reverse", 2)]
    code, out, _ = run(capsys, "cards", "--undo")
    assert code == 0 and out == "took back the last change (flag) of 1 card(s)\n"
    code, out, _ = run(capsys, "cards", "--undo")
    assert out == "took back the last change (suspend) of 2 card(s)\n"
    code, out, err = run(capsys, "cards", "--undo")
    assert code == 1 and err == "kb: no change by hand to take back\n"
    code, out, _ = run(capsys, "stats", "--json")
    assert json.loads(out)["reviews_total"] == 0 and json.loads(out)["cards_suspended"] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--suspend"], "kb: --suspend: name the cards with a search (e.g. concept:softmax kind:cloze)"),
        (["x", "--flag", "9"], "kb: --flag: a flag is a number from 0 (none) to 7"),
        (["x", "--due", "tomorrow"], "kb: --due: a date is YYYY-MM-DD, got 'tomorrow'"),
        (["x", "--undo"], "kb: --undo takes back the last change and takes no search"),
        (["x", "--bury", "--reset"], "kb: argument --reset: not allowed with argument --bury"),
        (["is:sleepy", "--bury"], "kb: search, column 4: is:sleepy is not known"),
    ],
)
def test_kb_cards_bad_changes_are_one_line(env, capsys, args, message):
    code, out, err = run(capsys, "cards", *args)
    assert code != 0 and err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_kb_cards_changes_through_the_real_command(tmp_path):
    """The installed `kb` command: a reset and a due date, both undoable, nothing else touched."""
    deck = tmp_path / "deck"
    write_concept(deck, "alpha")
    env = {**os.environ, "KB_HOME": str(tmp_path / "home"), "KB_BUNDLED_CONTENT": str(deck)}

    def kb(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kb", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
        )

    assert kb("quiz", "--plain", stdin="\n4\nq\n").returncode == 0  # alpha/definition, Easy
    moved = kb("cards", "concept:alpha", "--due", "2030-01-02")
    assert moved.returncode == 0 and moved.stdout.startswith("1 card(s) given the due date; 1 left as they were")
    listed = json.loads(kb("cards", "concept:alpha", "--json").stdout)
    assert [c["due"][:4] for c in listed if c["due"]] == ["2030"]
    assert kb("cards", "concept:alpha", "--reset").stdout.startswith("1 card(s) reset to new")
    assert {c["state"] for c in json.loads(kb("cards", "concept:alpha", "--json").stdout)} == {"new"}
    assert kb("cards", "--undo").returncode == 0
    assert [c["state"] for c in json.loads(kb("cards", "concept:alpha", "--json").stdout)] == ["review", "new"]


def test_preview_goes_through_cards_and_stores_nothing(tmp_path, monkeypatch, capsys):
    import io

    deck = tmp_path / "deck"
    write_concept(deck, "alpha")
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("sys.stdin", io.StringIO("\n3\n\n1\nq\n"))
    code, out, _ = run(capsys, "quiz", "--plain", "--search", "concept:alpha", "--preview")
    assert code == 0 and re.findall(r"^\[\d+\] (\S+)", out, re.M) == ["alpha/definition", "alpha/reverse"]
    assert "preview: good not stored; the card keeps its schedule" in out
    code, out, _ = run(capsys, "stats", "--json")
    assert json.loads(out)["reviews_total"] == 0
    code, out, err = run(capsys, "quiz", "--plain", "--preview")
    assert code == 1 and err == "kb: --preview goes through a custom study session: give --search QUERY too\n"


@pytest.mark.parametrize(
    "language, shown, hidden",
    [
        ("en", ["CLI Attention", "A concept used by the tests."], ["命令行注意力"]),
        ("zh", ["命令行注意力 / CLI Attention", "命令行注意力的摘要。"], ["Summary of CLI Attention."]),
        ("both", ["CLI Attention / 命令行注意力", "Summary of CLI Attention.", "命令行注意力的摘要。"], []),
    ],
)
def test_the_language_setting_picks_what_kb_show_prints(env, capsys, monkeypatch, language, shown, hidden):
    monkeypatch.setenv("KB_LANG", language)  # the short name of KB_LANGUAGE
    code, out, _ = run(capsys, "show", "cli-attention")
    assert code == 0 and all(text in out for text in shown) and not any(text in out for text in hidden)


def test_the_language_defaults_to_the_locale_and_refuses_other_values(env, capsys, monkeypatch):
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    code, out, _ = run(capsys, "show", "cli-attention")
    assert out.startswith("命令行注意力 / CLI Attention")
    code, _, err = run(capsys, "config", "set", "language", "klingon")
    assert code == 1 and err == "kb: language: 'klingon' must be one of: en, zh, both\n"
