"""Keeping the database safe: backups, restore, recovery of a damaged file, and `kb doctor`."""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kb.service.base import ServiceBase, package_version

if TYPE_CHECKING:
    pass


class MaintenanceUseCases(ServiceBase):
    """Backups, recovery, diagnostics."""

    def recover_damaged(self) -> str:
        """After a StoreCorruptError: rebuild the file if only its search index is hurt, else move it
        aside (never deleting it). Returns the line to show; the next use opens afresh."""
        from kb.store.backup import default_backup_dir
        from kb.store.repair import recover

        self.close()
        return recover(self.settings.db_path, default_backup_dir(self.settings.db_path), self.clock())

    def moved_aside_notice(self) -> str | None:
        """While a damaged database moved aside is neither restored nor dismissed: what to say."""
        from kb.store.backup import default_backup_dir
        from kb.store.repair import notice

        return notice(self.settings.home, default_backup_dir(self.settings.db_path))

    def dismiss_moved_aside(self) -> list[Path]:
        """Keep the new database: the moved-aside files stay (renamed .dismissed), the notice stops."""
        from kb.store.repair import dismiss_moved_aside

        return dismiss_moved_aside(self.settings.home)

    def doctor(self) -> dict:
        import yaml

        from kb.store.engine import quick_check, sqlite_library_version
        from kb.store.queries import counts

        info = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "sqlite": sqlite_library_version(),
            "libyaml": bool(getattr(yaml, "__with_libyaml__", False)),
            "packages": {
                n: package_version(n)
                for n in ("mlkb", "textual", "sqlmodel", "pydantic", "pyyaml", "numpy", "torch", "fsrs")
            },
            "kb_home": str(self.settings.home),
            "database": self.database_name(),
        }
        from kb.runner import isolation_report
        from kb.store.errors import StoreError

        info["devices"] = self.devices()
        info["isolation"] = isolation_report()
        info["executable"] = sys.executable
        info["moved_aside"] = self.moved_aside_notice()
        # The database last: a doctor that cannot open it still reports everything else, and why.
        try:
            info["decks"] = [d.to_dict() for d in self.decks()]
            info["integrity"] = quick_check(self.engine)
            info["counts"] = counts(self.engine)
        except StoreError as exc:
            info["decks"] = []
            info["integrity"] = f"cannot open the database: {exc}"
            info["counts"] = {"concepts": 0, "cards": 0, "reviews": 0, "runs": 0, "retired_concepts": 0}
        return info

    def database_name(self) -> str:
        """Where the data is: the SQLite file, or the PostgreSQL URL without its password."""
        if self.settings.database_url:
            from kb.store.engine import safe_url

            return safe_url(self.settings.database_url)
        return str(self.settings.db_path)

    def _sqlite_only(self, what: str) -> None:
        from kb.store.errors import StoreError

        if self.settings.database_url:
            raise StoreError(
                f"{what} works on kb's SQLite file; the data is on {self.database_name()}: "
                "use the server's own tools (pg_dump, pg_restore)"
            )

    def copy_database(self, *, to: str | None = None, source: str | None = None) -> tuple[str, str, dict[str, int]]:
        """Copy every row of this kb's database into `to`, or of `source` into this kb's database
        (a PostgreSQL URL or a SQLite file); the target must be empty. All or nothing, the rows of
        every table counted on both sides. Returns (from, to, rows per table)."""
        from kb.store.copy import copy_database
        from kb.store.engine import open_any

        if (to is None) == (source is None):
            raise ValueError("give exactly one of to and source")
        other, other_name = open_any(to or source or "", user=self.settings.user_name, now=self.clock())
        try:
            here, here_name = self.engine, self.database_name()
            if to is not None:
                return here_name, other_name, copy_database(here, other, source_name=here_name, target_name=other_name)
            return other_name, here_name, copy_database(other, here, source_name=other_name, target_name=here_name)
        finally:
            other.dispose()

    def backup(self) -> Path:
        """Back up the database now (SQLite backup API) into $KB_HOME/backups; returns its path."""
        from kb.store.backup import default_backup_dir, make_backup, thin_backups

        self._sqlite_only("kb backup")
        self.engine  # noqa: B018  (opens and checks the database, creating it if needed)
        backup_dir = default_backup_dir(self.settings.db_path)
        now = self.clock()
        path = make_backup(self.settings.db_path, backup_dir, now)
        thin_backups(backup_dir, now, self.study_day)
        return path

    def backups(self) -> list[Path]:
        """The backups, oldest first."""
        from kb.store.backup import default_backup_dir, list_backups

        return [path for _, path in list_backups(default_backup_dir(self.settings.db_path))]

    def restore(self, source: Path | None = None) -> dict:
        """Replace the database by a backup (the newest by default), backing up what it replaces.

        The file must be a kb database that passes PRAGMA quick_check. Returns
        {"restored": path, "previous": backup of the replaced database or None,
        "moved_aside": where an unreadable database was moved, or None}.
        """
        from kb.store.backup import default_backup_dir, list_backups, restore_backup
        from kb.store.errors import StoreError

        self._sqlite_only("kb restore")
        db_path = self.settings.db_path
        backup_dir = default_backup_dir(db_path)
        if source is None:
            backups = list_backups(backup_dir)
            if not backups:
                raise StoreError(f"no backup in {backup_dir} (make one with `kb backup`)")
            source = backups[-1][1]
        source = source.expanduser().resolve()
        if not source.is_file():
            raise StoreError(f"{source}: no such backup file")
        if source == db_path.resolve():
            raise StoreError(f"{source} is the database itself; name a backup from {backup_dir}")
        if self._engine is not None:  # the database may be moved aside: no connection may stay on it
            self._engine.dispose()
            self._engine = None
        result = restore_backup(db_path, source, backup_dir, self.clock())
        self.dismiss_moved_aside()  # restored: the notice about a damaged file has done its job
        return result
