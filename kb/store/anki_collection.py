"""Reading an Anki collection (the SQLite file inside an .apkg): the SQL of `kb import`.

Kept in kb/store/ with the rest of the project's SQL; this database is Anki's, opened read-only in a
temporary copy.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def read_collection(db_path: Path) -> tuple[dict[int, tuple[str, bool, list[str]]], list[tuple]]:
    """(note types, notes as (guid, note type id, tags, fields)) of an Anki collection file."""
    db = sqlite3.connect(db_path)
    try:
        return _notetypes(db), db.execute("SELECT guid, mid, tags, flds FROM notes ORDER BY id").fetchall()
    finally:
        db.close()


def _notetypes(db: sqlite3.Connection) -> dict[int, tuple[str, bool, list[str]]]:
    """note type id -> (name, is cloze, field names), from either schema."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "notetypes" in tables:  # schema 18: the config is a protobuf whose field 1 is the kind (1 = cloze)
        fields: dict[int, list[str]] = {}
        for ntid, name in db.execute("SELECT ntid, name FROM fields ORDER BY ntid, ord"):
            fields.setdefault(ntid, []).append(name)
        return {i: (name, bytes(config[:2]) == b"\x08\x01", fields.get(i, []))
                for i, name, config in db.execute("SELECT id, name, config FROM notetypes")}
    models = json.loads(db.execute("SELECT models FROM col").fetchone()[0])
    return {int(i): (m["name"], m.get("type") == 1, [f["name"] for f in sorted(m["flds"], key=lambda f: f["ord"])])
            for i, m in models.items()}
