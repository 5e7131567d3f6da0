"""The engine factory: SQLite in WAL mode, synchronous=FULL, writes in BEGIN IMMEDIATE.

No engine exists at import time; tests and the app each build their own.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine, create_engine, event, text
from sqlmodel import SQLModel

from kb.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from kb.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreWriteError,
    write_failure,
)

SCHEMA_VERSION = 5
# "KBDB" as a 32-bit integer: tells a kb database from any other SQLite file.
APPLICATION_ID = 0x4B424442
BUSY_TIMEOUT_MS = 5000

# Two indexes over the same text. `concept_fts` (trigram) serves terms of 3+ characters as
# substrings. Trigrams cannot match shorter terms, so `concept_words` (unicode61 words, with every
# run of CJK characters also written out as its single characters and bigrams) serves them:
# 卷积 and 注意 match as tokens, `kl` as a word prefix.
_FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS concept_fts USING fts5("
    "id UNINDEXED, title, aliases, tags, body, tokenize='trigram')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS concept_words USING fts5("
    "id UNINDEXED, title, aliases, tags, body, tokenize='unicode61 remove_diacritics 2')",
)


def create_db_engine(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", f"busy_timeout={busy_timeout_ms}"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Reads take a snapshot without the write lock; every other transaction takes the write
        # lock up front, so it can never fail half-way with a deferred-upgrade SQLITE_BUSY.
        if conn.get_execution_options().get("kb_read"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "handle_error")
    def _on_error(context):
        # A full disk, an I/O error or a read-only file: one clear line naming the file (the
        # transaction is rolled back as usual) instead of a SQLAlchemy traceback. A damaged file
        # found by any statement (not only by the check at start-up): StoreCorruptError, which the
        # caller answers with kb.store.repair.recover.
        from kb.store.repair import is_corruption

        if is_corruption(context.original_exception):
            return StoreCorruptError(f"{path} is damaged ({context.original_exception})", path=path)
        return write_failure(path, context.original_exception)

    return engine


# PRAGMA quick_check on open costs about 1.1-1.6 ms per MB (measured: 3-8 ms on the bundled 7.7 MB
# database, 125-160 ms on a 110 MB one, warm cache). Above 64 MiB (about 100 ms) the start-up check
# is skipped; `kb doctor` still runs it, and restoring a backup always does.
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
# SQLite result codes that mean the file itself is bad (not a lock or a disk error).
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


class _BadFile(Exception):
    """The file is corrupt or not a kb database: it is moved aside."""


def open_engine(
    path: Path,
    *,
    now: datetime | None = None,
    backup_dir: Path | None = None,
    backup_day: Callable[[datetime], date] | None = None,
    on_notice: Callable[[str], None] | None = None,
    user: str | None = None,
) -> Engine:
    """Open (creating if needed) the database at path, check it, and bring its schema up to date.

    A corrupt file, or one that is not a kb database, is moved aside (never deleted) and the error
    names it and the newest backup. An older schema is migrated after a backup; a newer one is
    refused. When the database has reviews and no backup is younger than 30 minutes, one is taken;
    `backup_day` tells which day a moment belongs to when old backups are thinned (the user's study
    day; UTC days by default). A file damaged only in its search index is rebuilt instead of moved
    aside, and `on_notice` is told so. `user` (default: the login name) is whose reviews,
    schedules and trust the engine reads and writes (kb.store.dialect.user_of); an upgrade to
    schema 5 gives the rows already there to this user.
    """
    from kb.store.backup import default_backup_dir, maybe_backup

    now = now or datetime.now(timezone.utc)
    backup_dir = backup_dir or default_backup_dir(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreWriteError(
            f"{path.parent}: cannot create the data directory ({exc.strerror or exc}); "
            "create it or set KB_HOME to a writable directory"
        ) from None
    _check_writable(path)
    if path.exists() and path.stat().st_size == 0:
        # An empty file is not silently taken as a new database: something truncated it.
        raise StoreError(
            f"{path}: the database file is empty (0 bytes); move it aside to start afresh" + _restore_hint(backup_dir)
        )
    existed = path.exists()
    try:
        # Checked with a plain connection first: the engine's would switch a foreign file to WAL.
        version = _precheck(path) if existed else 0
    except _BadFile as exc:
        from kb.store.repair import salvage

        kept = salvage(path, now)
        if kept is None:
            raise _moved_aside_error(path, str(exc), backup_dir, now) from None
        if on_notice is not None:
            on_notice(
                f"{path}: the search index was damaged; kb rebuilt it from your data (no review or note "
                f"was lost) and kept the damaged file as {kept}"
            )
        version = _precheck(path)
    engine = create_db_engine(path)
    if user is not None:
        engine = engine.execution_options(kb_user=user)
    try:
        if version == 0:
            with engine.begin() as conn:
                if conn.exec_driver_sql("PRAGMA user_version").scalar() == 0:  # not created meanwhile
                    SQLModel.metadata.create_all(conn)
                    for ddl in _FTS_DDL:
                        conn.exec_driver_sql(ddl)
                    conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version < SCHEMA_VERSION:
            _migrate(engine, path, version, backup_dir, now)
        try:
            if backup_day:
                maybe_backup(path, backup_dir, now, day_of=backup_day)
            else:
                maybe_backup(path, backup_dir, now)
        except (StoreError, OSError):
            pass  # a periodic backup that fails (disk full) must not stop the studying; `kb backup` reports it
    except _BadFile as exc:
        engine.dispose()
        raise _moved_aside_error(path, str(exc), backup_dir, now) from None
    except StoreError:
        engine.dispose()
        raise
    except Exception as exc:  # sqlite3.DatabaseError: "file is not a database", disk errors
        engine.dispose()
        orig = getattr(exc, "orig", exc)
        if getattr(orig, "sqlite_errorcode", None) in (_SQLITE_CORRUPT, _SQLITE_NOTADB) and existed:
            raise _moved_aside_error(path, str(orig), backup_dir, now) from None
        raise StoreError(f"{path}: {orig}") from exc
    return engine


def _check_writable(path: Path) -> None:
    """Refuse up front, in one line, a database this user cannot write.

    SQLite would only fail later, with "attempt to write a readonly database" or "unable to open
    database file", and in WAL mode it needs the directory writable for the -wal and -shm files.
    (No read-only browsing: every command syncs first, and the TUI answers cards.)
    """
    folder = path.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        read_only_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
        raise StoreWriteError(
            f"{folder} is not writable {'(a read-only file system)' if read_only_fs else 'by this user'} "
            f"(kb keeps {path.name} and its -wal/-shm files there); nothing was changed: "
            "make it writable or set KB_HOME to a writable directory"
        )
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name.exists() and not os.access(name, os.R_OK | os.W_OK):
            raise StoreWriteError(
                f"{name} is read-only for this user; nothing was changed: make it writable "
                "(chmod u+w) or set KB_HOME to a writable directory"
            )


def _precheck(path: Path) -> int:
    """The schema version of an existing file; _BadFile if it is corrupt or not a kb database."""
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            has_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if has_tables and app_id != APPLICATION_ID:
                raise _BadFile(f"not a kb database (application_id {app_id:#x})")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path}: written by a newer kb (schema {version}, this one knows {SCHEMA_VERSION}); upgrade kb"
                )
            if has_tables and path.stat().st_size <= QUICK_CHECK_MAX_BYTES:
                result = conn.execute("PRAGMA quick_check").fetchone()[0]
                if result != "ok":
                    raise _BadFile(f"PRAGMA quick_check failed ({' '.join(str(result).split())[:160]})")
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
            raise _BadFile(str(exc)) from None
        raise StoreError(f"{path}: {exc}") from exc
    return version


def _migrate(engine: Engine, path: Path, version: int, backup_dir: Path, now: datetime) -> None:
    """Back up, then apply the migrations from `version` in one transaction (all or nothing)."""
    from kb.store.backup import make_backup
    from kb.store.migrations import migrate

    backup = make_backup(path, backup_dir, now)
    try:
        with engine.begin() as conn:
            current = int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)
            if current < SCHEMA_VERSION:  # another process may have migrated meanwhile
                migrate(conn, current, SCHEMA_VERSION)
    except Exception as exc:
        orig = getattr(exc, "orig", exc)
        raise StoreError(
            f"{path}: upgrading the schema from {version} to {SCHEMA_VERSION} failed ({orig}); "
            f"the database is unchanged; a backup from before the upgrade is {backup}"
        ) from exc


def _restore_hint(backup_dir: Path) -> str:
    from kb.store.backup import newest_backup

    newest = newest_backup(backup_dir)
    if newest is None:
        return "; there is no backup"
    return f"; the newest backup is {newest}: run `kb restore {newest}` to restore it"


def _moved_aside_error(path: Path, reason: str, backup_dir: Path, now: datetime) -> StoreError:
    from kb.store.backup import move_aside

    try:
        moved = move_aside(path, now)
    except OSError as exc:
        return StoreError(
            f"{path}: {reason}; could not move it aside ({exc.strerror or exc})" + _restore_hint(backup_dir)
        )
    return StoreError(f"{path}: {reason}; moved it aside to {moved} (nothing was deleted)" + _restore_hint(backup_dir))


# PostgreSQL's search table: the text of concept_fts (no CJK grams: ILIKE matches any substring),
# with a GIN trigram index over its columns (pg_trgm) that serves ILIKE and regular expressions.
_TRGM_DDL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE TABLE IF NOT EXISTS concept_fts (id VARCHAR NOT NULL, title TEXT NOT NULL, aliases TEXT NOT NULL,"
    " tags TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_concept_fts_id ON concept_fts (id)",
    "CREATE INDEX IF NOT EXISTS ix_concept_fts_trgm ON concept_fts USING gin"
    " (title gin_trgm_ops, aliases gin_trgm_ops, tags gin_trgm_ops, body gin_trgm_ops)",
)
SERVER_CONNECT_TIMEOUT_S = 10


def is_database_url(value: str) -> bool:
    """Whether a KB_DATABASE_URL names a PostgreSQL server (the only kind kb takes besides its file)."""
    return value.startswith(("postgresql+psycopg://", "postgresql://", "postgres://"))


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the database URL"


def create_server_engine(url: str) -> Engine:
    """An engine on a PostgreSQL server through psycopg 3 (`postgresql+psycopg://user:pw@host/db`)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        raise StoreError(
            f"{safe_url(url)}: not a database URL (expected postgresql+psycopg://user:password@host/db)"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(
            f"{safe_url(url)}: kb stores its data in SQLite (the default) or PostgreSQL, not {parsed.drivername}"
        )
    parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise StoreError(f"{safe_url(url)}: PostgreSQL needs psycopg 3: pip install 'psycopg[binary]>=3.1'") from None
    where = parsed.render_as_string(hide_password=True)
    engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": SERVER_CONNECT_TIMEOUT_S})

    @event.listens_for(engine, "handle_error")
    def _on_error(context):
        # The server gone or unreachable, a refused login: one line naming the server; the
        # transaction was not committed.
        return write_failure(where, context.original_exception)

    return engine


def open_server_engine(url: str, *, user: str | None = None) -> Engine:
    """Open the kb database on a PostgreSQL server, creating its tables in an empty database and
    bringing an older schema up to date (in one transaction; a newer one is refused)."""
    from sqlalchemy import insert, inspect

    from kb.store.dialect import kb_schema, schema_version, server_metadata
    from kb.store.migrations import migrate

    engine = create_server_engine(url)
    if user is not None:
        engine = engine.execution_options(kb_user=user)
    where = safe_url(url)
    try:
        with engine.begin() as conn:
            # One kb at a time creates or upgrades the schema.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({APPLICATION_ID})")
            inspector = inspect(conn)
            if not inspector.has_table("kb_schema"):
                if inspector.get_table_names():
                    raise StoreError(f"{where}: the database has tables but is not a kb database; give kb an empty one")
                SQLModel.metadata.create_all(conn)
                for ddl in _TRGM_DDL:
                    conn.exec_driver_sql(ddl)
                server_metadata.create_all(conn)
                conn.execute(insert(kb_schema).values(application_id=APPLICATION_ID, version=SCHEMA_VERSION))
            else:
                version = schema_version(conn)
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{where}: written by a newer kb (schema {version}, this one knows {SCHEMA_VERSION}); upgrade kb"
                    )
                if version < SCHEMA_VERSION:
                    migrate(conn, version, SCHEMA_VERSION)
    except StoreError:
        engine.dispose()
        raise
    except Exception as exc:
        engine.dispose()
        orig = getattr(exc, "orig", exc)
        raise StoreError(f"{where}: {' '.join(str(orig).split())}") from exc
    return engine


def open_any(target: str, *, user: str | None = None, now: datetime | None = None) -> tuple[Engine, str]:
    """(engine, name for messages) of a PostgreSQL URL or a SQLite file (a path, or sqlite:///path),
    created empty when it does not exist yet."""
    if is_database_url(target):
        return open_server_engine(target, user=user), safe_url(target)
    path = Path(target.removeprefix("sqlite:///")).expanduser().resolve()
    return open_engine(path, now=now, user=user), str(path)


def read(engine: Engine):
    """A read-only connection context (a snapshot, no write lock)."""
    return engine.connect().execution_options(kb_read=True)


def quick_check(engine: Engine) -> str:
    """SQLite's PRAGMA quick_check ("ok" when the file is sound). On PostgreSQL, which checks its
    own pages, "ok" once the server answers with kb's schema."""
    with read(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT version FROM kb_schema").scalar_one()
            return "ok"
        return conn.execute(text("PRAGMA quick_check")).scalar()


def sqlite_library_version() -> str:
    """The SQLite library Python links against (for `kb doctor`)."""
    return sqlite3.sqlite_version
