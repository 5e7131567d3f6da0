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

from kb.store.errors import StoreError

# No released schema change yet: version 1 is the first schema.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


def migrate(conn: Connection, from_version: int, to_version: int) -> None:
    """Apply MIGRATIONS[from_version] ... MIGRATIONS[to_version - 1] on `conn` (inside its transaction)."""
    for version in range(from_version, to_version):
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoreError(f"no migration from schema {version} to {version + 1}")
        step(conn)
        conn.exec_driver_sql(f"PRAGMA user_version = {version + 1}")
