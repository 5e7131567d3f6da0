"""Reading an Anki collection (the SQLite file inside an .apkg): the SQL of `kb import`.

Kept in kb/store/ with the rest of the project's SQL; this database is Anki's, opened read-only in a
temporary copy. A package is someone else's file, so everything read is checked: the tables are
tables (a view could be made to run for ever), every value has the type Anki gives it, the note
types are well-formed JSON, the number of notes is bounded, and no query may run longer than
QUERY_SECONDS. Anything else is a CollectionError saying what is wrong.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from kb.errors import KbError

MAX_NOTES = 20_000  # per import; a larger collection is imported in parts (one Anki deck at a time)
QUERY_SECONDS = 60.0


class CollectionError(KbError, ValueError):
    """The collection is not one kb can read; the message says what is wrong with it."""


NoteRow = tuple[str, int, str, str]  # guid, note type id, tags, fields joined by \x1f


def read_collection(
    db_path: Path, *, max_notes: int = MAX_NOTES
) -> tuple[dict[int, tuple[str, bool, list[str]]], list[NoteRow]]:
    """(note types, notes as (guid, note type id, tags, fields)) of an Anki collection file."""
    try:
        db = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CollectionError(f"not an SQLite database ({exc})") from None
    deadline = time.monotonic() + QUERY_SECONDS
    db.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 100_000)
    try:
        db.execute("PRAGMA trusted_schema = OFF")
        tables = {name: kind for name, kind in db.execute("SELECT name, type FROM sqlite_master")}
        if tables.get("notes") != "table":
            raise CollectionError("it has no notes table")
        (count,) = db.execute("SELECT count(*) FROM notes").fetchone()
        if count > max_notes:
            raise CollectionError(
                f"it holds {count:,} notes; kb imports at most {max_notes:,} at a time (export one Anki deck at a time)"
            )
        types = _notetypes(db, tables)
        return types, _notes(db)
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise CollectionError(f"reading it took more than {QUERY_SECONDS:g} s") from None
        raise CollectionError(f"unreadable ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise CollectionError(f"unreadable ({exc})") from None
    finally:
        db.close()


def _notes(db: sqlite3.Connection) -> list[NoteRow]:
    rows = db.execute(
        "SELECT id, typeof(guid), guid, typeof(mid), mid, typeof(tags), tags, typeof(flds), flds FROM notes ORDER BY id"
    )
    notes: list[NoteRow] = []
    for note_id, guid_type, guid, mid_type, mid, tags_type, tags, flds_type, flds in rows:
        for column, kind, expected in (
            ("guid", guid_type, "text"),
            ("mid", mid_type, "integer"),
            ("tags", tags_type, "text"),
            ("flds", flds_type, "text"),
        ):
            if kind != expected:
                shown = "NULL" if kind == "null" else f"a {kind} value"
                raise CollectionError(f"note {note_id}: its {column} is {shown}, not {expected}")
        notes.append((guid, mid, tags, flds))
    return notes


def _notetypes(db: sqlite3.Connection, tables: dict[str, str]) -> dict[int, tuple[str, bool, list[str]]]:
    """note type id -> (name, is cloze, field names), from either schema."""
    if tables.get("notetypes") == "table":  # schema 18: the config is a protobuf whose field 1 is the kind (1 = cloze)
        if tables.get("fields") != "table":
            raise CollectionError("it has note types but no fields table")
        fields: dict[int, list[str]] = {}
        for ntid, name in db.execute("SELECT ntid, name FROM fields ORDER BY ntid, ord"):
            if not isinstance(ntid, int) or not isinstance(name, str):
                raise CollectionError("a field of a note type has no name")
            fields.setdefault(ntid, []).append(name)
        out = {}
        for ntid, name, config in db.execute("SELECT id, name, config FROM notetypes"):
            if not isinstance(ntid, int) or not isinstance(name, str) or not isinstance(config, bytes | None):
                raise CollectionError("a note type is malformed (id, name or config)")
            out[ntid] = (name, bytes(config or b"")[:2] == b"\x08\x01", fields.get(ntid, []))
        return out
    if tables.get("col") != "table":
        raise CollectionError("it has neither note types nor a col table")
    row = db.execute("SELECT models FROM col").fetchone()
    if row is None or not isinstance(row[0], str):
        raise CollectionError("col.models (the note types) is missing")
    try:
        models = json.loads(row[0])
    except ValueError as exc:
        raise CollectionError(f"col.models (the note types) is not JSON ({exc})") from None
    if not isinstance(models, dict):
        raise CollectionError(f"col.models (the note types) is {type(models).__name__} JSON, not a map of note types")
    out = {}
    for key, model in models.items():
        try:
            ntid = int(key)
            name, kind, flds = model["name"], model.get("type", 0), model["flds"]
            names = [f["name"] for f in sorted(flds, key=lambda f: f["ord"])]
            if not isinstance(name, str) or not all(isinstance(n, str) for n in names):
                raise TypeError("names must be text")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CollectionError(
                f"note type {str(key)[:40]!r} in col.models is malformed ({type(exc).__name__}: {exc})"
            ) from None
        out[ntid] = (name, kind == 1, names)
    return out
