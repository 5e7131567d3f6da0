"""Database faults: deferred-upgrade BUSY, leaked sessions, a read-only data directory or database
file, a full disk, a deck file edited while it is loaded.

Each "nothing lost" check compares row counts and content hashes of every table before and after.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import OperationalError

from helpers import FIXED_NOW, Clock, concept_yaml, snapshot_db, write_concept
from kb import loader
from kb.config import Settings
from kb.service import KnowledgeBase
from kb.store import engine as store_engine
from kb.store import ingest
from kb.store.errors import StoreError
from kb.store.tables import SettingRow

REPO = Path(__file__).resolve().parents[3]
CARDS = "cards:\n  - {type: basic, id: b, front: 'Front?', back: Back.}\n"
NOBODY = 65534
SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT = 5, 517


def query(path: Path, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def populated_kb(home: Path, deck: Path, *, concepts: int = 6, answers: int = 3) -> Settings:
    """A KB_HOME with a synced deck and `answers` reviews, closed (its WAL checkpointed)."""
    for i in range(concepts):
        write_concept(deck, f"c{i:03d}", extra=CARDS)
    # Resolved as the CLI resolves KB_HOME and KB_BUNDLED_CONTENT: the same deck path, no re-sync.
    settings = Settings(home=home.resolve(), bundled_content=deck.resolve(), timezone="UTC")
    with KnowledgeBase(settings, clock=Clock(FIXED_NOW)) as kb:
        kb.sync()
        for entry in kb.due_queue()[:answers]:
            kb.answer(entry.card_id, 3)
    return settings


def cli_env(home: Path, deck: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(KB_HOME=str(home), KB_BUNDLED_CONTENT=str(deck), PYTHONPATH=str(REPO), **extra)
    return env


def one_error_line(stderr: str) -> str:
    """The CLI's failure output: exactly one line `kb: ...`, never a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kb: "), stderr
    return lines[0]


def assert_answers_atomic(db: Path) -> None:
    """Every card state is the one its newest review-log row stored: no answer was half-written."""
    states = dict(query(db, "SELECT card_pk, data_json FROM card_state"))
    logged = {
        pk: after
        for pk, after in query(
            db,
            "SELECT card_pk, state_after FROM review_log WHERE id IN (SELECT max(id) FROM review_log GROUP BY card_pk)",
        )
    }
    assert set(states) == set(logged)
    for pk, data in states.items():
        assert json.loads(logged[pk])["card"] == json.loads(data), pk


# --- deferred-upgrade BUSY ---------------------------------------------------------------------------


