"""Errors of the store, importable without SQLAlchemy."""

from kb.errors import KbError


class StoreError(KbError):
    """The database cannot be used: not a kb database, a newer schema, an empty file, unwritable."""


class StoreCorruptError(StoreError):
    """The database file was found damaged while kb used it ("database disk image is malformed").

    The caller closes its engine and calls kb.store.repair.recover(path, ...), which rebuilds the
    file when only the search index is hurt and moves it aside otherwise.
    """

    def __init__(self, message: str, *, path=None):
        super().__init__(message)
        self.path = path


class StoreWriteError(StoreError):
    """The database cannot be written for a reason outside kb: a read-only file or directory, a full
    disk, an I/O error. Nothing of the failed change was stored; what was committed before is kept.

    `path` and `orig` (the sqlite3 error, if any) let a caller say what was lost in its own words.
    """

    def __init__(self, message: str, *, path=None, orig: BaseException | None = None):
        super().__init__(message)
        self.path, self.orig = path, orig


# SQLite's primary result codes (the low byte of an extended code such as SQLITE_IOERR_WRITE, 778).
SQLITE_IOERR, SQLITE_FULL, SQLITE_READONLY, SQLITE_CANTOPEN = 10, 13, 8, 14


def write_failure(
    path, exc: BaseException, *, outcome: str = "nothing of this change was stored"
) -> StoreWriteError | None:
    """A one-line StoreWriteError naming `path` for a SQLite read-only/disk-full/I/O error, else None.

    `exc` is a sqlite3 error or one wrapping it (SQLAlchemy's `.orig`).
    """
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorcode", None)
    if code is None:
        return server_failure(path, orig, outcome=outcome)
    primary = code & 0xFF
    folder = getattr(path, "parent", None) or "its directory"
    if primary == SQLITE_FULL:
        problem, advice = f"the disk is full ({orig})", "free some space and try again"
    elif primary == SQLITE_IOERR:
        problem, advice = f"{orig} (is the disk full, or a file-size limit reached?)", "free some space and try again"
    elif primary == SQLITE_READONLY:
        problem, advice = f"the database is read-only ({orig})", f"make it and {folder} writable by this user"
    elif primary == SQLITE_CANTOPEN:
        problem, advice = (
            f"cannot open the database or its -wal/-shm files ({orig})",
            f"check that {folder} is writable",
        )
    else:
        return None
    return StoreWriteError(f"{path}: {problem}; {outcome}: {advice}", path=path, orig=orig)


def server_failure(
    where, orig: BaseException, *, outcome: str = "nothing of this change was stored"
) -> StoreWriteError | None:
    """A one-line StoreWriteError for a PostgreSQL server that cannot be reached or went away, else None.

    `where` names the server (its URL without the password). The transaction was not committed, so
    nothing of it is stored.
    """
    if not type(orig).__module__.startswith("psycopg"):
        return None
    import psycopg

    if not isinstance(orig, psycopg.OperationalError):
        return None
    reason = " ".join(str(orig).split()) or type(orig).__name__
    return StoreWriteError(
        f"{where}: the database server refused the connection or went away ({reason}); {outcome}: check that it is running and try again",
        path=where,
        orig=orig,
    )
