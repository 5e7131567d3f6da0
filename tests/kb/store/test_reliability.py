"""Storage reliability: backups and their thinning, restore, start-up checks that move a bad file
aside, migrations on a populated fixture database, two processes answering at once, and property
tests of the parsers."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from helpers import FIXED_NOW, Clock, snapshot_db, write_concept
from kb.cli import main
from kb.config import Settings
from kb.service import KnowledgeBase
from kb.store import backup as backups
from kb.store import engine as store_engine
from kb.store import migrations
from kb.store.errors import StoreError

DATA = Path(__file__).resolve().parents[2] / "data"
FIXTURES = sorted(DATA.glob("db_v*.sqlite3"))
CARDS = "cards:\n  - {type: basic, id: b, front: 'Front?', back: Back.}\n"


def pragma(path: Path, name: str):
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def count(path: Path, table: str = "review_log") -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


def populated_kb(tmp_path: Path, deck: Path, clock, *, concepts: int = 6, answers: int = 4) -> Settings:
    """A KB_HOME with a synced deck and `answers` reviews, closed (its WAL checkpointed)."""
    for i in range(concepts):
        write_concept(deck, f"c{i:03d}", extra=CARDS)
    settings = Settings(home=tmp_path / "home", bundled_content=deck, timezone="UTC")
    with KnowledgeBase(settings, clock=clock) as kb:
        kb.sync()
        for entry in kb.due_queue()[:answers]:
            kb.answer(entry.card_id, 3)
    return settings


@pytest.fixture
def cli_env(tmp_path, monkeypatch, deck):
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    monkeypatch.delenv("KB_CONTENT", raising=False)
    for i in range(3):
        write_concept(deck, f"c{i:03d}", extra=CARDS)
    return Settings(home=tmp_path / "home", bundled_content=deck)


def run_cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --- 1. backups ----------------------------------------------------------------------------------


def test_backup_and_restore_round_trip_via_cli(cli_env, capsys):
    assert run_cli(capsys, "sync")[0] == 0
    code, out, err = run_cli(capsys, "backup")
    assert code == 0 and err == ""
    made = Path(out.strip())
    assert made.parent == cli_env.home / "backups" and backups.parse_backup_name(made.name)
    assert pragma(made, "application_id") == store_engine.APPLICATION_ID
    assert pragma(made, "quick_check") == "ok"
    assert not made.with_name(made.name + "-wal").exists()  # one self-contained file
    with KnowledgeBase(cli_env) as kb:  # an answer after the backup
        kb.answer(kb.due_queue()[0].card_id, 3)
    assert count(cli_env.db_path) == 1

    code, out, err = run_cli(capsys, "restore")
    assert code == 0 and err == ""
    assert f"restored {made}" in out
    assert count(cli_env.db_path) == 0  # the backup's state
    previous = Path(out.strip().splitlines()[-1].rsplit(" ", 1)[-1])
    assert count(previous) == 1  # what it replaced is kept, answer included
    assert pragma(cli_env.db_path, "quick_check") == "ok"
    # Restoring the given file brings the answer back.
    code, out, _ = run_cli(capsys, "restore", str(previous))
    assert code == 0 and count(cli_env.db_path) == 1


def test_restore_refuses_what_is_not_a_good_kb_backup(cli_env, capsys, tmp_path):
    code, _, err = run_cli(capsys, "restore")
    assert code == 1 and err.startswith("kb: no backup in ") and err.count("\n") == 1
    assert run_cli(capsys, "sync")[0] == 0
    before = snapshot_db(cli_env.db_path)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"\x07" * 8192)
    other = tmp_path / "other-app.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    corrupt = tmp_path / "corrupt.sqlite"
    shutil.copyfile(Path(run_cli(capsys, "backup")[1].strip()), corrupt)
    _corrupt_page(corrupt)
    for bad, words in (
        (garbage, "not a database"),
        (other, "not a kb database"),
        (corrupt, "quick_check"),
        (tmp_path / "missing.sqlite", "no such backup"),
    ):
        code, out, err = run_cli(capsys, "restore", str(bad))
        assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith("kb: "), err
        assert words in err
    assert snapshot_db(cli_env.db_path) == before


def test_backup_while_another_thread_writes_has_every_committed_row(tmp_path, deck):
    """The backup API gives a consistent snapshot holding every row committed before it began."""
    settings = populated_kb(tmp_path, deck, Clock(FIXED_NOW), concepts=2, answers=0)
    db = settings.db_path
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS filler (i INTEGER PRIMARY KEY, pad TEXT)")
    conn.close()
    committed = 0
    stop = threading.Event()

    def writer():
        nonlocal committed
        w = sqlite3.connect(db, isolation_level=None, timeout=5)
        w.execute("PRAGMA journal_mode=WAL")
        while not stop.is_set():
            w.execute("BEGIN IMMEDIATE")
            w.executemany("INSERT INTO filler (pad) VALUES (?)", [("x" * 500,)] * 20)
            w.execute("COMMIT")
            committed += 20
        w.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = []
        for i in range(5):
            time.sleep(0.05)
            floor = committed
            path = backups.make_backup(db, tmp_path / "bk", FIXED_NOW + timedelta(seconds=i))
            results.append((floor, path))
    finally:
        stop.set()
        thread.join()
    assert committed > 0
    for floor, path in results:
        assert pragma(path, "integrity_check") == "ok"
        rows = count(path, "filler")
        assert rows >= floor and rows % 20 == 0  # every committed row, and whole transactions only


def test_naive_file_copy_in_wal_mode_loses_committed_rows(tmp_path):
    """Why backups never copy the file: a plain copy in WAL mode misses committed rows."""
    db = tmp_path / "x.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("INSERT INTO t VALUES (1)")  # committed, but only in x.sqlite-wal
    shutil.copyfile(db, tmp_path / "naive.sqlite")
    backups.copy_database(db, tmp_path / "api.sqlite")
    conn.close()
    assert count(tmp_path / "naive.sqlite", "t") == 0
    assert count(tmp_path / "api.sqlite", "t") == 1


def test_backups_to_keep_thins_like_anki():
    """Old backups are thinned: all of today and yesterday, then 12 daily, 10 weekly, 9 monthly."""
    now = datetime(2026, 11, 26, 18, 0, tzinfo=timezone.utc)
    # 200 backups: 8 today and yesterday (every 6 hours), then one a day going back 192 days.
    recent = [now - timedelta(hours=6 * i) for i in range(8)]
    older = [datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc) - timedelta(days=i) for i in range(192)]
    stamps = recent + older
    assert len(set(stamps)) == 200
    keep = backups.backups_to_keep(stamps, now)
    assert set(recent) <= keep  # every backup of 26 and 25 November
    kept_older = sorted((s for s in keep if s not in recent), reverse=True)
    # As Anki's BackupFilter: newest first, each backup goes to the first tier that still has room
    # and whose period (UTC day; week = day ordinal // 7, Sunday to Saturday; month) is older than
    # the last one kept. So 09-30 and 08-31 become September's and August's monthly backups while
    # the weekly tier is still filling; the history runs out after 5 monthly ones.
    daily = "11-24 11-23 11-22 11-21 11-20 11-19 11-18 11-17 11-16 11-15 11-14 11-13"
    weekly = "11-07 10-31 10-24 10-17 10-10 10-03 09-26 09-19 09-12 09-05"
    monthly = "09-30 08-31 07-31 06-30 05-31"
    assert sorted(f"{s:%m-%d}" for s in kept_older) == sorted(f"{daily} {weekly} {monthly}".split())
    assert kept_older[:12] == older[:12]
    # A longer history (a backup every 2 days for 384 days) fills every tier: 12 + 10 + 9.
    sparse = [datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc) - timedelta(days=2 * i) for i in range(192)]
    assert len(backups.backups_to_keep(recent + sparse, now)) == 8 + 12 + 10 + 9
    # Several backups a day: only the newest of an older day stays.
    many = [datetime(2026, 11, 20, h, tzinfo=timezone.utc) for h in (1, 5, 23)]
    assert backups.backups_to_keep(many, now) == {many[-1]}
    # Backups from the future (a clock set back) are kept, never thinned away.
    future = now + timedelta(days=400)
    assert future in backups.backups_to_keep(stamps + [future], now)


def test_backups_are_thinned_by_study_day(tmp_path):
    """Two backups of the night before yesterday's rollover: UTC days call that 'yesterday' and keep
    both; study days (rollover 04:00) put both on the day before, where only the newest stays."""
    from kb.studyday import study_day

    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    night = [datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc), datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)]
    assert backups.backups_to_keep(night, now) == set(night)
    by_study_day = lambda moment: study_day(moment, tz=timezone.utc, rollover_hour=4)  # noqa: E731
    assert backups.backups_to_keep(night, now, by_study_day) == {night[1]}
    # kb itself thins with the user's study day (zone and rollover from the settings).
    settings = Settings(home=tmp_path / "home", bundled_content=tmp_path / "none", timezone="UTC", rollover_hour=4)
    with KnowledgeBase(settings, clock=lambda: now) as kb:
        folder = kb.settings.home / "backups"
        folder.mkdir(parents=True)
        for stamp in night:
            (folder / f"kb-{stamp:%Y%m%d-%H%M%S}.sqlite").write_bytes(b"x")
        kb.backup()
        assert sorted(s for s, _ in backups.list_backups(folder)) == [night[1], now]


def test_thin_backups_deletes_only_the_dropped_files(tmp_path):
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    folder = tmp_path / "bk"
    folder.mkdir()
    for i in range(60):
        stamp = now - timedelta(days=i)
        (folder / f"kb-{stamp:%Y%m%d-%H%M%S}.sqlite").write_bytes(b"x")
    (folder / "notes.txt").write_text("not a backup")
    keep = backups.backups_to_keep([s for s, _ in backups.list_backups(folder)], now)
    deleted = backups.thin_backups(folder, now)
    assert len(deleted) == 60 - len(keep) and not any(p.exists() for p in deleted)
    assert {s for s, _ in backups.list_backups(folder)} == keep
    assert (folder / "notes.txt").exists()


def test_periodic_backup_at_most_every_30_minutes_of_use(tmp_path, deck):
    clock = Clock(FIXED_NOW)
    settings = populated_kb(tmp_path, deck, clock, answers=0)
    folder = settings.home / "backups"

    def open_once():
        with KnowledgeBase(settings, clock=clock) as kb:
            kb.stats()

    open_once()
    assert backups.list_backups(folder) == []  # no reviews yet: nothing worth a backup
    with KnowledgeBase(settings, clock=clock) as kb:
        kb.answer(kb.due_queue()[0].card_id, 3)
    open_once()
    assert len(backups.list_backups(folder)) == 1
    clock.advance(minutes=20)
    open_once()
    assert len(backups.list_backups(folder)) == 1
    clock.advance(minutes=11)
    open_once()
    stamps = [s for s, _ in backups.list_backups(folder)]
    assert stamps == [FIXED_NOW, FIXED_NOW + timedelta(minutes=31)]


def test_optimize_backs_up_before_storing_parameters(tmp_path, deck, monkeypatch):
    clock = Clock(FIXED_NOW)
    settings = populated_kb(tmp_path, deck, clock, answers=2)
    import kb.optimizer as optimizer

    monkeypatch.setattr(optimizer, "MIN_INTER_DAY_REVIEWS", 0)
    scores = {"log_loss": 0.3, "rmse_bins": 0.02}
    report = {"weights": [0.5] * 21, "chosen": "fitted", "default": scores, "current": None, "candidate": scores}
    import kb.service.progress

    # An optimizer that reads its request and answers with a fixed report (the fit itself is tested elsewhere).
    script = f"import sys, json; json.load(sys.stdin); print(json.dumps({report!r}))"
    monkeypatch.setattr(kb.service.progress, "OPTIMIZER_COMMAND", (sys.executable, "-c", script))
    with KnowledgeBase(settings, clock=clock) as kb:
        kb.stats()  # opened (and backed up, as every 30 minutes) before
        first = set(kb.backups())
        assert kb.optimize()["chosen"] == "fitted"
        new = [p for p in kb.backups() if p not in first]
    assert len(new) == 1
    conn = sqlite3.connect(new[0])
    assert conn.execute("SELECT count(*) FROM setting WHERE key = 'fsrs_parameters'").fetchone()[0] == 0
    conn.close()


# --- 2. start-up checks ----------------------------------------------------------------------------


_JUNK = bytes(range(256)) * 7 + b"\xee" * (2000 - 256 * 7)


def _quick_check(path: Path) -> str:
    try:
        return pragma(path, "quick_check")
    except sqlite3.DatabaseError as exc:
        return str(exc)


def _corrupt_page(path: Path) -> None:
    """Overwrite 2000 bytes at offset 100 of a page holding live b-tree cells of kb's own data.

    The literal offset 4096+100 lands in page 2, the root of the one-row `deck` table, whose bytes
    100..2100 are free space in a kb database (see the test below); so the first page of one of kb's
    own tables (not a search index, which is rebuilt instead) where the same write breaks the
    b-tree is used.
    """
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        own = sorted(
            r[0]
            for r in conn.execute(
                "SELECT pageno FROM dbstat WHERE name NOT LIKE 'concept_fts%' AND name NOT LIKE 'concept_words%'"
            )
        )
    finally:
        conn.close()
    data = path.read_bytes()
    probe = path.with_name("probe.sqlite")
    for page in (p - 1 for p in own if p > 1):
        damaged = bytearray(data)
        damaged[page * 4096 + 100 : page * 4096 + 2100] = _JUNK
        probe.write_bytes(damaged)
        if _quick_check(probe) != "ok":
            probe.unlink()
            path.write_bytes(damaged)
            return
    raise AssertionError("no page where the damage shows")


def test_literal_g5_offset_hits_free_space_and_loses_nothing(tmp_path, deck):
    settings = populated_kb(tmp_path, deck, Clock(FIXED_NOW), concepts=30, answers=5)
    before = snapshot_db(settings.db_path)
    with open(settings.db_path, "r+b") as f:
        f.seek(4096 + 100)
        f.write(_JUNK)
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        assert kb.stats()["reviews_total"] == 5
    assert snapshot_db(settings.db_path) == before and pragma(settings.db_path, "integrity_check") == "ok"


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _garbage(path: Path) -> None:
    path.write_bytes(hashlib.sha256(b"seed").digest() * 512)


def _other_app(path: Path) -> None:
    path.unlink()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, blob BLOB)")
    conn.execute("INSERT INTO photos (blob) VALUES (x'00ff')")
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (_corrupt_page, "quick_check failed"),  # a page of kb's own data overwritten
        (_truncate, "malformed"),  # truncated
        (_garbage, "file is not a database"),  # garbage bytes
        (_other_app, "not a kb database (application_id 0x0)"),  # another app's SQLite file
    ],
    ids=["corrupt-page", "truncated", "garbage", "other-app"],
)
def test_bad_database_is_moved_aside_and_the_newest_backup_named(tmp_path, deck, capsys, monkeypatch, damage, words):
    clock = Clock(FIXED_NOW)
    settings = populated_kb(tmp_path, deck, clock, concepts=30, answers=5)
    with KnowledgeBase(settings, clock=clock) as kb:
        good = kb.backup()
    db = settings.db_path
    damage(db)
    damaged = db.read_bytes()
    clock.advance(hours=1)
    with pytest.raises(StoreError) as caught, KnowledgeBase(settings, clock=clock) as kb:
        kb.stats()
    message = str(caught.value)
    moved = db.with_name(f"kb.sqlite.corrupt-{clock.now:%Y%m%d-%H%M%S}")
    assert words in message
    assert f"moved it aside to {moved}" in message
    assert f"run `kb restore {good}`" in message
    assert moved.read_bytes() == damaged and not db.exists()  # moved, never deleted

    # The CLI says the same in one line; `kb restore` then brings the backup back.
    damage_again = db.with_name("second")
    shutil.copyfile(moved, damage_again)
    os.replace(damage_again, db)
    monkeypatch.setenv("KB_HOME", str(settings.home))
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    code, out, err = run_cli(capsys, "stats")
    # Two lines: the file moved aside above is still pending (said on every command), then this one.
    notice, error = err.splitlines()
    assert code == 1 and out == "" and notice.startswith("kb: a damaged database was moved aside (")
    assert error.startswith(f"kb: {db}: ") and "kb restore" in error
    code, out, err = run_cli(capsys, "restore", str(good))
    assert code == 0, err
    assert count(db) == 5 and pragma(db, "quick_check") == "ok"


def test_bad_database_without_backup_says_so(tmp_path):
    settings = Settings(home=tmp_path / "home", bundled_content=tmp_path)
    settings.home.mkdir()
    _garbage(settings.db_path)
    with pytest.raises(StoreError, match="there is no backup"), KnowledgeBase(settings) as kb:
        kb.stats()
    assert len(list(settings.home.glob("kb.sqlite.corrupt-*"))) == 1


def test_zero_byte_database_is_refused_not_moved_nor_recreated(tmp_path):
    settings = Settings(home=tmp_path / "home", bundled_content=tmp_path)
    settings.home.mkdir()
    settings.db_path.write_bytes(b"")
    with pytest.raises(StoreError, match="empty"), KnowledgeBase(settings) as kb:
        kb.stats()
    assert settings.db_path.stat().st_size == 0
    assert not list(settings.home.glob("kb.sqlite.corrupt-*"))


def test_open_while_another_writer_holds_the_lock_is_not_corruption(tmp_path, deck):
    settings = populated_kb(tmp_path, deck, Clock(FIXED_NOW), answers=1)
    holder = sqlite3.connect(settings.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
            assert kb.stats()["reviews_total"] == 1  # reads need no write lock
        assert time.monotonic() - started < 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert settings.db_path.exists() and not list(settings.home.glob("kb.sqlite.corrupt-*"))


def test_newer_schema_is_refused_and_left_in_place(tmp_path, deck):
    """A database from a newer kb is refused, not downgraded, and left as it was."""
    settings = populated_kb(tmp_path, deck, Clock(FIXED_NOW), answers=1)
    conn = sqlite3.connect(settings.db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = snapshot_db(settings.db_path)
    with pytest.raises(StoreError, match="newer kb"), KnowledgeBase(settings) as kb:
        kb.stats()
    assert snapshot_db(settings.db_path) == before and pragma(settings.db_path, "user_version") == 99


# --- 3. migrations ---------------------------------------------------------------------------------


def _fixture_home(tmp_path: Path, fixture: Path) -> Settings:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(fixture, home / "kb.sqlite")
    return Settings(home=home, bundled_content=tmp_path / "no-deck", user="learner")  # make_fixture_db's user


def _answers(path: Path) -> int:
    """Rows of the review log that are answers (schema 4 on, changes by hand are rows too)."""
    conn = sqlite3.connect(path)
    try:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(review_log)")]
        where = " WHERE kind != 'manual'" if "kind" in columns else ""
        return conn.execute(f"SELECT count(*) FROM review_log{where}").fetchone()[0]
    finally:
        conn.close()


def test_fixture_databases_exist_for_the_current_schema():
    assert DATA / f"db_v{store_engine.SCHEMA_VERSION}.sqlite3" in FIXTURES


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_fixture_database_opens_and_keeps_its_reviews(tmp_path, fixture):
    """Every released schema opens (migrating when older) and loses no row."""
    settings = _fixture_home(tmp_path, fixture)
    tables = ("review_log", "card_state", "card", "concept", "snippet_run", "setting")
    # Schema 3 recomputes the trust hashes (they cover computed expressions now): every other value
    # of every row must be kept.
    # Schema 4 adds the review log's kind (every older row is an answer of the daily quiz).
    # Schema 5 gives every row of the review log, the schedules and the settings to a user (the
    # one who opens the database for the upgrade).
    recomputed = {
        "concept": ("snippet_hash",),
        "snippet_run": ("code_hash",),
        "review_log": ("kind", "user_name"),
        "card_state": ("user_name",),
        "setting": ("user_name",),
    }
    before = snapshot_db(settings.db_path, tables, leave_out=recomputed)
    assert before["review_log"][0] > 0 and before["snippet_run"][0] == 1
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        stats = kb.stats()
        assert stats["reviews_total"] == _answers(settings.db_path)
        assert stats["parameters"] == "optimized"
    assert snapshot_db(settings.db_path, tables, leave_out=recomputed) == before
    assert pragma(settings.db_path, "user_version") == store_engine.SCHEMA_VERSION
    conn = sqlite3.connect(settings.db_path)
    kinds = {kind for (kind,) in conn.execute("SELECT kind FROM review_log")}
    conn.close()
    assert kinds == ({"review"} if fixture.name < "db_v4" else {"review", "manual", "custom"})
    conn = sqlite3.connect(settings.db_path)
    users = {
        table: {user for (user,) in conn.execute(f"SELECT DISTINCT user_name FROM {table}")}
        for table in ("review_log", "card_state", "card_mark", "setting", "trusted_snippet")
    }
    conn.close()
    assert users["review_log"] == {"learner"}  # (older fixtures have no marks)
    assert all(found <= {"learner"} for found in users.values()), users
    assert pragma(settings.db_path, "integrity_check") == "ok"


@pytest.mark.parametrize(
    "fixture", [f for f in FIXTURES if f.name in ("db_v1.sqlite3", "db_v2.sqlite3")], ids=lambda p: p.name
)
def test_schema_3_rehashes_trust_over_executed_strings_and_keeps_it(tmp_path, fixture):
    """Every hash becomes kb.trust's over code and computed expressions; trust and current runs stay."""
    from kb.trust import executed_strings, trust_hash

    settings = _fixture_home(tmp_path, fixture)
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        kb.stats()  # opens (and migrates) the database
    conn = sqlite3.connect(settings.db_path)
    try:
        concepts = conn.execute(
            "SELECT id, deck_path, data_json, snippet_hash FROM concept WHERE snippet_hash IS NOT NULL"
        ).fetchall()
        trusted = {
            (d, c): (h, e)
            for d, c, h, e in conn.execute(
                "SELECT deck_path, concept_id, snippet_hash, executed_json FROM trusted_snippet"
            )
        }
        runs = conn.execute("SELECT concept_id, code_hash FROM snippet_run").fetchall()
    finally:
        conn.close()
    expected = {cid: trust_hash(executed_strings(json.loads(data))) for cid, _, data, _ in concepts}
    assert {cid: h for cid, _, _, h in concepts} == expected
    assert trusted, "the fixture trusts a deck"
    for (_deck_path, concept_id), (hash_, executed) in trusted.items():
        assert hash_ == expected[concept_id]  # still trusted: what was trusted is what runs
        assert json.loads(executed) == executed_strings(
            json.loads(next(d for c, _, d, _ in concepts if c == concept_id))
        )
    assert [(cid, h == expected[cid]) for cid, h in runs] == [(runs[0][0], True)]  # the run is still current


