"""A damaged database: rebuilt when only derived data is hurt, moved aside (never deleted) otherwise.

Functions: salvage, recover, pending_moved_aside, dismiss_moved_aside.

The search indexes are derived from the concept rows, so a damaged page in them must never cost
the review log. `salvage` copies every table kb owns into a fresh file; if each one reads to its
end, nothing that matters was lost: the search indexes are refilled from the concepts, the file is
checked, and it takes the old one's place, which is kept beside it as `<name>.damaged-<stamp>`.
If a table of kb's own data cannot be read, the file is moved aside as `<name>.corrupt-<stamp>`
and kb starts a new one; every command then says so (pending_moved_aside) until the user restores
a backup (`kb restore`) or dismisses the notice (`kb restore --dismiss`).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from sqlmodel import SQLModel

from kb.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

DISMISSED_SUFFIX = ".dismissed"
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def is_corruption(exc: BaseException) -> bool:
    """Whether a sqlite3 error (or one wrapping it) says the file itself is damaged."""
    orig = getattr(exc, "orig", None) or exc
    return getattr(orig, "sqlite_errorcode", None) in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or (
        isinstance(orig, sqlite3.DatabaseError) and "malformed" in str(orig)
    )


def _stamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y%m%d-%H%M%S")


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def _refill_search(conn: sqlite3.Connection) -> None:
    from kb.schema import Concept
    from kb.store.ingest import search_rows

    fts, words = [], []
    for (data_json,) in conn.execute("SELECT data_json FROM concept"):
        row, words_row = search_rows(Concept.model_validate_json(data_json))
        fts.append(row)
        words.append(words_row)
    conn.executemany("INSERT INTO concept_fts (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)", fts)
    conn.executemany("INSERT INTO concept_words (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)", words)


def _core_table_damaged(conn: sqlite3.Connection) -> bool:
    """Whether any table of kb's own data (not a search index) is damaged.

    `PRAGMA integrity_check(table)` checks one table and its indexes (SQLite >= 3.33), however
    broken the rest of the file is; a check that cannot run counts as damage. A search index is
    rebuilt only when every table of kb's own passes.
    """
    for table in SQLModel.metadata.sorted_tables:
        try:
            report = [r[0] for r in conn.execute(f"PRAGMA integrity_check('{table.name}')")]
        except sqlite3.DatabaseError:
            return True
        if report != ["ok"]:
            return True
    return False


def salvage(path: Path, now: datetime) -> Path | None:
    """Rebuild `path` from its tables if only derived data (the search indexes) is damaged.

    Returns where the damaged file was kept, or None when kb's own data could not be read in full
    (the file is then left exactly as it was).
    """
    from kb.store.engine import _FTS_DDL, APPLICATION_ID, SCHEMA_VERSION

    fresh = _free_name(path.with_name(path.name + ".rebuilding"))
    old = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if old.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            return None  # an older schema is migrated first, a newer one is not ours to rebuild
        if _core_table_damaged(old):
            return None  # rows of kb's own data may be wrong even where they read: restore a backup
        new = sqlite3.connect(fresh, isolation_level=None)
        try:
            from sqlalchemy import create_engine

            engine = create_engine(f"sqlite:///{fresh}")
            try:
                SQLModel.metadata.create_all(engine)
            finally:
                engine.dispose()
            for ddl in _FTS_DDL:
                new.execute(ddl)
            new.execute("BEGIN")
            for table in SQLModel.metadata.sorted_tables:
                columns = ", ".join(f'"{c.name}"' for c in table.columns)
                rows = old.execute(f'SELECT {columns} FROM "{table.name}"').fetchall()
                marks = ", ".join("?" * len(table.columns))
                new.executemany(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})', rows)
            _refill_search(new)
            new.execute("COMMIT")
            new.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            new.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if new.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("the rebuilt file does not pass quick_check")
        finally:
            new.close()
    except (sqlite3.DatabaseError, ValueError, OSError):
        fresh.unlink(missing_ok=True)
        return None
    finally:
        old.close()
    kept = _free_name(path.with_name(f"{path.name}.damaged-{_stamp(now)}"))
    os.replace(path, kept)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, kept.with_name(kept.name + suffix))
    os.replace(fresh, path)
    return kept


def recover(path: Path, backup_dir: Path, now: datetime) -> str:
    """Deal with a database found damaged at any moment; returns the one line to show the user."""
    from kb.store.backup import move_aside
    from kb.store.engine import _restore_hint

    kept = salvage(path, now) if path.exists() else None
    if kept is not None:
        return (
            f"{path}: the search index was damaged; kb rebuilt it from your data (no review or note was lost) "
            f"and kept the damaged file as {kept}; run the command again"
        )
    try:
        moved = move_aside(path, now)
    except OSError as exc:
        return f"{path} is damaged and could not be moved aside ({exc.strerror or exc})" + _restore_hint(backup_dir)
    return (
        f"{path} is damaged beyond the search index; it was moved aside to {moved} (nothing was deleted)"
        + _restore_hint(backup_dir)
    )


def pending_moved_aside(home: Path, db_name: str = "kb.sqlite") -> list[Path]:
    """Damaged databases moved aside whose notice the user has not dismissed, oldest first."""
    if not home.is_dir():
        return []
    return sorted(
        p for p in home.glob(f"{db_name}.corrupt-*") if not p.name.endswith((DISMISSED_SUFFIX, "-wal", "-shm"))
    )


def dismiss_moved_aside(home: Path, db_name: str = "kb.sqlite") -> list[Path]:
    """Stop the notice for every pending moved-aside file (renamed with `.dismissed`, still kept)."""
    done = []
    for path in pending_moved_aside(home, db_name):
        target = _free_name(path.with_name(path.name + DISMISSED_SUFFIX))
        os.replace(path, target)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        done.append(target)
    return done


def notice(home: Path, backup_dir: Path) -> str | None:
    """The line every command shows while a moved-aside database is pending, or None."""
    from kb.store.engine import _restore_hint

    pending = pending_moved_aside(home)
    if not pending:
        return None
    names = ", ".join(p.name for p in pending)
    return (
        f"a damaged database was moved aside ({names} in {home}) and kb is using a new, empty one"
        + _restore_hint(backup_dir)
        + "; `kb restore --dismiss` keeps the new one and stops this notice"
    )
