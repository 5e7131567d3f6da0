"""Broken and hostile Anki packages: each is one line naming the package, exit 1, nothing written.

The collections are made by hand with sqlite3 (Anki itself never writes such files), so every
column can hold what a damaged or crafted file holds: NULL, a BLOB, JSON of the wrong shape, a view
in place of a table, far too many notes.
"""

from __future__ import annotations

import json
import sqlite3
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import snapshot_db
from kb.cli import main
from kb.interop import InteropError, anki_import
from kb.interop.anki_import import read_package
from kb.store import anki_collection

BASIC = {"1": {"name": "Basic", "type": 0, "flds": [{"name": "Front", "ord": 0}, {"name": "Back", "ord": 1}]}}


def make_collection(
    path: Path, *, models=BASIC, notes=(), notes_sql: str | None = None, raw_models: str | None = None
) -> Path:
    """A legacy (schema 11) collection: col.models as JSON text, notes(id, guid, mid, tags, flds)."""
    db = sqlite3.connect(path)
    try:
        db.execute("CREATE TABLE col (models)")
        db.execute("INSERT INTO col VALUES (?)", (raw_models if raw_models is not None else json.dumps(models),))
        db.execute(notes_sql or "CREATE TABLE notes (id, guid, mid, tags, flds)")
        if notes_sql is None:
            db.executemany("INSERT INTO notes VALUES (?, ?, ?, ?, ?)", notes)
        db.commit()
    finally:
        db.close()
    return path


def make_package(tmp_path: Path, name: str = "bad.apkg", **collection) -> Path:
    db = make_collection(tmp_path / "collection.anki2", **collection)
    package = tmp_path / name
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(db, "collection.anki2")
    db.unlink()
    return package


def good_note(i: int = 1):
    return (i, f"guid{i}", 1, " tag ", f"Front {i}\x1fBack {i}")


@pytest.fixture
def home(tmp_path, monkeypatch):
    deck = tmp_path / "bundled"
    deck.mkdir()
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    monkeypatch.delenv("KB_CONTENT", raising=False)
    assert main(["sync"]) == 0
    return tmp_path / "home"


def import_fails_in_one_line(home: Path, package: Path, capsys, expected: str) -> str:
    capsys.readouterr()
    before = snapshot_db(home / "kb.sqlite")
    code = main(["import", str(package)])
    out, err = capsys.readouterr()
    assert code == 1 and out == "", (out, err)
    assert err.count("\n") == 1 and err.startswith(f"kb: {package}: "), err
    assert expected in err, err
    assert not (home / "decks").exists() or list((home / "decks").iterdir()) == []  # nothing written
    assert snapshot_db(home / "kb.sqlite") == before
    return err


@pytest.mark.parametrize(
    ("collection", "expected"),
    [
        ({"notes": [(1, "g", 1, "", None)]}, "note 1: its flds is NULL, not text"),
        ({"notes": [(1, "g", 1, None, "a\x1fb")]}, "note 1: its tags is NULL, not text"),
        ({"notes": [(1, "g", 1, "", b"a\x1fb")]}, "note 1: its flds is a blob value, not text"),
        ({"notes": [(1, "g", "one", "", "a\x1fb")]}, "note 1: its mid is a text value, not integer"),
        ({"raw_models": "[]", "notes": [good_note()]}, "col.models (the note types) is list JSON"),
        ({"raw_models": "null", "notes": [good_note()]}, "col.models (the note types) is NoneType JSON"),
        ({"raw_models": "{not json", "notes": [good_note()]}, "col.models (the note types) is not JSON"),
        ({"models": {"1": {"name": "Basic"}}, "notes": [good_note()]}, "note type '1' in col.models is malformed"),
        ({"models": {"x": BASIC["1"]}, "notes": [good_note()]}, "note type 'x' in col.models is malformed"),
        (
            {
                "notes_sql": "CREATE VIEW notes AS WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n) "
                "SELECT id, 'g' AS guid, 1 AS mid, '' AS tags, 'a' AS flds FROM n"
            },
            "it has no notes table",
        ),
    ],
    ids=[
        "null-flds",
        "null-tags",
        "blob-flds",
        "text-mid",
        "models-list",
        "models-null",
        "models-not-json",
        "model-without-fields",
        "model-id-not-a-number",
        "endless-view",
    ],
)
@pytest.mark.timeout(60)
def test_a_malformed_collection_is_one_line(home, tmp_path, capsys, collection, expected):
    import_fails_in_one_line(home, make_package(tmp_path, **collection), capsys, expected)