# The fake-migration tests take the newest fixture (the current schema) to a made-up next version.
CURRENT = store_engine.SCHEMA_VERSION
NEXT = CURRENT + 1


def _current(tmp_path) -> Settings:
    return _fixture_home(tmp_path, DATA / f"db_v{CURRENT}.sqlite3")


def _columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def test_migration_runs_in_one_transaction_after_a_backup(tmp_path, monkeypatch):
    settings = _current(tmp_path)
    before = snapshot_db(settings.db_path, ("review_log", "card_state"))
    seen = {}

    def add_column(conn):
        seen["in_transaction"] = conn.connection.dbapi_connection.in_transaction
        seen["backups"] = backups.list_backups(settings.home / "backups")
        conn.exec_driver_sql("ALTER TABLE review_log ADD COLUMN note TEXT")

    monkeypatch.setattr(store_engine, "SCHEMA_VERSION", NEXT)
    monkeypatch.setitem(migrations.MIGRATIONS, CURRENT, add_column)
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        assert kb.stats()["reviews_total"] == _answers(settings.db_path)
    assert seen["in_transaction"] is True
    ((_, backup_path),) = seen["backups"]  # taken before the step ran
    assert pragma(backup_path, "user_version") == CURRENT and "note" not in _columns(backup_path, "review_log")
    assert snapshot_db(backup_path, ("review_log", "card_state")) == before
    assert pragma(settings.db_path, "user_version") == NEXT
    assert "note" in _columns(settings.db_path, "review_log")
    assert snapshot_db(settings.db_path, ("card_state",)) == {"card_state": before["card_state"]}
    assert count(settings.db_path) == before["review_log"][0]


