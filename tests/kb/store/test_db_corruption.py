"""A damaged database found at any moment: derived data is rebuilt, the review log is never dropped,
and kb never quietly starts an empty database.

Pages are damaged the way a failing disk does it: a b-tree page's header overwritten with zeros, in
the table chosen (found with SQLite's dbstat).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import write_concept
from kb.cli import main
from kb.store import engine as store_engine

CARDS = "cards:\n  - {type: basic, id: b, front: 'Front?', back: Back.}\n"


def damage(db: Path, table: str, *, every_page: bool = False) -> int:
    """Zero the header of one page of `table` (or of each), after a checkpoint so the pages are in the file."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno", (table,))]
    finally:
        conn.close()
    assert pages, f"{table} has no page"
    targets = pages if every_page else [pages[len(pages) // 2]]
    with open(db, "r+b") as f:
        for target in targets:
            f.seek((target - 1) * page_size)
            f.write(b"\0" * 16)
    return len(targets)


@pytest.fixture
def home(tmp_path, monkeypatch):
    deck = tmp_path / "bundled"
    for i in range(120):  # enough text for the search index to span many pages
        write_concept(deck, f"concept-{i:03d}", definition="attention softmax convolution " * 40, extra=CARDS)
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    monkeypatch.delenv("KB_CONTENT", raising=False)
    return tmp_path / "home"


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def answer_cards(capsys, n: int) -> None:
    __import__("sys").stdin = __import__("io").StringIO("x\n3\n" * n + "q\n")
    code, out, _ = run(capsys, "quiz", "--plain", "--limit", str(n))
    assert code == 0 and f"{n} reviewed" in out, out


def reviews(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM review_log").fetchone()[0]
    finally:
        conn.close()


def test_a_damaged_search_index_at_start_up_is_rebuilt_and_nothing_is_lost(home, capsys, monkeypatch):
    assert run(capsys, "sync")[0] == 0
    answer_cards(capsys, 3)
    db = home / "kb.sqlite"
    damage(db, "concept_fts_data")
    code, out, err = run(capsys, "search", "softmax")
    assert code == 0 and "concept-000" in out, (out, err)
    assert "the search index was damaged; kb rebuilt it from your data (no review or note was lost)" in err
    assert reviews(db) == 3
    kept = list(home.glob("kb.sqlite.damaged-*"))
    assert [p.name for p in kept if not p.name.endswith(("-wal", "-shm"))], "the damaged file is kept"
    assert not list(home.glob("kb.sqlite.corrupt-*"))
    code, _, err = run(capsys, "stats")
    assert code == 0 and err == ""  # said once; nothing pending


def test_damage_found_in_use_in_a_large_database_is_handled_the_same_way(home, capsys, monkeypatch):
    """Above the size at which the start-up check is skipped, the damage is met by a query."""
    assert run(capsys, "sync")[0] == 0
    answer_cards(capsys, 2)
    db = home / "kb.sqlite"
    damage(db, "concept_fts_data", every_page=True)
    monkeypatch.setattr(store_engine, "QUICK_CHECK_MAX_BYTES", 0)  # as for a database over 64 MiB
    code, out, err = run(capsys, "search", "softmax")
    assert code == 1 and out == "" and err.count("\n") == 1, (out, err)
    assert "the search index was damaged; kb rebuilt it" in err and "run the command again" in err
    code, out, err = run(capsys, "search", "softmax")
    assert code == 0 and "concept-000" in out and err == ""
    assert reviews(db) == 2


def test_damaged_reviews_are_moved_aside_and_every_command_says_so_until_restored(home, capsys, monkeypatch):
    assert run(capsys, "sync")[0] == 0
    answer_cards(capsys, 3)
    code, backup, _ = run(capsys, "backup")
    assert code == 0
    answer_cards(capsys, 1)
    db = home / "kb.sqlite"
    damage(db, "review_log")
    monkeypatch.setattr(store_engine, "QUICK_CHECK_MAX_BYTES", 0)
    code, out, err = run(capsys, "stats")
    assert code == 1 and err.count("\n") == 1, err
    assert f"{db} is damaged beyond the search index; it was moved aside to" in err
    assert f"the newest backup is {backup.strip()}" in err
    (moved,) = [p for p in home.glob("kb.sqlite.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    # kb goes on with a new database, but never quietly: every command says so.
    for command in (["stats"], ["search", "softmax"], ["doctor"]):
        code, out, err = run(capsys, *command)
        assert f"a damaged database was moved aside ({moved.name} in {home})" in err, (command, err)
        assert "kb restore" in err and "--dismiss" in err
    code, out, err = run(capsys, "restore")
    assert code == 0 and "restored" in out
    code, _, err = run(capsys, "stats")
    assert code == 0 and err == ""
    assert reviews(db) == 3  # the backup's reviews are back
    assert moved.with_name(moved.name + ".dismissed").exists()  # still kept, never deleted


def test_dismiss_keeps_the_new_database_and_stops_the_notice(home, capsys, monkeypatch):
    assert run(capsys, "sync")[0] == 0
    answer_cards(capsys, 1)
    damage(home / "kb.sqlite", "review_log")
    monkeypatch.setattr(store_engine, "QUICK_CHECK_MAX_BYTES", 0)
    assert run(capsys, "stats")[0] == 1
    code, out, err = run(capsys, "restore", "--dismiss")
    assert code == 0 and "kept the current database" in out
    code, _, err = run(capsys, "stats")
    assert code == 0 and err == ""


def test_doctor_runs_when_the_database_cannot_be_opened(home, capsys):
    home.mkdir(parents=True)
    (home / "kb.sqlite").write_bytes(b"")  # an empty file is refused, not taken as a new database
    code, out, err = run(capsys, "doctor")
    assert code == 1
    assert "integrity: cannot open the database:" in out and "the database file is empty" in out
    assert "isolation:" in out and "packages:" in out  # the rest of the report is there


# --- property: damage anywhere is an answer in one line, never a traceback, never lost reviews ------

DERIVED = ("concept_fts_data", "concept_fts_idx", "concept_fts_content", "concept_words_data", "concept_words_content")
CORE = ("review_log", "card_state", "card", "concept", "source_file")


@pytest.fixture(scope="module")
def answered_db(tmp_path_factory):
    """A database with a synced deck and three answers, made once; each example damages a copy."""
    import io
    import os
    import sys

    root = tmp_path_factory.mktemp("corrupt-master")
    deck = root / "bundled"
    for i in range(40):
        write_concept(deck, f"concept-{i:03d}", definition="attention softmax convolution " * 40, extra=CARDS)
    old = {k: os.environ.get(k) for k in ("KB_HOME", "KB_BUNDLED_CONTENT", "KB_CONTENT")}
    os.environ.update(KB_HOME=str(root / "home"), KB_BUNDLED_CONTENT=str(deck))
    os.environ.pop("KB_CONTENT", None)
    stdin, sys.stdin = sys.stdin, io.StringIO("x\n3\n" * 3 + "q\n")
    try:
        assert main(["quiz", "--plain", "--limit", "3"]) == 0
    finally:
        sys.stdin = stdin
        for key, value in old.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
    db = root / "home" / "kb.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return db, deck


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(table=st.sampled_from(DERIVED + CORE), where=st.floats(0, 1), every_page=st.booleans(), large=st.booleans())
def test_damage_anywhere_never_crashes_and_never_loses_reviews_to_the_index(
    answered_db, tmp_path_factory, monkeypatch, table, where, every_page, large
):
    import shutil

    master, deck = answered_db
    home = tmp_path_factory.mktemp("corrupt")
    shutil.copy(master, home / "kb.sqlite")
    monkeypatch.setenv("KB_HOME", str(home))
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    if large:
        monkeypatch.setattr(store_engine, "QUICK_CHECK_MAX_BYTES", 0)  # no check at start-up
    conn = sqlite3.connect(home / "kb.sqlite")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno", (table,))]
    conn.close()
    targets = pages if every_page else [pages[min(len(pages) - 1, int(where * len(pages)))]]
    with open(home / "kb.sqlite", "r+b") as f:
        for page in targets:
            f.seek((page - 1) * page_size)
            f.write(b"\0" * 16)
    for command in (["stats"], ["search", "softmax"], ["stats"]):
        code = main(command)  # any exception escaping main would fail the test here
        assert code in (0, 1)
    if table in DERIVED:  # the review log survives a damaged index, in the file kb uses
        assert reviews(home / "kb.sqlite") == 3
        assert not list(home.glob("kb.sqlite.corrupt-*"))
