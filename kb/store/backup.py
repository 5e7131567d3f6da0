"""Backups of the database: taken with SQLite's online backup API, thinned as Anki thins them.

A backup is a consistent snapshot even while another connection writes (the backup API reads one
snapshot; a file copy in WAL mode would miss what is still in the -wal file). Each backup is a
single self-contained file `kb-YYYYMMDD-HHMMSS.sqlite` (UTC, from the caller's clock; `-2`, `-3`...
when several are taken in the same second), written under a temporary name and renamed into place,
so a half-written backup never looks like one.
"""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from kb.store.errors import StoreError

BACKUP_INTERVAL = timedelta(minutes=30)
# Anki's defaults: beyond today and yesterday, one backup per day for 12 days, per week for 10
# weeks, per month for 9 months.
KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY = 12, 10, 9

_NAME = re.compile(r"^kb-(\d{8})-(\d{6})(?:-(\d+))?\.sqlite$")


def default_backup_dir(db_path: Path) -> Path:
    return db_path.parent / "backups"


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("naive datetime refused: backups are stamped in UTC")
    return now.astimezone(timezone.utc)


def parse_backup_name(name: str) -> tuple[datetime, int] | None:
    """(UTC time, sequence) of a backup file name, None for any other name."""
    m = _NAME.match(name)
    if m is None:
        return None
    try:
        stamp = datetime.strptime(m[1] + m[2], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return stamp, int(m[3] or 1)


def list_backups(backup_dir: Path) -> list[tuple[datetime, Path]]:
    """Every backup in the directory, oldest first."""
    if not backup_dir.is_dir():
        return []
    found = []
    for entry in backup_dir.iterdir():
        parsed = parse_backup_name(entry.name)
        if parsed is not None and entry.is_file():
            found.append((parsed, entry))
    found.sort(key=lambda item: item[0])
    return [(stamp, path) for (stamp, _), path in found]


def newest_backup(backup_dir: Path) -> Path | None:
    backups = list_backups(backup_dir)
    return backups[-1][1] if backups else None


def _new_backup_path(backup_dir: Path, now: datetime) -> Path:
    base = f"kb-{_utc(now):%Y%m%d-%H%M%S}"
    candidate, n = backup_dir / f"{base}.sqlite", 1
    while candidate.exists():
        n += 1
        candidate = backup_dir / f"{base}-{n}.sqlite"
    return candidate


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5, isolation_level=None)
    return sqlite3.connect(path, timeout=5, isolation_level=None)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def copy_database(source: Path, target: Path) -> None:
    """Write a consistent snapshot of `source` to `target` (a new file) via the backup API."""
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    src = _connect(source)
    try:
        dst = sqlite3.connect(partial, isolation_level=None)
        try:
            src.backup(dst)  # pages=-1: one step, one snapshot
            # One self-contained file: no -wal next to it.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    _fsync(partial)
    os.replace(partial, target)