def test_failing_migration_leaves_the_database_unchanged(tmp_path, monkeypatch):
    settings = _current(tmp_path)
    before = snapshot_db(settings.db_path)

    def half_done(conn):
        conn.exec_driver_sql("ALTER TABLE review_log ADD COLUMN note TEXT")
        conn.exec_driver_sql("DELETE FROM review_log")
        raise RuntimeError("step N -> N+1 broke")

    monkeypatch.setattr(store_engine, "SCHEMA_VERSION", NEXT)
    monkeypatch.setitem(migrations.MIGRATIONS, CURRENT, half_done)
    with pytest.raises(StoreError) as caught, KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        kb.stats()
    message = str(caught.value)
    assert "step N -> N+1 broke" in message and "the database is unchanged" in message
    (backup_path,) = KnowledgeBase(settings).backups()
    assert str(backup_path) in message and backup_path.exists()
    assert snapshot_db(settings.db_path) == before
    assert pragma(settings.db_path, "user_version") == CURRENT
    assert "note" not in _columns(settings.db_path, "review_log")
    assert settings.db_path.exists() and not list(settings.home.glob("kb.sqlite.corrupt-*"))


def test_missing_migration_step_is_refused(tmp_path, monkeypatch):
    settings = _current(tmp_path)
    before = snapshot_db(settings.db_path)
    monkeypatch.setattr(store_engine, "SCHEMA_VERSION", NEXT)
    with (
        pytest.raises(StoreError, match=f"no migration from schema {CURRENT} to {NEXT}"),
        KnowledgeBase(settings) as kb,
    ):
        kb.stats()
    assert snapshot_db(settings.db_path) == before


