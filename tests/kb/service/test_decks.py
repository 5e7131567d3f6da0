"""Third-party YAML decks: `kb import PATH`, `kb decks`, trust by snippet hash, `--sandbox`.

An import is all or nothing, with every error listed; an id taken by another deck is refused (ids
are global in kb, see the README); re-importing a new version keeps reviews and untrusts edited
snippets; a second deck under a taken name is refused, not merged; a deck's snippets are untrusted
until trusted, and untrusted again once edited; with no sandbox, an untrusted snippet is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import zipfile
from pathlib import Path

import pytest

from helpers import FIXED_NOW, backend_url, db_execute, write_concept
from kb.cli import main
from kb.config import Settings
from kb.interop import yaml_deck
from kb.runner import sandbox as runner_sandbox
from kb.service import DeckError, DeckImportError, KnowledgeBase, import_deck

CARDS = "cards:\n  - {type: basic, id: b, front: 'Front?', back: Back.}\n"

pytestmark = pytest.mark.both_backends


def snippet(code: str) -> str:
    return "snippet:\n  code: |\n" + "".join(f"    {line}\n" for line in code.splitlines())


@pytest.fixture
def lab(tmp_path) -> Path:
    """A colleague's deck: three concepts, two of them with snippets, and a README."""
    root = tmp_path / "lab-notes"
    write_concept(root, "lab-alpha", extra=CARDS + snippet("x = 2 + 2\nassert x == 4\nprint('alpha ran')"))
    write_concept(root, "lab-beta", extra=CARDS + snippet("assert sum(range(4)) == 6\nprint('beta ran')"))
    write_concept(root, "lab-gamma", category="vision", extra=CARDS + "related: [lab-alpha]\n")
    (root / "README.md").write_text("a lab deck\n", encoding="utf-8")
    return root


@pytest.fixture
def kb(tmp_path, deck):
    write_concept(deck, "own-concept", extra=CARDS + snippet("assert 1 + 1 == 2"))
    settings = Settings(home=tmp_path / "home", bundled_content=deck, database_url=backend_url())
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as instance:
        instance.sync()
        yield instance


def db_rows(kb: KnowledgeBase, table: str) -> list[tuple]:
    return sorted(db_execute(kb, f'SELECT * FROM "{table}"'), key=repr)


def decks_dir_entries(kb: KnowledgeBase) -> list[str]:
    root = kb.settings.imported_decks_dir
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def statuses(outcomes) -> dict[str, str]:
    return {o.id: o.status for o in outcomes}


# --- importing ---------------------------------------------------------------------------------------


def test_import_folder_makes_an_untrusted_deck_whose_text_works(kb, lab):
    outcome = import_deck(kb, lab)
    assert outcome.name == "lab-notes" and outcome.deck == kb.settings.imported_decks_dir / "lab-notes"
    assert (outcome.concepts, outcome.snippets, outcome.untrusted) == (3, 2, 2)
    assert outcome.added == ["lab-alpha", "lab-beta", "lab-gamma"] and outcome.ignored == ["README.md"]
    assert (outcome.deck / "fundamentals" / "lab-alpha.yaml").read_bytes() == (
        lab / "fundamentals" / "lab-alpha.yaml"
    ).read_bytes()
    assert not (outcome.deck / "README.md").exists()
    # Text and cards work at once ...
    assert kb.show("lab-gamma")["related"] == ["lab-alpha"]
    assert [h.id for h in kb.search("lab-beta")][:1] == ["lab-beta"]
    # ... snippets do not.
    result = statuses(kb.verify(jobs=1))
    assert result == {"lab-alpha": "untrusted", "lab-beta": "untrusted", "own-concept": "passed"}
    info = {d.name: d for d in kb.decks()}["lab-notes"]
    assert (info.kind, info.trust, info.concepts, info.snippets, info.trusted_snippets) == (
        "imported",
        "untrusted",
        3,
        2,
        0,
    )