def _counter_db(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    conn.execute("INSERT INTO counter VALUES (1, 0)")
    conn.close()


def test_plain_deferred_begin_fails_when_a_reader_upgrades_after_a_foreign_commit(tmp_path):
    """The failure kb's recipe rules out: BEGIN (deferred) reads a snapshot; another connection
    commits; the first then writes, and SQLite refuses at once (SQLITE_BUSY_SNAPSHOT): no busy
    timeout helps, because the snapshot it read from is already stale."""
    db = tmp_path / "g3.sqlite"
    _counter_db(db)
    reader = sqlite3.connect(db, isolation_level=None, timeout=5)
    other = sqlite3.connect(db, isolation_level=None, timeout=5)
    try:
        reader.execute("BEGIN")
        n = reader.execute("SELECT n FROM counter").fetchone()[0]
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE counter SET n = n + 1")
        other.execute("COMMIT")
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked") as caught:
            reader.execute("UPDATE counter SET n = ?", (n + 1,))
        assert time.monotonic() - started < 1  # immediate: the 5 s busy timeout does not apply
        assert caught.value.sqlite_errorcode == SQLITE_BUSY_SNAPSHOT
        reader.execute("ROLLBACK")
    finally:
        reader.close()
        other.close()
    assert query(db, "SELECT n FROM counter") == [(1,)]


def test_kb_engine_makes_the_second_writer_wait_and_both_commits_land(tmp_path):
    """With kb's engine every write transaction starts with BEGIN IMMEDIATE: the same interleaving
    (read, a foreign commit, write) cannot happen; the other writer waits for the lock instead."""
    db = tmp_path / "kb.sqlite"
    first = store_engine.open_engine(db, now=FIXED_NOW)
    second = store_engine.open_engine(db, now=FIXED_NOW)
    try:
        with first.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
            conn.exec_driver_sql("INSERT INTO counter VALUES (1, 0)")
        read_done, errors, seen = threading.Event(), [], {}

        def reader_then_writer():
            try:
                with first.begin() as conn:
                    n = conn.exec_driver_sql("SELECT n FROM counter").scalar()
                    read_done.set()
                    time.sleep(0.4)  # the other writer tries meanwhile
                    conn.exec_driver_sql("UPDATE counter SET n = ?", (n + 1,))
            except Exception as exc:  # noqa: BLE001  (reported below)
                errors.append(exc)

        def other_writer():
            try:
                assert read_done.wait(10)
                started = time.monotonic()
                with second.begin() as conn:  # blocks until the first commits
                    seen["waited"] = time.monotonic() - started
                    n = conn.exec_driver_sql("SELECT n FROM counter").scalar()
                    seen["n"] = n
                    conn.exec_driver_sql("UPDATE counter SET n = ?", (n + 1,))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=reader_then_writer), threading.Thread(target=other_writer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert seen["waited"] >= 0.25  # it waited for the lock instead of reading a stale snapshot
        assert seen["n"] == 1  # and then saw the first commit
        with store_engine.read(second) as conn:
            assert conn.exec_driver_sql("SELECT n FROM counter").scalar() == 2  # both commits landed
    finally:
        first.dispose()
        second.dispose()


def test_kb_engine_read_modify_write_from_four_engines_loses_no_update(tmp_path):
    db = tmp_path / "kb.sqlite"
    engines = [store_engine.open_engine(db, now=FIXED_NOW) for _ in range(4)]
    try:
        with engines[0].begin() as conn:
            conn.exec_driver_sql("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
            conn.exec_driver_sql("INSERT INTO counter VALUES (1, 0)")
        errors = []

        def bump(engine):
            try:
                for _ in range(15):
                    with engine.begin() as conn:
                        n = conn.exec_driver_sql("SELECT n FROM counter").scalar()
                        conn.exec_driver_sql("UPDATE counter SET n = ?", (n + 1,))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=bump, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
    finally:
        for e in engines:
            e.dispose()
    assert query(db, "SELECT n FROM counter") == [(60,)]


# --- leaked sessions ---------------------------------------------------------------------------------

# Calls that open a transaction or a connection and must be `with` items. Exceptions, with reasons:
ALLOWED_UNMANAGED = {
    ("kb/store/engine.py", "read"): "read() is the context-manager factory itself: it returns the connection "
    "for `with read(engine) as conn`, and this test holds its callers to that",
}
_ENGINE_NAME = re.compile(r"engine|^eng$", re.IGNORECASE)


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def unmanaged_calls(source: str, filename: str = "<source>") -> list[tuple[int, str, str]]:
    """(line, enclosing function, call) of each Session(...), engine.connect()/begin() or
    kb.store.engine.read(...) call that is not the context expression of a `with`."""
    tree = ast.parse(source, filename)
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    read_names, engine_modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "kb.store.engine":
            read_names.update(a.asname or a.name for a in node.names if a.name == "read")
        elif isinstance(node, ast.ImportFrom) and node.module == "kb.store":
            engine_modules.update(a.asname or a.name for a in node.names if a.name == "engine")

    def needs_with(call: ast.Call) -> bool:
        func = call.func
        if _name_of(func) == "Session":
            return True
        if isinstance(func, ast.Attribute) and func.attr in ("connect", "begin"):
            return bool(_ENGINE_NAME.search(_name_of(func.value) or ""))
        if isinstance(func, ast.Name) and func.id in read_names:
            return True
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "read"
            and isinstance(func.value, ast.Name)
            and func.value.id in engine_modules
        )

    def managed(call: ast.Call) -> bool:
        node = call
        while True:  # engine.connect().execution_options(...) is managed when the whole chain is
            parent = parents.get(node)
            if (
                isinstance(parent, ast.Attribute)
                and isinstance(parents.get(parent), ast.Call)
                and parents[parent].func is parent
            ):
                node = parents[parent]
                continue
            break
        parent = parents.get(node)
        if isinstance(parent, ast.withitem) and parent.context_expr is node:
            return True
        return isinstance(parent, ast.Call) and _name_of(parent.func) == "enter_context" and node in parent.args

    def function_of(node: ast.AST) -> str:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return node.name
        return "<module>"

    return sorted(
        (node.lineno, function_of(node), ast.unparse(node)[:80])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and needs_with(node) and not managed(node)
    )


def test_lint_finds_unmanaged_sessions_and_connections():
    source = """
from kb.store.engine import read
from kb.store import engine as store_engine
def f(engine, kb):
    s = Session(engine)
    s.exec(x)
    conn = engine.connect()
    kb.engine.begin().execute(y)
    c = read(engine)
    d = store_engine.read(engine)
    with Session(engine) as ok1, engine.begin() as ok2, read(engine) as ok3:
        pass
    with engine.connect().execution_options(kb_read=True) as ok4:
        pass
    with ExitStack() as stack:
        stack.enter_context(Session(engine))
    sqlite3.connect(path).close()
    f.read()
"""
    found = unmanaged_calls(source)
    assert [line for line, _, _ in found] == [5, 7, 8, 9, 10]
    assert all(function == "f" for _, function, _ in found)


def test_app_code_opens_sessions_and_connections_only_in_with_blocks():
    offenders, used = [], set()
    files = sorted([*REPO.glob("kb/**/*.py"), *REPO.glob("app/**/*.py")])
    assert len(files) > 20
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        for line, function, call in unmanaged_calls(path.read_text(encoding="utf-8"), rel):
            if (rel, function) in ALLOWED_UNMANAGED:
                used.add((rel, function))
            else:
                offenders.append(f"{rel}:{line}: {call} (in {function}) is not a `with` item")
    assert offenders == [], "a Session or connection outside `with` can leak the write lock:\n" + "\n".join(offenders)
    assert used == set(ALLOWED_UNMANAGED), "stale allow-list entries"


def test_a_leaked_session_holds_the_write_lock_until_closed(tmp_path, deck):
    """Why the lint exists: a Session left open after a write keeps BEGIN IMMEDIATE, so every other
    kb writer fails after its busy timeout, until the session is closed."""
    from sqlmodel import Session

    settings = populated_kb(tmp_path / "home", deck, answers=0)
    holder = store_engine.create_db_engine(settings.db_path)
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        card = kb.due_queue()[0].card_id
        kb.engine.dispose()
        kb._engine = store_engine.create_db_engine(settings.db_path, busy_timeout_ms=100)
        leaked = Session(holder)
        try:
            leaked.exec(insert(SettingRow.__table__).values(user_name="u", key="g4", value_json="1"))  # never committed
            assert kb.stats()["reviews_total"] == 0  # readers still read (WAL)
            started = time.monotonic()
            with pytest.raises(StoreError, match="database is busy"):
                kb.answer(card, 3)
            assert time.monotonic() - started >= 0.25  # 3 attempts of 100 ms each
            with pytest.raises(OperationalError) as caught, kb.engine.begin():
                pass
            assert caught.value.orig.sqlite_errorcode == SQLITE_BUSY
        finally:
            leaked.close()  # rolls back and releases the lock
        answered = kb.answer(card, 3)
        assert answered.review_id
        # The same write in a `with` block releases the lock at its end.
        with Session(holder) as session:
            session.exec(insert(SettingRow.__table__).values(user_name="u", key="g4", value_json="2"))
            session.commit()
        kb.undo(answered.review_id)
        assert kb.answer(card, 3).review_id
    holder.dispose()
    assert query(settings.db_path, "SELECT key, value_json FROM setting WHERE key = 'g4'") == [("g4", "2")]
    assert query(settings.db_path, "SELECT count(*) FROM review_log") == [(1,)]


# --- read-only data directory / database file, as a non-root user --------------------------------------


@pytest.fixture
def world_dir():
    """A directory user nobody can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="kb-g7-")).resolve()
    path.chmod(0o755)
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            shutil.rmtree(path)
            pytest.skip(f"{parent} is not searchable by other users, so nobody cannot reach the test directory")
    yield path
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    path.chmod(0o755)
    shutil.rmtree(path)


def _as_nobody_prefix(env: dict[str, str]) -> list[str]:
    """Run as user nobody: CI runs as root, and root ignores mode bits. Already unprivileged: as is."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip(
            "running as root and setpriv is not installed: root ignores mode bits, so a read-only "
            "KB_HOME cannot be tested"
        )
    base = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = [sys.executable, "-c", "import sqlite3, sqlmodel, kb.cli, kb.service"]
    # If the interpreter lives where nobody cannot read (a venv under /root), CAP_DAC_READ_SEARCH
    # lets it read files; it grants no write access, so the read-only checks still hold.
    for caps in ([], ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]):
        done = subprocess.run([*base, *caps, *probe], env=env, cwd="/", capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return [*base, *caps]
    pytest.skip(f"user nobody cannot run {sys.executable} with kb importable: {done.stderr.strip()[-300:]}")


def _tree_state(root: Path) -> dict[str, str]:
    """Every file under root with a hash of its bytes (new -wal/-shm/backup files show up here)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


G7_COMMANDS = [("stats",), ("sync",), ("show", "c000"), ("search", "Front"), ("quiz", "--plain")]


def _g7_run(home: Path, deck: Path, commands) -> list[tuple[tuple, str]]:
    env = cli_env(home, deck, HOME=str(home.parent))
    prefix = _as_nobody_prefix(env)
    results = []
    for args in commands:
        done = subprocess.run(
            [*prefix, sys.executable, "-m", "kb", *args],
            input="x\n3\n",
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stdout == "", (args, done.stdout)
        results.append((args, one_error_line(done.stderr)))
    return results


def _make_readable(root: Path) -> None:
    for p in [root, *root.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IROTH | stat.S_IRGRP | (stat.S_IXOTH | stat.S_IXGRP if p.is_dir() else 0))


def test_read_only_data_directory_is_refused_in_one_line_and_nothing_changes(world_dir):
    settings = populated_kb(world_dir / "home", world_dir / "deck")
    home = settings.home
    _make_readable(world_dir)
    home.chmod(0o555)  # owned by root: nobody cannot write in it
    before, files = snapshot_db(settings.db_path), _tree_state(home)
    for args, line in _g7_run(home, world_dir / "deck", G7_COMMANDS):
        assert line.startswith(f"kb: {home} is not writable by this user"), (args, line)
        assert "nothing was changed" in line and "KB_HOME" in line
    assert snapshot_db(settings.db_path) == before
    assert _tree_state(home) == files  # no -wal, -shm or backup file appeared


def test_read_only_database_file_is_refused_in_one_line_and_nothing_changes(world_dir):
    settings = populated_kb(world_dir / "home", world_dir / "deck")
    home, db = settings.home, settings.db_path
    _make_readable(world_dir)
    if os.geteuid() == 0:  # the directory is nobody's (writable); the file stays root's, read-only
        for p in [home, *home.rglob("*")]:
            os.chown(p, NOBODY, NOBODY)
        os.chown(db, 0, 0)
    db.chmod(0o444)
    before, files = snapshot_db(db), _tree_state(home)
    for args, line in _g7_run(home, world_dir / "deck", [("stats",), ("sync",), ("quiz", "--plain")]):
        assert line.startswith(f"kb: {db} is read-only for this user"), (args, line)
    assert snapshot_db(db) == before
    assert _tree_state(home) == files


def test_new_kb_home_in_a_read_only_directory_fails_in_one_line(world_dir):
    (world_dir / "deck").mkdir()
    write_concept(world_dir / "deck", "c000", extra=CARDS)
    _make_readable(world_dir)
    home = world_dir / "home"
    home.mkdir(mode=0o555)
    home.chmod(0o555)
    for args, line in _g7_run(home, world_dir / "deck", [("stats",), ("sync",)]):
        # The database is opened before anything else is created, so the message is about the folder.
        assert line.startswith(f"kb: {home} is not writable by this user"), (args, line)
    assert list(home.iterdir()) == []


READ_ONLY_MOUNT = """
set -e
mnt=$1; src=$2; shift 2
mount -t tmpfs -o size=4m tmpfs "$mnt"
cp -a "$src"/. "$mnt"/
mount -o remount,ro "$mnt"
KB_HOME="$mnt" "$@"
"""


@pytest.mark.parametrize("args", [("stats",), ("quiz", "--plain")])
def test_read_only_file_system_is_refused_in_one_line_even_for_root(tmp_path, deck, args):
    """A KB_HOME on a file system mounted read-only: refused the same way (root cannot write there either)."""
    reason = _tmpfs_available(tmp_path / "probe")
    if reason:
        pytest.skip(reason)
    settings = populated_kb(tmp_path / "home", deck)
    mnt = tmp_path.resolve() / "mnt"
    mnt.mkdir()
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            READ_ONLY_MOUNT,
            "sh",
            str(mnt),
            str(settings.home),
            sys.executable,
            "-m",
            "kb",
            *args,
        ],
        input="x\n3\n",
        env=cli_env(settings.home, deck),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and done.stdout == "", (done.stdout, done.stderr)
    line = one_error_line(done.stderr)
    assert line.startswith(f"kb: {mnt} is not writable (a read-only file system)"), line


# --- disk full -------------------------------------------------------------------------------------------

LIMITED_CLI = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
from kb.cli import main
sys.exit(main(sys.argv[2:]))
"""
AGAIN = "x\n1\n" * 300  # answer, then rate `again`: the card keeps coming back, so the quiz never runs dry


def _failed_card(stdout: str) -> str:
    """The card on screen when the answer failed (the last `[N] card_id (...)` header)."""
    return re.findall(r"^\[\d+\] (\S+) \(", stdout, re.MULTILINE)[-1]


def _check_after_disk_full(db: Path, before: dict, old_reviews: list, stdout: str) -> None:
    recorded = stdout.count("recorded: ")
    assert recorded >= 1  # some answers fitted before the disk filled up
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    reviews = query(db, "SELECT * FROM review_log ORDER BY id")
    assert reviews[: len(old_reviews)] == old_reviews  # earlier reviews intact
    assert len(reviews) == len(old_reviews) + recorded  # the failed answer is not there, half or whole
    assert_answers_atomic(db)
    unchanged = ("card", "concept", "deck", "source_file", "snippet_run", "setting")
    assert snapshot_db(db, unchanged) == {t: before[t] for t in unchanged}


def test_file_size_limit_fails_an_answer_cleanly_and_loses_nothing(tmp_path, deck):
    """(a) RLIMIT_FSIZE with SIGXFSZ ignored: SQLite gets EFBIG, says "disk I/O error"; kb says so in
    one line naming the file, rolls the answer back, keeps every earlier one, and the card stays due."""
    settings = populated_kb(tmp_path / "home", deck, concepts=30, answers=3)
    db = settings.db_path
    before, old_reviews = snapshot_db(db), query(db, "SELECT * FROM review_log ORDER BY id")
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_CLI, str(64 * 1024), "quiz", "--plain"],
        input=AGAIN,
        env=cli_env(settings.home, deck),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr)
    assert line.startswith(f"kb: {db}: disk I/O error"), line
    assert "the answer was not stored (earlier answers are kept)" in line
    failed = _failed_card(done.stdout)
    _check_after_disk_full(db, before, old_reviews, done.stdout)
    assert not list((settings.home / "backups").glob(".*partial"))  # the start-up backup that failed left nothing
    # With room again, the same card is still due and its answer is stored (settings as the CLI's).
    with KnowledgeBase(Settings(home=settings.home, bundled_content=settings.bundled_content)) as kb:
        assert failed in [e.card_id for e in kb.due_queue()]
        kb.answer(failed, 3)
    assert query(db, "SELECT count(*) FROM review_log") == [(len(old_reviews) + done.stdout.count("recorded: ") + 1,)]


