"""Schema migrations: MIGRATIONS[n] takes a database from schema version n to n + 1.

`open_engine` applies the missing steps in order, in one BEGIN IMMEDIATE transaction, after taking
a backup; `PRAGMA user_version` is bumped inside the same transaction. SQLite's DDL is
transactional, so a step that fails leaves the database exactly as it was.

To change the schema: bump `SCHEMA_VERSION` in kb/store/engine.py, change the tables (a new
database is created directly at the new version), register the step here, and add a populated
fixture `tests/data/db_v<old>.sqlite3` of the old version (tests/data/make_fixture_db.py).
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import Connection

from kb.store.dialect import run, set_schema_version, user_of
from kb.store.errors import StoreError


def _v1_to_v2(conn: Connection) -> None:
    """Schema 2: trust is recorded per snippet hash (`trusted_snippet`), not per deck.

    A deck trusted under schema 1 keeps its snippets as they are now: their current hashes are
    recorded, so only a later edit makes one untrusted. The migration stamps them with the time of
    the concept's last update (no clock is injected into a migration).
    """
    conn.exec_driver_sql(
        "CREATE TABLE trusted_snippet ("
        " deck_path VARCHAR NOT NULL, concept_id VARCHAR NOT NULL, snippet_hash VARCHAR NOT NULL,"
        " trusted_at TEXT NOT NULL, PRIMARY KEY (deck_path, concept_id))"
    )
    conn.exec_driver_sql(
        "INSERT INTO trusted_snippet (deck_path, concept_id, snippet_hash, trusted_at)"
        " SELECT c.deck_path, c.id, c.snippet_hash, c.updated_at FROM concept c JOIN deck d ON d.path = c.deck_path"
        " WHERE d.trusted AND c.snippet_hash IS NOT NULL AND NOT c.retired"
    )


def _v2_to_v3(conn: Connection) -> None:
    """Schema 3: trust covers every executed string, the computed cards' expressions with the code.

    Up to schema 2 a snippet's hash covered its code only, so a computed card's expression added by
    an update ran under the old trust. Every stored hash is recomputed with kb.trust from the
    concept as stored: the concept's own, a trusted hash that matched the old one (what the user
    trusted is what runs now: the strings are recorded with it), and a run's code hash that matched
    (so runs of unchanged snippets stay current). A trusted hash that did not match stays as it was,
    and so stays untrusted.
    """
    import hashlib
    import json

    from kb.trust import executed_strings, trust_hash

    conn.exec_driver_sql("ALTER TABLE trusted_snippet ADD COLUMN executed_json VARCHAR")
    rows = conn.exec_driver_sql("SELECT id, deck_path, data_json FROM concept WHERE snippet_hash IS NOT NULL").all()
    for concept_id, deck_path, data_json in rows:
        data = json.loads(data_json)
        executed = executed_strings(data)
        old = hashlib.blake2b(data["snippet"]["code"].encode(), digest_size=12).hexdigest()
        new = trust_hash(executed)
        conn.exec_driver_sql("UPDATE concept SET snippet_hash = ? WHERE id = ?", (new, concept_id))
        conn.exec_driver_sql(
            "UPDATE trusted_snippet SET snippet_hash = ?, executed_json = ? "
            "WHERE deck_path = ? AND concept_id = ? AND snippet_hash = ?",
            (new, json.dumps(executed, ensure_ascii=False), deck_path, concept_id, old),
        )
        conn.exec_driver_sql(
            "UPDATE snippet_run SET code_hash = ? WHERE concept_id = ? AND code_hash = ?", (new, concept_id, old)
        )


def _v3_to_v4(conn: Connection) -> None:
    """Schema 4: cards can be changed by hand (suspend, bury, flag, reset, due date).

    The review log says what kind each row is (every older row is an answer in the daily quiz),
    and a card's hand-set marks get a table of their own (new cards can carry them too).
    """
    conn.exec_driver_sql("ALTER TABLE review_log ADD COLUMN kind VARCHAR DEFAULT 'review' NOT NULL")
    conn.exec_driver_sql(
        "CREATE TABLE card_mark (card_pk INTEGER NOT NULL, suspended BOOLEAN NOT NULL, flag INTEGER NOT NULL,"
        " buried_until TEXT, PRIMARY KEY (card_pk), FOREIGN KEY(card_pk) REFERENCES card (pk))"
    )


# Schema 5's tables that belong to a user, as schema 5 creates them (kb/store/tables.py), with
# the indexes of their schema-4 versions, which go with them.
_V5_TABLES = {
    "trusted_snippet": (
        "CREATE TABLE trusted_snippet (user_name VARCHAR NOT NULL, deck_path VARCHAR NOT NULL,"
        " concept_id VARCHAR NOT NULL, snippet_hash VARCHAR NOT NULL, trusted_at TEXT NOT NULL,"
        " executed_json VARCHAR, PRIMARY KEY (user_name, deck_path, concept_id))",
        ("deck_path", "concept_id", "snippet_hash", "trusted_at", "executed_json"),
        (),
        (),
    ),
    "card_state": (
        "CREATE TABLE card_state (user_name VARCHAR NOT NULL, card_pk INTEGER NOT NULL, state VARCHAR NOT NULL,"
        " due TEXT NOT NULL, lapses INTEGER NOT NULL, reps INTEGER NOT NULL, suspended BOOLEAN NOT NULL,"
        " leech BOOLEAN NOT NULL, data_json VARCHAR NOT NULL, PRIMARY KEY (user_name, card_pk),"
        " FOREIGN KEY(card_pk) REFERENCES card (pk))",
        ("card_pk", "state", "due", "lapses", "reps", "suspended", "leech", "data_json"),
        ("ix_card_state_state_due",),
        ("CREATE INDEX ix_card_state_user_state_due ON card_state (user_name, state, due)",),
    ),
    "card_mark": (
        "CREATE TABLE card_mark (user_name VARCHAR NOT NULL, card_pk INTEGER NOT NULL, suspended BOOLEAN NOT NULL,"
        " flag INTEGER NOT NULL, buried_until TEXT, PRIMARY KEY (user_name, card_pk),"
        " FOREIGN KEY(card_pk) REFERENCES card (pk))",
        ("card_pk", "suspended", "flag", "buried_until"),
        (),
        (),
    ),
    "setting": (
        'CREATE TABLE setting (user_name VARCHAR NOT NULL, "key" VARCHAR NOT NULL, value_json VARCHAR NOT NULL,'
        ' PRIMARY KEY (user_name, "key"))',
        ('"key"', "value_json"),
        (),
        (),
    ),
    "review_log": (
        "CREATE TABLE review_log (id INTEGER NOT NULL, card_pk INTEGER NOT NULL, rating INTEGER NOT NULL,"
        " reviewed_at TEXT NOT NULL, duration_ms INTEGER, content_hash VARCHAR NOT NULL, was_new BOOLEAN NOT NULL,"
        " state_before VARCHAR, state_after VARCHAR, kind VARCHAR DEFAULT 'review' NOT NULL,"
        " user_name VARCHAR NOT NULL, PRIMARY KEY (id), FOREIGN KEY(card_pk) REFERENCES card (pk))",
        (
            "id",
            "card_pk",
            "rating",
            "reviewed_at",
            "duration_ms",
            "content_hash",
            "was_new",
            "state_before",
            "state_after",
            "kind",
        ),
        ("ix_review_log_card_pk", "ix_review_log_reviewed_at"),
        (
            "CREATE INDEX ix_review_log_card_pk ON review_log (card_pk)",
            "CREATE INDEX ix_review_log_reviewed_at ON review_log (reviewed_at)",
            "CREATE INDEX ix_review_log_user_name ON review_log (user_name)",
        ),
    ),
}


def _v4_to_v5(conn: Connection) -> None:
    """Schema 5: reviews, card schedules, hand-set marks, the database's settings and trust belong
    to a user (concepts, decks and cards stay shared).

    Every existing row is given to whoever opens the database for the upgrade (their KB_USER, by
    default their login name), so a single-user database reads as before. Each table is written
    anew with the user in its key (SQLite cannot change a primary key in place); every row is
    copied, ids included, and the counts are checked.
    """
    user = user_of(conn)
    for table, (ddl, columns, old_indexes, indexes) in _V5_TABLES.items():
        before = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
        for index in old_indexes:
            conn.exec_driver_sql(f"DROP INDEX {index}")
        conn.exec_driver_sql(f"ALTER TABLE {table} RENAME TO v4_{table}")
        conn.exec_driver_sql(ddl)
        names = ", ".join(columns)
        run(conn, f"INSERT INTO {table} (user_name, {names}) SELECT ?, {names} FROM v4_{table}", (user,))
        after = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
        if after != before:
            raise StoreError(f"{table}: {before} rows before the upgrade, {after} after")
        conn.exec_driver_sql(f"DROP TABLE v4_{table}")
        for index in indexes:
            conn.exec_driver_sql(index)


# MIGRATIONS[n] takes schema n to n + 1. Released: 1 (the first), 2 (per-snippet trust), 3 (trust
# covers computed expressions), 4 (review-log kinds and hand-set card marks), 5 (users).
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5}


def migrate(conn: Connection, from_version: int, to_version: int) -> None:
    """Apply MIGRATIONS[from_version] ... MIGRATIONS[to_version - 1] on `conn` (inside its transaction)."""
    for version in range(from_version, to_version):
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoreError(f"no migration from schema {version} to {version + 1}")
        step(conn)
        set_schema_version(conn, version + 1)