def _schema(path: Path) -> dict[str, list[tuple]]:
    """Every table's columns (name, type, not null, default, pk) and every index's columns."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        out = {}
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') "
            "AND name NOT LIKE 'sqlite_%' AND sql IS NOT NULL ORDER BY name"
        ):
            info = (
                conn.execute(f'PRAGMA table_info("{name}")').fetchall()
                or conn.execute(f'PRAGMA index_info("{name}")').fetchall()
            )
            out[name] = [tuple(r[1:]) for r in info]
        return out
    finally:
        conn.close()


def test_migrated_schema_equals_a_new_database(tmp_path):
    """Every old fixture, migrated, has exactly the tables, columns and indexes of a new database."""
    fresh = Settings(home=tmp_path / "fresh", bundled_content=tmp_path / "no-deck")
    with KnowledgeBase(fresh) as kb:
        kb.stats()
    expected = _schema(fresh.db_path)
    assert "trusted_snippet" in expected
    for fixture in FIXTURES:
        (tmp_path / fixture.stem).mkdir()
        settings = _fixture_home(tmp_path / fixture.stem, fixture)
        with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
            kb.stats()
        assert _schema(settings.db_path) == expected, fixture.name


def test_v1_to_v2_keeps_the_trust_of_a_trusted_deck_as_snippet_hashes(tmp_path):
    """Schema 2 trusts snippets by hash: a deck trusted under schema 1 keeps its snippets as they were."""
    settings = _fixture_home(tmp_path, DATA / "db_v1.sqlite3")
    conn = sqlite3.connect(settings.db_path)
    (deck_path,) = conn.execute("SELECT path FROM deck WHERE trusted").fetchone()
    conn.close()
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        kb.stats()
    conn = sqlite3.connect(settings.db_path)
    rows = conn.execute("SELECT deck_path, concept_id, snippet_hash FROM trusted_snippet").fetchall()
    # Schema 3 rehashed it (code and computed expressions); it must still equal the concept's hash.
    (current,) = conn.execute("SELECT snippet_hash FROM concept WHERE id = 'fixture-snippet'").fetchone()
    conn.close()
    assert rows == [(deck_path, "fixture-snippet", current)]


# --- 4. two instances ------------------------------------------------------------------------------

ANSWER_SCRIPT = """
import json, os, sys, time
from pathlib import Path
from kb.config import Settings
from kb.service import KnowledgeBase
home, deck, go, ids = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
kb = KnowledgeBase(Settings(home=Path(home), bundled_content=Path(deck)))
kb.engine  # opened before the start signal, so both processes answer at the same time
Path(sys.argv[5]).touch()
while not go.exists():
    time.sleep(0.005)
