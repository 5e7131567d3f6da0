"""The engine factory: SQLite in WAL mode, synchronous=FULL, writes in BEGIN IMMEDIATE.

No engine exists at import time; tests and the app each build their own.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlmodel import SQLModel

from kb.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from kb.store.errors import StoreError

SCHEMA_VERSION = 1
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

    return engine


def open_engine(path: Path) -> Engine:
    """Open (creating if needed) the database at path and bring its schema up to date."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.stat().st_size == 0:
        # An empty file is not silently taken as a new database: something truncated it.
        raise StoreError(f"{path}: the database file is empty (0 bytes); move it aside to start afresh")
    engine = create_db_engine(path)
    try:
        with engine.begin() as conn:
            app_id = conn.exec_driver_sql("PRAGMA application_id").scalar()
            version = conn.exec_driver_sql("PRAGMA user_version").scalar()
            has_tables = conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
            if has_tables and app_id != APPLICATION_ID:
                raise StoreError(f"{path}: not a kb database (application_id {app_id:#x})")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{path}: written by a newer kb (schema {version}, this one knows {SCHEMA_VERSION}); upgrade kb"
                )
            if version < SCHEMA_VERSION:
                SQLModel.metadata.create_all(conn)
                for ddl in _FTS_DDL:
                    conn.exec_driver_sql(ddl)
                conn.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.exec_driver_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except StoreError:
        engine.dispose()
        raise
    except Exception as exc:  # sqlite3.DatabaseError: "file is not a database", disk errors
        engine.dispose()
        orig = getattr(exc, "orig", exc)
        raise StoreError(f"{path}: {orig}") from exc
    return engine


def read(engine: Engine):
    """A read-only connection context (a snapshot, no write lock)."""
    return engine.connect().execution_options(kb_read=True)


def quick_check(engine: Engine) -> str:
    with read(engine) as conn:
        return conn.execute(text("PRAGMA quick_check")).scalar()