def make_backup(db_path: Path, backup_dir: Path, now: datetime) -> Path:
    """Back up the database now; returns the new backup's path."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    target = _new_backup_path(backup_dir, now)
    try:
        copy_database(db_path, target)
    except sqlite3.Error as exc:
        target.with_name(f".{target.name}.partial").unlink(missing_ok=True)
        raise StoreError(f"{db_path}: backup failed: {exc}") from exc
    return target


def utc_day(moment: datetime) -> date:
    return _utc(moment).date()


def backups_to_keep(stamps, now: datetime, day_of: Callable[[datetime], date] = utc_day) -> set:
    """The backup times to keep (a port of Anki's BackupFilter), by day as `day_of` counts them.

    Every backup of today and yesterday is kept; going back from there, the newest backup of each
    of the next 12 days that have one, then of 10 weeks, then of 9 months. kb passes the user's
    study day (local zone, rollover hour); the default is the UTC calendar day.
    """
    yesterday = day_of(now).toordinal() - 1
    daily, weekly, monthly = KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY
    last_day = last_week = last_month = float("inf")
    keep = set()
    for stamp in sorted(set(stamps), key=_utc, reverse=True):
        day_date: date = day_of(stamp)
        day = day_date.toordinal()
        week = day // 7
        month = day_date.year * 12 + day_date.month - 1
        if day >= yesterday:
            last_day, last_week, last_month = day, week, month
        elif daily > 0 and day < last_day:
            daily -= 1
            last_day, last_week, last_month = day, week, month
        elif weekly > 0 and week < last_week:
            weekly -= 1
            last_week, last_month = week, month
        elif monthly > 0 and month < last_month:
            monthly -= 1
            last_month = month
        else:
            continue
        keep.add(stamp)
    return keep


def thin_backups(backup_dir: Path, now: datetime, day_of: Callable[[datetime], date] = utc_day) -> list[Path]:
    """Delete the backups that `backups_to_keep` drops; returns the deleted paths."""
    backups = list_backups(backup_dir)
    # Several backups of one second: the last one stands for that second.
    by_stamp: dict[datetime, list[Path]] = {}
    for stamp, path in backups:
        by_stamp.setdefault(stamp, []).append(path)
    keep = backups_to_keep(by_stamp, now, day_of)
    deleted = []
    for stamp, paths in by_stamp.items():
        for path in paths if stamp not in keep else ():
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted


def _has_reviews(db_path: Path) -> bool:
    conn = _connect(db_path)
    try:
        return conn.execute("SELECT EXISTS (SELECT 1 FROM review_log)").fetchone()[0] == 1
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def maybe_backup(
    db_path: Path,
    backup_dir: Path,
    now: datetime,
    *,
    interval: timedelta = BACKUP_INTERVAL,
    day_of: Callable[[datetime], date] = utc_day,
) -> Path | None:
    """A backup when the database has reviews and no backup is within `interval` of now."""
    now = _utc(now)
    if any(abs(now - stamp) < interval for stamp, _ in list_backups(backup_dir)):
        return None
    if not _has_reviews(db_path):
        return None
    path = make_backup(db_path, backup_dir, now)
    thin_backups(backup_dir, now, day_of)
    return path


def inspect_database(path: Path) -> dict:
    """Read-only facts about a database file: application_id, user_version, quick_check."""
    if not path.is_file():
        raise StoreError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise StoreError(f"{path}: the file is empty (0 bytes)")
    try:
        conn = _connect(path, readonly=True)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: {exc}") from exc
    return {"application_id": app_id, "user_version": version, "quick_check": check}


def restore_backup(db_path: Path, source: Path, backup_dir: Path, now: datetime) -> dict:
    """Make `source` the database: check it, back up (or move aside) what it replaces, copy it in.

    The copy goes through the backup API into the live database, in one transaction: a reader
    sees the old database or the restored one, never a mixture.
    """
    from kb.store.engine import APPLICATION_ID, SCHEMA_VERSION

    facts = inspect_database(source)
    if facts["application_id"] != APPLICATION_ID:
        raise StoreError(f"{source}: not a kb database (application_id {facts['application_id']:#x})")
    if facts["quick_check"] != "ok":
        detail = " ".join(str(facts["quick_check"]).split())[:160]
        raise StoreError(f"{source}: fails PRAGMA quick_check ({detail}); choose another backup")
    if facts["user_version"] > SCHEMA_VERSION:
        raise StoreError(f"{source}: written by a newer kb (schema {facts['user_version']}); upgrade kb")

    previous: Path | None = None
    moved_aside: Path | None = None
    if db_path.exists():
        try:
            if db_path.stat().st_size == 0:
                raise StoreError("empty")
            previous = make_backup(db_path, backup_dir, now)
        except StoreError:
            moved_aside = move_aside(db_path, now)
    try:
        src = _connect(source, readonly=True)
        try:
            dst = _connect(db_path)
            try:
                dst.execute("PRAGMA journal_mode=WAL")
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{db_path}: restore failed ({exc}); the database was not changed") from exc
    return {"restored": source, "previous": previous, "moved_aside": moved_aside}


def move_aside(db_path: Path, now: datetime) -> Path:
    """Rename a bad database (and its -wal/-shm) to `<name>.corrupt-<stamp>`; never deletes it."""
    base = f"{db_path.name}.corrupt-{_utc(now):%Y%m%d-%H%M%S}"
    target, n = db_path.with_name(base), 1
    while target.exists():
        n += 1
        target = db_path.with_name(f"{base}-{n}")
    os.replace(db_path, target)
    for suffix in ("-wal", "-shm"):
        side = db_path.with_name(db_path.name + suffix)
        if side.exists():
            os.replace(side, target.with_name(target.name + suffix))
    return target