with kb:
    for card_id in ids:
        kb.answer(card_id, 3)
print("done", len(ids))
"""


def test_two_processes_answering_at_once_lose_nothing(tmp_path, deck):
    """Two kb instances on one KB_HOME answer at the same time; every answer is stored."""
    n = 40
    settings = populated_kb(tmp_path, deck, Clock(FIXED_NOW), concepts=2 * n, answers=0)
    with KnowledgeBase(settings) as kb:
        cards = [f"c{i:03d}/b" for i in range(2 * n)]
        assert all(kb.quiz_item(c) is not None for c in cards[:2])
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                ANSWER_SCRIPT,
                str(settings.home),
                str(deck),
                str(go),
                json.dumps(part),
                str(tmp_path / f"ready{i}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, part in enumerate((cards[:n], cards[n:]))
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == f"done {n}"
    assert count(settings.db_path) == 2 * n
    assert count(settings.db_path, "card_state") == 2 * n
    assert pragma(settings.db_path, "integrity_check") == "ok"


def test_answer_waits_out_a_writer_that_holds_the_lock_past_the_busy_timeout(tmp_path, deck, monkeypatch):
    """BEGIN IMMEDIATE gives up after the busy timeout; record_answer tries again, bounded."""
    from kb.store import reviews

    settings = populated_kb(tmp_path, deck, Clock(FIXED_NOW), answers=0)
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        card = kb.due_queue()[0].card_id
        kb.engine.dispose()
        kb._engine = store_engine.create_db_engine(settings.db_path, busy_timeout_ms=150)
        holder = sqlite3.connect(settings.db_path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        timer = threading.Timer(0.35, holder.execute, ("COMMIT",))
        timer.start()
        try:
            outcome = kb.answer(card, 3)  # 150 ms x 3 attempts > 350 ms
        finally:
            timer.join()
            holder.close()
        assert outcome.review_id
        # Held for longer than every attempt: a clear error, and nothing half-written.
        holder = sqlite3.connect(settings.db_path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="database is busy"):
                kb.answer(kb.due_queue()[0].card_id, 3)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert count(settings.db_path) == 1
    assert reviews.LOCK_RETRIES == 2


# --- 5. fuzzing ------------------------------------------------------------------------------------

FUZZ = hsettings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=300)  # surrogates included
YAMLISH = st.lists(
    st.sampled_from(
        [
            "id: ",
            "title:",
            "  en: ",
            "  zh: ",
            "cards:",
            "  - ",
            "{type: basic, ",
            "front: ",
            "}",
            "[",
            "]",
            "{",
            "&a ",
            "*a",
            "<<: ",
            "!!python/object/apply:os.system ",
            "'",
            '"',
            "\\u202e",
            "\n",
            "\t",
            "  ",
            "---\n",
            "...\n",
            "#",
            "|",
            ">",
            "?",
            ":",
            ",",
            "-",
            "null",
            "yes",
            "1.10",
            "0123",
            "2024-01-01",
            "é",
            "注意力",
            "\ufeff",
            "\x00",
            "\r",
            "\r\n",
            "\x85",
            "\u2028",
            "definition: ",
            "category: layers",
            "snippet:",
        ]
    ),
    max_size=40,
).map("".join)


def _check_parsed(result) -> None:
    assert (result.concept is None) == bool(result.errors)  # a concept, or the errors that prevent one
    for error in result.errors:
        assert error.line >= 1 and error.col >= 1, error
        assert isinstance(error.message, str) and error.message


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_parse_bytes_arbitrary_bytes(data):
    from kb.loader import parse_bytes

    _check_parsed(parse_bytes(Path("fuzz.yaml"), data))


@FUZZ
@given(text=st.one_of(ANY_TEXT, YAMLISH))
def test_fuzz_parse_bytes_arbitrary_text(text):
    from kb.loader import parse_bytes

    result = parse_bytes(Path("fuzz.yaml"), text.encode("utf-8", "surrogatepass"))
    _check_parsed(result)


@pytest.fixture(scope="module")
def search_kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    deck = root / "deck"
    write_concept(deck, "attention", title_zh="注意力", definition="Scaled dot-product attention.")
    write_concept(deck, "kl-divergence", title_en="KL divergence", title_zh="KL散度")
    with KnowledgeBase(Settings(home=root / "home", bundled_content=deck), clock=lambda: FIXED_NOW) as kb:
        kb.sync()
        yield kb


@FUZZ
@given(
    query=st.one_of(
        ANY_TEXT,
        st.lists(
            st.sampled_from(
                [
                    '"',
                    "'",
                    "*",
                    "(",
                    ")",
                    "AND",
                    "OR",
                    "NOT",
                    "NEAR",
                    "^",
                    ":",
                    "-",
                    "+",
                    "kl",
                    "注意",
                    "atten",
                    "\x00",
                    " ",
                ]
            ),
            max_size=12,
        ).map("".join),
    )
)
def test_fuzz_search_never_raises(search_kb, query):
    hits = search_kb.search(query, limit=5)
    assert isinstance(hits, list)


def _quiz_cards():
    import random

    from kb.quiz import present

    concept = {
        "id": "c",
        "title": {"en": "Concept", "zh": "概念"},
        "summary": {"en": "s", "zh": "s"},
        "definition": "d",
        "category": "layers",
    }
    rng = random.Random(0)
    return [
        present(
            card_id="c/t",
            kind="typed",
            payload={"question": "Q?", "answer": "softmax|soft max"},
            concept=concept,
            rng=rng,
        ),
        present(
            card_id="c/n",
            kind="typed",
            payload={"question": "Q?", "answer": "0.125", "tolerance": 0.01},
            concept=concept,
            rng=rng,
        ),
        present(card_id="c/z", kind="typed", payload={"question": "Q?", "answer": "注意力"}, concept=concept, rng=rng),
        present(card_id="c/v", kind="typed", payload={"question": "Q?", "answer": "(2, 3)"}, concept=concept, rng=rng),
        present(
            card_id="c/m",
            kind="choice",
            payload={"question": "Q?", "answer": "A", "distractors": ["B", "C"]},
            concept=concept,
            rng=rng,
        ),
    ]


QUIZ_CARDS = _quiz_cards()


@FUZZ
@given(
    response=st.one_of(ANY_TEXT, st.from_regex(r"[-+]?[0-9.eE,()\[\] ]{0,30}", fullmatch=True), st.text(max_size=5000))
)
def test_fuzz_grade_never_raises(response):
    from kb.quiz import grade

    for card in QUIZ_CARDS:
        result = grade(card, response)
        assert result is not None and result.proposed_rating in (1, 3)
