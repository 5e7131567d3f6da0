"""One SQL text for SQLite and PostgreSQL, and the few places where the two differ.

The store's statements are written once, with `?` placeholders and in the SQL both dialects
accept (booleans compared with TRUE/FALSE, `ON CONFLICT ... DO UPDATE`, `RETURNING`). `run`
hands such a statement to either driver (sqlite3 takes `?`, psycopg `%s`); the helpers below
write the parts that have no common spelling: reading a field of a JSON text column, and
SQLite's planner hint that keeps a column's index out of a query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, CursorResult, Engine, Integer, MetaData, Table, select, update


def is_postgres(bind: Connection | Engine) -> bool:
    return bind.dialect.name == "postgresql"


def run(conn: Connection, sql: str, params: Any = ()) -> CursorResult:
    """Execute `sql` written with `?` placeholders (params: a tuple, or a list of tuples for many rows)."""
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("%", "%%").replace("?", "%s")
    return conn.exec_driver_sql(sql, params)


def json_field(conn: Connection, column: str, *path: str) -> str:
    """SQL for the value at `path` in the JSON text of `column` (NULL when absent).

    SQLite gives numbers as numbers, PostgreSQL everything as text: compare the result only with
    a value read through the same expression, or with a string literal.
    """
    if is_postgres(conn):
        return f"({column}::json #>> '{{{','.join(path)}}}')"
    return f"json_extract({column}, '$.{'.'.join(path)}')"


def unindexed(conn: Connection, column: str) -> str:
    """`column`, written so that SQLite does not pick its index for the query (a unary +);
    PostgreSQL's planner needs no such hint (and has no + for booleans)."""
    return column if is_postgres(conn) else f"+{column}"


def lock_card(conn: Connection) -> str:
    """What ends a SELECT of a card (`FROM card c ...`) that is about to be changed on its reading.

    On PostgreSQL two kb processes may answer the same card at once: the row lock makes the second
    wait and read the first one's state. SQLite's write transactions (BEGIN IMMEDIATE) already
    take the whole database.
    """
    return " FOR UPDATE OF c" if is_postgres(conn) else ""


# Where PostgreSQL keeps the schema version (SQLite keeps it in PRAGMA user_version); a separate
# MetaData, so that SQLite databases never get the table.
server_metadata = MetaData()
kb_schema = Table(
    "kb_schema",
    server_metadata,
    Column("application_id", Integer, nullable=False),
    Column("version", Integer, nullable=False),
)


def schema_version(conn: Connection) -> int:
    if is_postgres(conn):
        return int(conn.execute(select(kb_schema.c.version)).scalar_one())
    return int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0)


def set_schema_version(conn: Connection, version: int) -> None:
    if is_postgres(conn):
        conn.execute(update(kb_schema).values(version=version))
    else:
        conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")


def user_of(conn: Connection) -> str:
    """Whose reviews, schedules, marks, settings and trust a connection reads and writes: the
    `kb_user` execution option of its engine (kb.service sets it from KB_USER), else the login name."""
    from kb.config import default_user

    return str(conn.get_execution_options().get("kb_user") or default_user())


def user_literal(conn: Connection) -> str:
    """user_of(conn) as an SQL string literal (kb.config allows no quote in a name; doubled anyway)."""
    return "'" + user_of(conn).replace("'", "''") + "'"