def test_import_is_all_or_nothing_and_lists_every_error(kb, lab):
    """One bad file among many: nothing imported, every error with its path:line:col."""
    for i in range(97):
        write_concept(lab, f"lab-filler-{i:02d}")
    bad = lab / "fundamentals" / "lab-broken.yaml"
    bad.write_text("id: lab-broken\ntitle: [unclosed\n", encoding="utf-8")
    typo = write_concept(lab, "lab-typo")
    typo.write_text(typo.read_text(encoding="utf-8").replace("definition:", "defintion:"), encoding="utf-8")
    before = {t: db_rows(kb, t) for t in ("concept", "card", "deck", "source_file")}
    with pytest.raises(DeckImportError) as caught:
        import_deck(kb, lab)
    assert "nothing was imported" in str(caught.value)
    shown = [str(e) for e in caught.value.errors]
    assert any(s.startswith(f"{bad}:3:1: ") for s in shown), shown
    assert any(s.startswith(f"{typo}:") and "defintion" in s for s in shown), shown
    assert decks_dir_entries(kb) == []  # no deck, no staging directory left behind
    assert {t: db_rows(kb, t) for t in before} == before


def test_duplicate_ids_inside_the_deck_are_listed_with_both_files(kb, lab):
    """The same id in two files of one deck."""
    copy = lab / "vision" / "lab-alpha-again.yaml"
    copy.write_bytes((lab / "fundamentals" / "lab-alpha.yaml").read_bytes())
    with pytest.raises(DeckImportError) as caught:
        import_deck(kb, lab)
    (error,) = [e for e in caught.value.errors if "duplicate id" in e.message]
    assert {error.path, error.message.split("also defined in ")[1].split(":")[0]} == {
        str(lab / "fundamentals" / "lab-alpha.yaml"),
        str(copy),
    }
    assert decks_dir_entries(kb) == []


def test_an_id_used_by_another_deck_is_refused(kb, lab):
    """Ids are global in kb (links, prerequisites and card ids name them), so a clash is refused."""
    write_concept(lab, "own-concept")
    with pytest.raises(DeckImportError) as caught:
        import_deck(kb, lab)
    (error,) = caught.value.errors
    assert error.path == str(lab / "fundamentals" / "own-concept.yaml") and (error.line, error.col) == (1, 5)
    assert "the id 'own-concept' is already used by the deck bundled" in error.message
    assert decks_dir_entries(kb) == []


def test_a_second_deck_under_a_taken_name_is_refused(kb, lab, tmp_path):
    """Two decks claiming one name are never merged silently."""
    import_deck(kb, lab)
    other = tmp_path / "elsewhere" / "lab-notes"
    write_concept(other, "other-concept")
    before = db_rows(kb, "concept")
    with pytest.raises(DeckError, match="already imported .*--update.*--name"):
        import_deck(kb, other)
    assert db_rows(kb, "concept") == before
    outcome = import_deck(kb, other, name="lab-notes-2")
    assert outcome.added == ["other-concept"]
    assert decks_dir_entries(kb) == ["lab-notes", "lab-notes-2"]


def test_bad_names_and_paths(kb, lab, tmp_path):
    with pytest.raises(DeckError, match="no such file or folder"):
        import_deck(kb, tmp_path / "missing")
    with pytest.raises(DeckError, match="lowercase letters"):
        import_deck(kb, lab, name="../escape")
    with pytest.raises(DeckError, match="no imported deck named"):
        import_deck(kb, lab, update=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DeckError, match="no .yaml or .yml file"):
        import_deck(kb, empty)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(DeckImportError) as caught:
        import_deck(kb, junk)
    assert "not a folder or a readable .zip" in str(caught.value.errors[0])