TMPFS_RUN = """
set -e
mnt=$1; src=$2; out=$3; size=$4; free=$5; shift 5
mount -t tmpfs -o size="$size" tmpfs "$mnt"
cp -a "$src"/. "$mnt"/
dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null || true   # fill the disk ...
truncate -s -"$free" "$mnt/filler"                            # ... but for $free bytes
set +e
KB_HOME="$mnt" "$@"
rc=$?
rm -f "$mnt/filler"
cp -a "$mnt"/. "$out"/
exit $rc
"""


def _tmpfs_available(probe_dir: Path) -> str | None:
    """Why a tmpfs cannot be mounted in a private mount namespace here, or None when it can."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (unshare -m)"
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe_dir.mkdir()
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{probe_dir}'"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return None if done.returncode == 0 else f"unshare -m + mount tmpfs failed: {done.stderr.strip()[-200:]}"


def test_full_tmpfs_fails_an_answer_cleanly_and_loses_nothing(tmp_path, deck):
    """(b) a KB_HOME on a tiny tmpfs with 96 KiB left: SQLite says "database or disk is full"."""
    reason = _tmpfs_available(tmp_path / "probe")
    if reason:
        pytest.skip(reason)
    settings = populated_kb(tmp_path / "home", deck, concepts=30, answers=3)
    db = settings.db_path
    before, old_reviews = snapshot_db(db), query(db, "SELECT * FROM review_log ORDER BY id")
    mnt, out = tmp_path.resolve() / "mnt", tmp_path / "out"
    mnt.mkdir()
    out.mkdir()
    size = max(512 * 1024, db.stat().st_size + 256 * 1024)
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            TMPFS_RUN,
            "sh",
            str(mnt),
            str(settings.home),
            str(out),
            str(size),
            str(96 * 1024),
            sys.executable,
            "-m",
            "kb",
            "quiz",
            "--plain",
        ],
        input=AGAIN,
        env=cli_env(settings.home, deck),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    line = one_error_line(done.stderr)
    assert line.startswith(f"kb: {mnt / 'kb.sqlite'}: the disk is full (database or disk is full)"), line
    assert "the answer was not stored (earlier answers are kept)" in line
    _check_after_disk_full(out / "kb.sqlite", before, old_reviews, done.stdout)
    assert not list((out / "backups").glob(".*partial"))


def test_disk_errors_become_one_line_store_errors(tmp_path):
    """Every write through kb's engine maps SQLite's full/I-O/read-only errors the same way."""
    from kb.store.errors import StoreWriteError, write_failure

    db = tmp_path / "kb.sqlite"
    for code, words in (
        (13, "the disk is full"),
        (778, "disk I/O error (is the disk full"),
        (8, "the database is read-only"),
        (14, "cannot open the database"),
    ):
        exc = sqlite3.OperationalError(
            {
                13: "database or disk is full",
                778: "disk I/O error",
                8: "attempt to write a readonly database",
                14: "unable to open database file",
            }[code]
        )
        exc.sqlite_errorcode = code
        err = write_failure(db, exc)
        assert isinstance(err, StoreWriteError) and str(err).startswith(f"{db}: {words}"), str(err)
        assert "\n" not in str(err)
    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = SQLITE_BUSY
    assert write_failure(db, busy) is None  # a lock is retried, not a disk fault
    assert write_failure(db, ValueError("x")) is None


# --- deck file edited during load ---------------------------------------------------------------------


def _source_row(kb, path: Path):
    return query(kb.settings.db_path, "SELECT mtime_ns, size, content_hash FROM source_file WHERE path = ?", str(path))[
        0
    ]


def test_file_changed_between_stat_and_read_is_stored_as_read_and_rechecked_next_sync(kb, deck, monkeypatch):
    a = write_concept(deck, "alpha", extra=CARDS)
    write_concept(deck, "beta")
    real_stat, real_read = ingest._stat_files, Path.read_bytes
    reads: dict[str, list[bytes]] = {}

    def stat_then_edit(decks, problems):
        found = real_stat(decks, problems)
        a.write_text(concept_yaml("alpha", definition="Edited while the sync ran.", extra=CARDS), encoding="utf-8")
        return found

    def counting_read(self):
        data = real_read(self)
        reads.setdefault(str(self), []).append(data)
        return data

    monkeypatch.setattr(ingest, "_stat_files", stat_then_edit)
    monkeypatch.setattr(Path, "read_bytes", counting_read)
    report = kb.sync()
    monkeypatch.setattr(ingest, "_stat_files", real_stat)
    assert sorted(report.added) == ["alpha", "beta"]
    assert [len(v) for k, v in sorted(reads.items()) if k.startswith(str(deck))] == [1, 1]  # each file read once
    parsed = reads[str(a)][0]
    assert b"Edited while the sync ran." in parsed
    mtime_ns, size, stored_hash = _source_row(kb, a)
    assert stored_hash == loader.content_hash(parsed)  # the hash is of the bytes that were parsed
    assert kb.show("alpha")["definition"] == "Edited while the sync ran.\n"
    assert (mtime_ns, size) != (a.stat().st_mtime_ns, a.stat().st_size)  # the stat from before the edit

    reads.clear()
    again = kb.sync()  # the stored stat does not match: the file is read again; same bytes, no change
    assert [k for k in reads if k.startswith(str(deck))] == [str(a)] and not again.changed
    assert _source_row(kb, a) == (a.stat().st_mtime_ns, a.stat().st_size, stored_hash)
    reads.clear()
    assert not kb.sync().changed and not [k for k in reads if k.startswith(str(deck))]


def test_file_changed_after_it_was_read_is_picked_up_by_the_next_sync(kb, deck, monkeypatch):
    a = write_concept(deck, "alpha", extra=CARDS)
    real_parse = ingest.parse_file
    old_bytes = a.read_bytes()

    def parse_then_edit(path):
        result = real_parse(path)
        if path == a:  # an editor saves just after kb read the file
            a.write_text(
                concept_yaml("alpha", definition="Saved after the read, a longer definition.", extra=CARDS),
                encoding="utf-8",
            )
        return result

    monkeypatch.setattr(ingest, "parse_file", parse_then_edit)
    assert kb.sync().added == ["alpha"]
    monkeypatch.setattr(ingest, "parse_file", real_parse)
    _, _, stored_hash = _source_row(kb, a)
    assert stored_hash == loader.content_hash(old_bytes)  # one snapshot: what was read, consistently
    assert kb.show("alpha")["definition"] == "A concept used by the tests.\n"

    report = kb.sync()  # the stored mtime/size are from before the read: the edit cannot hide behind them
    assert report.updated == ["alpha"]
    assert kb.show("alpha")["definition"] == "Saved after the read, a longer definition.\n"
    assert _source_row(kb, a)[2] == loader.content_hash(a.read_bytes())