def test_a_field_with_nul_digits_nul_imports(home, tmp_path, capsys):
    """NUL, digits, NUL once collided with the placeholders of the HTML-to-text step (IndexError)."""
    package = make_package(tmp_path, name="nul.apkg", notes=[(1, "g", 1, "", "Front \x0012\x00 x\x1fBack \x007\x00")])
    assert main(["import", str(package)]) == 0, capsys.readouterr()
    assert "imported 1 concepts" in capsys.readouterr().out


@pytest.mark.timeout(60)
def test_too_many_notes_are_refused_before_reading_them(home, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(anki_collection, "MAX_NOTES", 50)
    monkeypatch.setattr(anki_collection.read_collection, "__kwdefaults__", {"max_notes": 50})
    package = make_package(tmp_path, notes=[good_note(i) for i in range(51)])
    import_fails_in_one_line(home, package, capsys, "it holds 51 notes; kb imports at most 50 at a time")


@pytest.mark.timeout(60)
def test_a_collection_that_unpacks_past_the_limit_is_refused_before_extraction(home, tmp_path, capsys, monkeypatch):
    """A small package holding a huge collection (a zip bomb): refused by its declared size."""
    monkeypatch.setattr(anki_import, "MAX_COLLECTION_BYTES", 4 * 2**20)
    package = tmp_path / "bomb.apkg"
    with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("collection.anki2", "w") as member:
            for _ in range(32):
                member.write(b"\0" * 2**20)  # 32 MiB of zeros, a few KB compressed
    assert package.stat().st_size < 200_000
    import_fails_in_one_line(home, package, capsys, "its collection is 32 MiB unpacked; kb imports at most 4 MiB")


def test_a_package_with_no_collection_or_not_a_zip(home, tmp_path, capsys):
    empty = tmp_path / "empty.apkg"
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("media", "{}")
    import_fails_in_one_line(home, empty, capsys, "it holds no collection")
    garbage = tmp_path / "garbage.apkg"
    garbage.write_bytes(b"PK\x03\x04" + b"\xff" * 100)
    import_fails_in_one_line(home, garbage, capsys, "not an Anki package")


# --- property: any collection made of odd values gives notes or an InteropError, nothing else -----

ANY_VALUE = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True),
    st.binary(max_size=40),
    st.text(max_size=60),
    st.text(alphabet="\x00\x1f<>&;$`\\[]()div ", max_size=80),
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
MODELS = st.one_of(
    st.just(json.dumps(BASIC)),
    JSON_VALUE.map(json.dumps),
    st.dictionaries(st.sampled_from(["1", "2", "x"]), JSON_VALUE, max_size=2).map(json.dumps),
    st.text(max_size=30),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    models=MODELS,
    notes=st.lists(st.tuples(st.integers(0, 1000), ANY_VALUE, ANY_VALUE, ANY_VALUE, ANY_VALUE), max_size=6),
)
def test_malformed_collections_never_crash_the_reader(tmp_path_factory, models, notes):
    work = tmp_path_factory.mktemp("apkg")
    package = make_package(work, raw_models=models, notes=notes)
    started = time.monotonic()
    try:
        for note in read_package(package):
            anki_import.concept_from_note(note, set())
    except InteropError as exc:
        assert str(exc).startswith(f"{package}: ")
    assert time.monotonic() - started < 30