def test_a_failed_sync_undoes_the_import(kb, lab, monkeypatch):
    real_sync = KnowledgeBase.sync
    calls = []

    def sync_fails_the_second_time(self):
        calls.append(1)
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return real_sync(self)

    monkeypatch.setattr(KnowledgeBase, "sync", sync_fails_the_second_time)
    with pytest.raises(sqlite3.OperationalError):
        import_deck(kb, lab)
    assert decks_dir_entries(kb) == []
    monkeypatch.undo()
    assert "lab-alpha" not in kb.concept_ids()


def test_symlinks_in_a_folder_are_refused(kb, lab, tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("id: secret\n", encoding="utf-8")
    (lab / "fundamentals" / "link.yaml").symlink_to(secret)
    with pytest.raises(DeckImportError) as caught:
        import_deck(kb, lab)
    assert [str(e) for e in caught.value.errors] == [
        f"{lab / 'fundamentals' / 'link.yaml'}:1:1: a symbolic link; decks are imported without links"
    ]


# --- zip archives ------------------------------------------------------------------------------------


def zip_folder(folder: Path, archive: Path, *, top: str | None = None) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                rel = path.relative_to(folder).as_posix()
                zf.write(path, f"{top}/{rel}" if top else rel)
    return archive


def test_import_zip_with_a_top_folder(kb, lab, tmp_path):
    archive = zip_folder(lab, tmp_path / "Lab Deck v2.zip", top="lab-notes")
    outcome = import_deck(kb, archive)
    assert outcome.name == "lab-deck-v2"
    assert (outcome.deck / "fundamentals" / "lab-alpha.yaml").is_file()  # the top folder is not kept
    assert outcome.concepts == 3 and outcome.ignored == ["lab-notes/README.md"]


def test_zip_errors_name_the_member(kb, lab, tmp_path):
    (lab / "fundamentals" / "lab-beta.yaml").write_text("id: lab-beta\n\tbad: tab\n", encoding="utf-8")
    archive = zip_folder(lab, tmp_path / "lab.zip")
    with pytest.raises(DeckImportError) as caught:
        import_deck(kb, archive)
    assert [e.path for e in caught.value.errors][0] == f"{archive}:fundamentals/lab-beta.yaml"
    assert decks_dir_entries(kb) == []


@pytest.mark.parametrize("member", ["../evil.yaml", "/etc/evil.yaml", "a/../../evil.yaml"])
def test_zip_path_traversal_is_refused(kb, tmp_path, member):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.yaml", "id: fine\n")
        zf.writestr(member, "id: evil\n")
    with pytest.raises(DeckImportError) as caught:
        import_deck(kb, archive)
    assert any("unsafe path" in e.message for e in caught.value.errors)
    assert not (tmp_path / "evil.yaml").exists() and decks_dir_entries(kb) == []


def test_zip_symlink_member_is_refused(kb, tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link.yaml")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(DeckImportError, match="1 error"):
        import_deck(kb, archive)


def test_zip_limits_are_checked_before_reading(kb, tmp_path, monkeypatch):
    """A member declaring more than 1 MiB, or a deck over 20 MiB, is refused without being read."""
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge.yaml", b"#" * (yaml_deck.MAX_FILE_BYTES + 1))  # compresses to a few KB
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: opened.append(a) or real_open(self, *a, **k))
    with pytest.raises(DeckImportError) as caught:
        import_deck(kb, archive)
    assert "limit is 1,048,576 bytes" in caught.value.errors[0].message and opened == []
    monkeypatch.setattr(yaml_deck, "MAX_IMPORT_BYTES", 1000)
    small = tmp_path / "many.zip"
    with zipfile.ZipFile(small, "w") as zf:
        for i in range(3):
            zf.writestr(f"f{i}.yaml", b"#" * 400)
    with pytest.raises(DeckImportError) as caught:
        import_deck(kb, small)
    assert any("over 0 MiB" in e.message or "import it in parts" in e.message for e in caught.value.errors)


# --- trust by hash and updates -----------------------------------------------------------------------


def test_trust_records_hashes_and_an_edit_untrusts_again(kb, lab):
    outcome = import_deck(kb, lab)
    deck, count = kb.trust("lab-notes")
    assert (deck.path, count) == (outcome.deck, 2)
    result = {o.id: o for o in kb.verify(jobs=1)}
    assert result["lab-alpha"].passed and "alpha ran" in result["lab-alpha"].output
    assert {d.name: d.trust for d in kb.decks()}["lab-notes"] == "trusted"
    # Edit one snippet in place (as a `git pull` of the deck would): it alone is untrusted again.
    alpha = outcome.deck / "fundamentals" / "lab-alpha.yaml"
    alpha.write_text(alpha.read_text(encoding="utf-8").replace("x = 2 + 2", "x = 3 + 1"), encoding="utf-8")
    assert kb.sync().updated == ["lab-alpha"]
    # The passing run was of the old code: shown as such, not as this snippet's verdict.
    assert kb.show("lab-alpha")["last_run"]["current"] is False and kb.show("lab-beta")["last_run"]["current"] is True
    result = {o.id: o for o in kb.verify(jobs=1)}
    assert (
        result["lab-alpha"].status == "untrusted"
        and "changed since you trusted the deck lab-notes" in result["lab-alpha"].message
    )
    assert result["lab-beta"].passed
    info = {d.name: d for d in kb.decks()}["lab-notes"]
    assert (info.trust, info.trusted_snippets, info.changed_snippets) == ("partly trusted", 1, 1)
    # Text edits do not touch trust; trusting again takes the new hash.
    kb.trust("lab-notes")
    assert statuses(kb.verify(["lab-alpha"], jobs=1)) == {"lab-alpha": "passed"}
    _, forgotten = kb.trust("lab-notes", trusted=False)
    assert forgotten == 2 and statuses(kb.verify(["lab-beta"], jobs=1)) == {"lab-beta": "untrusted"}


def test_own_decks_and_unknown_decks_cannot_be_trusted(kb):
    with pytest.raises(DeckError, match="is your own"):
        kb.trust("bundled")
    with pytest.raises(DeckError, match="no deck 'nope'"):
        kb.trust("nope")


def test_reimporting_a_new_version_keeps_reviews_and_untrusts_edited_snippets(kb, lab, tmp_path):
    """Import v1, review, trust; import v2 with --update."""
    v1 = import_deck(kb, lab)
    kb.trust("lab-notes")
    answered = []
    while (item := kb.next_quiz_item()) is not None and len(answered) < 6:
        kb.answer(item.card.card_id, 3, duration_ms=1000)
        answered.append(item.card.card_id)
    lab_answers = [c for c in answered if c.startswith("lab-")]
    assert lab_answers
    reviews_before = db_rows(kb, "review_log")

    v2 = tmp_path / "v2" / "lab-notes"
    shutil.copytree(lab, v2)
    alpha = v2 / "fundamentals" / "lab-alpha.yaml"
    alpha.write_text(alpha.read_text(encoding="utf-8").replace("x = 2 + 2", "x = 1 + 3"), encoding="utf-8")
    beta = v2 / "fundamentals" / "lab-beta.yaml"
    beta.write_text(beta.read_text(encoding="utf-8").replace("Front?", "New front?"), encoding="utf-8")
    (v2 / "vision" / "lab-gamma.yaml").unlink()
    write_concept(v2, "lab-delta")
    outcome = import_deck(kb, v2, update=True)
    assert outcome.updated and outcome.deck == v1.deck
    assert outcome.added == ["lab-delta"] and outcome.changed == ["lab-alpha", "lab-beta"]
    assert outcome.retired == ["lab-gamma"] and outcome.untrusted_again == ["lab-alpha"]
    assert db_rows(kb, "review_log") == reviews_before  # every review kept, retired concept's too
    assert statuses(kb.verify(jobs=1)) == {"lab-alpha": "untrusted", "lab-beta": "passed", "own-concept": "passed"}
    assert not (v1.deck / "vision" / "lab-gamma.yaml").exists()
    assert [p for p in decks_dir_entries(kb) if p.startswith(".")] == []


def test_an_update_that_adds_or_edits_a_computed_expression_is_untrusted_again(kb, lab, tmp_path):
    """A computed card's answer is code too: trust covers it exactly as it covers the snippet."""
    import_deck(kb, lab)
    kb.trust("lab-notes")
    v2 = tmp_path / "v2" / "lab-notes"
    shutil.copytree(lab, v2)
    alpha = v2 / "fundamentals" / "lab-alpha.yaml"
    alpha.write_text(
        alpha.read_text(encoding="utf-8").replace(
            "cards:\n", "cards:\n  - {type: computed, id: times, question: 'Ten x?', answer: 'x * 10'}\n"
        ),
        encoding="utf-8",
    )
    outcome = import_deck(kb, v2, update=True)
    assert outcome.untrusted_again == ["lab-alpha"]  # the code is unchanged; the expression is new
    result = {o.id: o for o in kb.verify(jobs=1)}
    assert result["lab-alpha"].status == "untrusted" and result["lab-beta"].passed
    assert kb.show("lab-alpha")["last_run"] is None  # neither the snippet nor the expression ran
    info = {d.name: d for d in kb.decks()}["lab-notes"]
    assert info.changes == {"lab-alpha": ["computed card times added: x * 10"]}
    # Trusted again (the user read it), it runs; editing only the expression untrusts it again.
    kb.trust("lab-notes")
    assert statuses(kb.verify(["lab-alpha"], jobs=1)) == {"lab-alpha": "passed"}
    assert kb.show("lab-alpha")["last_run"]["values"]["x * 10"]["value"] == 40
    live = outcome.deck / "fundamentals" / "lab-alpha.yaml"
    live.write_text(live.read_text(encoding="utf-8").replace("x * 10", "x * 100"), encoding="utf-8")
    assert kb.sync().updated == ["lab-alpha"]
    assert statuses(kb.verify(["lab-alpha"], jobs=1)) == {"lab-alpha": "untrusted"}
    (change,) = {d.name: d for d in kb.decks()}["lab-notes"].changes["lab-alpha"]
    assert change == "computed card times changed: x * 10 -> x * 100"


def test_kb_trust_prints_what_changed_since_it_was_last_trusted(cli_home, lab, capsys):
    assert main(["import", str(lab)]) == 0
    assert main(["trust", "lab-notes"]) == 0
    alpha = cli_home / "decks" / "lab-notes" / "fundamentals" / "lab-alpha.yaml"
    alpha.write_text(
        alpha.read_text(encoding="utf-8").replace("x = 2 + 2", "x = 2 + 2\n    print('new line')"), encoding="utf-8"
    )
    capsys.readouterr()
    assert main(["trust", "lab-notes"]) == 0
    out = capsys.readouterr().out
    assert "changed since you last trusted the deck lab-notes:\n  lab-alpha: snippet code changed (+1 -0 lines)" in out
    assert "their code and their computed cards' expressions" in out
    alpha.write_text(
        alpha.read_text(encoding="utf-8").replace(
            "cards:\n", "cards:\n  - {type: computed, id: c, question: 'Q?', answer: 'x * 2'}\n"
        ),
        encoding="utf-8",
    )
    assert main(["decks"]) == 0
    out = capsys.readouterr().out
    assert "partly trusted (1/2, 1 changed)" in out and "lab-notes: lab-alpha: computed card c added: x * 2" in out


# --- --sandbox ------------------------------------------------------------------------------------------


def test_sandbox_refused_without_bubblewrap_landlock_or_seccomp(kb, lab, monkeypatch):
    """With neither bubblewrap, Landlock nor seccomp, an untrusted snippet never runs; own ones still do."""
    import_deck(kb, lab)
    monkeypatch.setenv("KB_BWRAP", "0")
    monkeypatch.setattr(runner_sandbox, "landlock_abi", lambda: 0)
    monkeypatch.setattr(runner_sandbox, "seccomp_available", lambda: False)
    assert runner_sandbox.sandbox_level() == "rlimits-only"
    result = {o.id: o for o in kb.verify(sandbox=True, jobs=1)}
    assert result["lab-alpha"].status == "untrusted" and "no sandbox" in result["lab-alpha"].message
    assert result["own-concept"].passed
    assert kb.show("lab-alpha")["last_run"] is None


def test_sandbox_runs_an_untrusted_snippet_confined(kb, lab):
    if runner_sandbox.sandbox_level() == "rlimits-only":
        pytest.skip("this machine has neither Landlock nor seccomp: --sandbox refuses (tested above)")
    import_deck(kb, lab)
    planned, skipped = kb._plan(["lab-alpha", "own-concept"], "cpu", changed_only=False, sandbox=True)
    assert skipped == [] and {spec.key: spec.sandbox for _, spec in planned} == {
        "lab-alpha": True,
        "own-concept": False,
    }
    (outcome,) = kb.verify(["lab-alpha"], sandbox=True, jobs=1)
    assert outcome.passed and "alpha ran" in outcome.output
    assert statuses(kb.verify(["lab-alpha"], jobs=1)) == {"lab-alpha": "untrusted"}  # still untrusted


# --- the CLI ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli_home(tmp_path, monkeypatch, deck):
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    monkeypatch.delenv("KB_CONTENT", raising=False)
    write_concept(deck, "own-concept", extra=CARDS)
    return tmp_path / "home"


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_import_decks_trust(cli_home, lab, capsys):
    code, out, err = run(capsys, "import", str(lab))
    assert code == 0 and err == ""
    assert "imported 3 concepts into the deck lab-notes" in out and "kb trust lab-notes" in out and "README.md" in out
    code, out, _ = run(capsys, "decks")
    assert code == 0 and "lab-notes" in out and "untrusted (0/2)" in out
    assert f"lab-notes  {cli_home / 'decks' / 'lab-notes'}" in out
    code, out, _ = run(capsys, "decks", "--json")
    by_name = {d["name"]: d for d in json.loads(out)}
    assert by_name["lab-notes"]["trust"] == "untrusted" and by_name["bundled"]["trust"] == "own"
    code, out, _ = run(capsys, "trust", "lab-notes")
    assert code == 0 and "trusting the 2 snippet(s) of the deck lab-notes" in out
    code, out, _ = run(capsys, "verify", "lab-alpha", "--json", "--jobs", "1")
    assert code == 0 and json.loads(out)["passed"] == 1
    code, out, err = run(capsys, "import", str(lab))
    assert (
        code == 1
        and out == ""
        and err.startswith("kb: a deck named 'lab-notes' is already imported")
        and err.count("\n") == 1
    )
    alpha = cli_home / "decks" / "lab-notes" / "fundamentals" / "lab-alpha.yaml"
    alpha.write_text(alpha.read_text(encoding="utf-8").replace("x = 2 + 2", "x = 4 + 0"), encoding="utf-8")
    code, out, _ = run(capsys, "show", "lab-alpha")
    assert code == 0 and "Last run: passed on cpu (" in out and ", of an earlier version of this snippet)" in out
    code, out, _ = run(capsys, "decks")
    assert "partly trusted (1/2, 1 changed)" in out


def test_cli_import_errors_are_listed_then_one_summary_line(cli_home, lab, capsys):
    bad = lab / "fundamentals" / "lab-beta.yaml"
    bad.write_text("id: lab-beta\nid: again\n", encoding="utf-8")
    code, out, err = run(capsys, "import", str(lab))
    lines = err.splitlines()
    assert code == 1 and out == ""
    assert lines[0].startswith(f"{bad}:2:1: duplicate key 'id'")
    assert lines[-1] == f"kb: {lab}: {len(lines) - 1} error(s); nothing was imported"
    assert not (cli_home / "decks").exists() or os.listdir(cli_home / "decks") == []


def test_cli_trust_unknown_deck(cli_home, capsys):
    code, out, err = run(capsys, "trust", "nope")
    assert code == 1 and err.startswith("kb: no deck 'nope'") and "kb decks" in err


def test_doctor_lists_deck_trust(kb, lab):
    import_deck(kb, lab)
    decks = {d["name"]: d for d in kb.doctor()["decks"]}
    assert decks["lab-notes"]["trust"] == "untrusted" and decks["lab-notes"]["kind"] == "imported"


def test_import_while_reviewing_loses_nothing(tmp_path, deck, lab):
    """An import (its sync is one write transaction) while another connection answers cards."""
    import threading

    for i in range(30):
        write_concept(deck, f"own-{i:02d}", extra=CARDS)
    for i in range(200):
        write_concept(lab, f"lab-bulk-{i:03d}", extra=CARDS)
    settings = Settings(home=tmp_path / "home", bundled_content=deck, new_per_day=1000, database_url=backend_url())
    with (
        KnowledgeBase(settings, clock=lambda: FIXED_NOW) as reviewer,
        KnowledgeBase(settings, clock=lambda: FIXED_NOW) as importer,
    ):
        reviewer.sync()
        errors: list[BaseException] = []

        def run_import():
            try:
                import_deck(importer, lab)
            except BaseException as exc:  # reported below
                errors.append(exc)

        thread = threading.Thread(target=run_import)
        thread.start()
        answered = 0
        while thread.is_alive() or answered < 20:
            item = reviewer.next_quiz_item()
            if item is None:
                break
            reviewer.answer(item.card.card_id, 3, duration_ms=500)
            answered += 1
        thread.join()
        assert errors == []
        assert reviewer.stats()["reviews_total"] == answered
        assert len([c for c in importer.concept_ids() if c.startswith("lab-")]) == 203


def test_trust_by_name_refuses_an_ambiguous_name(tmp_path, deck, lab):
    """A KB_CONTENT folder added later can share an imported deck's name: then the directory must be given."""
    home = tmp_path / "home"
    with KnowledgeBase(
        Settings(home=home, bundled_content=deck, database_url=backend_url()), clock=lambda: FIXED_NOW
    ) as kb:
        imported = import_deck(kb, lab)
    other = tmp_path / "other" / "lab-notes"
    write_concept(other, "other-lab", extra=snippet("assert True"))
    with KnowledgeBase(
        Settings(home=home, bundled_content=deck, extra_content=(other,), database_url=backend_url()),
        clock=lambda: FIXED_NOW,
    ) as kb:
        with pytest.raises(DeckError, match="2 decks are named 'lab-notes'.*give the directory"):
            kb.trust("lab-notes")
        deck_, count = kb.trust(str(imported.deck))
        assert deck_.path == imported.deck and count == 2


@pytest.mark.parametrize("name", ["bundled", "notes"])
def test_an_import_may_not_take_another_decks_name(kb, lab, name):
    with pytest.raises(DeckError, match=f"the name '{name}' is taken by the deck at .*--name"):
        import_deck(kb, lab, name=name)
    assert decks_dir_entries(kb) == []


def test_a_name_that_cannot_be_made_ascii_asks_for_name(kb, lab, tmp_path):
    archive = zip_folder(lab, tmp_path / "笔记.zip")
    with pytest.raises(DeckError, match="cannot make a deck name from '笔记.zip'.*pass --name NAME"):
        import_deck(kb, archive)
    assert import_deck(kb, archive, name="biji").concepts == 3


def test_a_copy_of_an_imported_deck_suggests_update(kb, lab, tmp_path):
    import_deck(kb, lab)
    copy = tmp_path / "lab-notes-v2"
    shutil.copytree(lab, copy)
    with pytest.raises(
        DeckImportError, match=r"new version of the deck lab-notes: kb import .* --name lab-notes --update\)"
    ):
        import_deck(kb, copy)
