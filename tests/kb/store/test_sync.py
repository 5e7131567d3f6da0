"""Sync: incremental, transactional, and it never loses a card or a review."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta

import pytest

from helpers import FIXED_NOW, backend_url, concept_yaml, db_execute, write_concept
from kb.store import ingest

pytestmark = pytest.mark.both_backends


def snapshot_db(kb) -> dict:
    """Row counts and a hash of the history tables: cards, reviews, runs."""
    out = {}
    for table, order in (("card", "pk"), ("review_log", "id"), ("snippet_run", "id"), ("concept", "id")):
        rows = db_execute(kb, f"SELECT * FROM {table} ORDER BY {order}")
        out[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return out


def add_review(kb, card_id: str, rating: int = 3) -> None:
    ((pk, content_hash),) = db_execute(kb, "SELECT pk, content_hash FROM card WHERE card_id = ?", (card_id,))
    db_execute(
        kb,
        "INSERT INTO review_log (card_pk, rating, reviewed_at, content_hash, was_new, user_name) "
        "VALUES (?, ?, ?, ?, FALSE, ?)",
        (pk, rating, FIXED_NOW.isoformat(), content_hash, kb.settings.user_name),
    )


def reviews_of(kb, card_id: str) -> int:
    return db_execute(
        kb, "SELECT count(*) FROM review_log r JOIN card c ON c.pk = r.card_pk WHERE c.card_id = ?", (card_id,)
    )[0][0]


def card_row(kb, card_id: str):
    rows = db_execute(kb, "SELECT pk, retired, content_hash FROM card WHERE card_id = ?", (card_id,))
    return (rows[0][0], int(rows[0][1]), rows[0][2]) if rows else None


def bump_mtime(path, seconds: int = 5) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + seconds * 1_000_000_000))


CARDS = "cards:\n  - {type: basic, id: q1, front: Question one?, back: Answer one.}\n"


def test_first_sync_adds_then_noop_parses_nothing(kb, deck, monkeypatch):
    write_concept(deck, "alpha", extra=CARDS)
    write_concept(deck, "beta")
    report = kb.sync()
    assert sorted(report.added) == ["alpha", "beta"]
    assert report.errors == []
    assert kb.show("alpha")["cards"][0]["id"] == "alpha/definition"

    calls = []
    monkeypatch.setattr(ingest, "parse_file", lambda p: calls.append(p))
    again = kb.sync()
    assert calls == []
    assert not again.changed
    assert again.unchanged == 2


def test_only_the_changed_file_is_parsed(kb, deck, monkeypatch):
    a = write_concept(deck, "alpha")
    write_concept(deck, "beta")
    kb.sync()
    a.write_text(concept_yaml("alpha", definition="Now with a new definition."), encoding="utf-8")
    bump_mtime(a)
    parsed = []
    real = ingest.parse_file
    monkeypatch.setattr(ingest, "parse_file", lambda p: parsed.append(p.name) or real(p))
    report = kb.sync()
    assert parsed == ["alpha.yaml"]
    assert report.updated == ["alpha"]
    assert kb.show("alpha")["definition"] == "Now with a new definition.\n"


def test_touch_without_change_updates_nothing(kb, deck):
    a = write_concept(deck, "alpha")
    kb.sync()
    before = snapshot_db(kb)
    bump_mtime(a)
    report = kb.sync()
    assert not report.changed
    assert snapshot_db(kb) == before


def test_edit_keeps_card_ids_and_reviews(kb, deck):
    a = write_concept(deck, "alpha", extra=CARDS)
    kb.sync()
    pk_before, _, hash_before = card_row(kb, "alpha/q1")
    add_review(kb, "alpha/q1")
    a.write_text(concept_yaml("alpha", extra=CARDS.replace("Answer one.", "A better answer.")), encoding="utf-8")
    bump_mtime(a)
    kb.sync()
    pk_after, retired, hash_after = card_row(kb, "alpha/q1")
    assert pk_after == pk_before and not retired
    assert hash_after != hash_before
    assert reviews_of(kb, "alpha/q1") == 1


def test_move_to_another_file_keeps_history(kb, deck):
    a = write_concept(deck, "alpha", extra=CARDS)
    kb.sync()
    add_review(kb, "alpha/q1")
    moved = deck / "layers" / "renamed-file.yaml"
    moved.parent.mkdir()
    a.rename(moved)
    report = kb.sync()
    assert report.retired == []
    assert reviews_of(kb, "alpha/q1") == 1
    assert kb.show("alpha")["source_path"] == str(moved)


def test_rename_without_previous_ids_keeps_orphan(kb, deck):
    a = write_concept(deck, "alpha", extra=CARDS)
    kb.sync()
    add_review(kb, "alpha/q1")
    a.unlink()
    write_concept(deck, "alpha-new", extra=CARDS)
    report = kb.sync()
    assert report.retired == ["alpha"]
    assert card_row(kb, "alpha/q1")[1] == 1  # retired, kept
    assert reviews_of(kb, "alpha/q1") == 1


def test_rename_with_previous_ids_carries_reviews(kb, deck):
    a = write_concept(deck, "alpha", extra=CARDS)
    kb.sync()
    add_review(kb, "alpha/q1")
    add_review(kb, "alpha/definition")
    before = snapshot_db(kb)["review_log"]
    a.unlink()
    write_concept(deck, "alpha-new", extra=CARDS + "previous_ids: [alpha]\n")
    report = kb.sync()
    assert report.renamed == [("alpha", "alpha-new")]
    assert reviews_of(kb, "alpha-new/q1") == 1
    assert reviews_of(kb, "alpha-new/definition") == 1
    assert kb.show("alpha") is None
    assert snapshot_db(kb)["review_log"] == before


def test_delete_retires_and_keeps_reviews(kb, deck):
    a = write_concept(deck, "alpha", extra=CARDS)
    write_concept(deck, "beta")
    kb.sync()
    add_review(kb, "alpha/q1")
    before = snapshot_db(kb)
    a.unlink()
    report = kb.sync()
    assert report.retired == ["alpha"]
    after = snapshot_db(kb)
    assert after["review_log"] == before["review_log"]
    assert after["card"][0] == before["card"][0]  # no card row deleted
    assert kb.show("alpha")["retired"] is True
    assert [h.id for h in kb.search("Alpha")] == []
    # Restoring the file brings the same cards (and their reviews) back.
    write_concept(deck, "alpha", extra=CARDS)
    kb.sync()
    assert card_row(kb, "alpha/q1")[1] == 0
    assert reviews_of(kb, "alpha/q1") == 1


def test_removed_card_is_retired_not_deleted(kb, deck):
    a = write_concept(deck, "alpha", extra=CARDS)
    kb.sync()
    add_review(kb, "alpha/q1")
    a.write_text(concept_yaml("alpha"), encoding="utf-8")
    bump_mtime(a)
    kb.sync()
    assert card_row(kb, "alpha/q1")[1] == 1
    assert reviews_of(kb, "alpha/q1") == 1


def test_broken_file_keeps_last_good_version(kb, deck):
    a = write_concept(deck, "alpha", definition="The good version.")
    for i in range(5):
        write_concept(deck, f"other-{i}")
    kb.sync()
    before = snapshot_db(kb)
    a.write_text(concept_yaml("alpha").replace("definition:", "defintion:"), encoding="utf-8")
    bump_mtime(a)
    report = kb.sync()
    assert [e.message for e in report.errors] == [
        "missing required field 'definition'",
        "unknown field 'defintion' (did you mean 'definition'?)",
    ]
    assert kb.show("alpha")["definition"] == "The good version.\n"
    assert snapshot_db(kb) == before
    # The error is reported again by the next (no-op) sync, until the file is fixed.
    assert len(kb.sync().errors) == 2
    a.write_text(concept_yaml("alpha", definition="Fixed."), encoding="utf-8")
    bump_mtime(a, 10)
    fixed = kb.sync()
    assert fixed.errors == [] and fixed.updated == ["alpha"]


def test_duplicate_id_in_second_file_is_reported_first_kept(kb, deck):
    write_concept(deck, "alpha", definition="First.")
    kb.sync()
    dup = deck / "layers" / "copy.yaml"
    dup.parent.mkdir()
    dup.write_text(concept_yaml("alpha", definition="Second."), encoding="utf-8")
    report = kb.sync()
    assert len(report.errors) == 1
    assert report.errors[0].message.startswith("duplicate id 'alpha' (also defined in ")
    assert kb.show("alpha")["definition"] == "First.\n"


def test_dangling_reference_reported_concept_still_loads(kb, deck):
    write_concept(deck, "alpha", extra="related: [nowhere]\n")
    report = kb.sync()
    assert [e.message for e in report.errors] == ["unknown id 'nowhere' in related"]
    assert kb.show("alpha")["related"] == ["nowhere"]


def test_extra_decks_from_kb_content(tmp_path, deck):
    from kb.config import Settings
    from kb.service import KnowledgeBase

    extra = tmp_path / "lab-deck"
    write_concept(extra, "lab-concept")
    write_concept(deck, "alpha")
    settings = Settings(
        home=tmp_path / "home", bundled_content=deck, extra_content=(extra,), database_url=backend_url()
    )
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        assert sorted(kb.sync().added) == ["alpha", "lab-concept"]
        decks = {d["name"]: d["trusted"] for d in kb.doctor()["decks"]}
        assert decks == {"bundled": True, "notes": True, "lab-deck": False}


def test_notes_deck_is_loaded(kb, settings):
    write_concept(settings.notes_dir, "my-note")
    assert kb.sync().added == ["my-note"]


def test_file_read_once(kb, deck, monkeypatch):
    """The hash and the parse come from one read of the bytes (one snapshot)."""
    from pathlib import Path

    write_concept(deck, "alpha")
    reads = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self.name) or real(self))
    kb.sync()
    assert reads == ["alpha.yaml"]


def test_sync_is_one_transaction(kb, deck, monkeypatch):
    """A failure half-way through the write leaves the database as it was."""
    write_concept(deck, "alpha")
    kb.sync()
    before = snapshot_db(kb)
    b = write_concept(deck, "beta")
    a = deck / "fundamentals" / "alpha.yaml"
    a.write_text(concept_yaml("alpha", definition="changed"), encoding="utf-8")
    bump_mtime(a)
    bump_mtime(b)

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest, "_sync_cards", boom)
    with pytest.raises(RuntimeError):
        kb.sync()
    assert snapshot_db(kb) == before
    monkeypatch.undo()
    assert sorted(kb.sync().added) == ["beta"]


def test_timestamps_are_utc_aware(kb, deck):
    from kb.store.tables import UTCDateTime

    write_concept(deck, "alpha")
    kb.sync()
    ((created,),) = db_execute(kb, "SELECT created_at FROM concept")
    assert created.endswith("+00:00")
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(FIXED_NOW.replace(tzinfo=None) + timedelta(0), None)


# --- walking a deck: symbolic link loops, unreadable folders --------------------------------------


@pytest.mark.timeout(30)
def test_a_symbolic_link_loop_is_one_message_and_ends(kb, deck):
    write_concept(deck, "loop-one")
    os.symlink(".", deck / "a")
    os.symlink(".", deck / "b")
    os.symlink("..", deck / "fundamentals" / "up")
    report = kb.sync()
    assert report.added == ["loop-one"]
    messages = [str(e) for e in report.errors]
    assert len(messages) == 3, messages  # one per link, and no false duplicate ids
    assert all(
        "a symbolic link back to" in m and m.endswith("(a loop or a second link to one folder)") for m in messages
    )
    assert not any("duplicate id" in m for m in messages)
    assert [str(e) for e in kb.check().errors] == messages


def test_two_links_to_one_folder_read_it_once(kb, deck, tmp_path):
    shared = tmp_path / "shared"
    write_concept(shared, "shared-note")
    os.symlink(shared, deck / "first")
    os.symlink(shared, deck / "second")
    report = kb.sync()
    assert report.added == ["shared-note"]
    assert [e.path for e in report.errors] == [str(deck / "second")]


def test_folders_nested_past_the_limit_are_reported(kb, deck, monkeypatch):
    from kb import loader

    monkeypatch.setattr(loader, "MAX_WALK_DEPTH", 3)
    write_concept(deck / "1" / "2", "shallow-note")
    write_concept(deck / "1" / "2" / "3" / "4", "deep-note")
    report = kb.sync()
    assert report.added == ["shallow-note"]
    assert [e.message for e in report.errors] == ["folders nested deeper than 3 levels are not read"]


def test_a_folder_that_cannot_be_read_keeps_its_concepts(kb, deck, monkeypatch):
    """Its notes are not gone: they are reported, and stay loaded with their reviews (never retired)."""
    write_concept(deck / "private", "private-note")
    write_concept(deck, "public-note")
    assert sorted(kb.sync().added) == ["private-note", "public-note"]
    add_review(kb, "private-note/definition")
    private = str(deck / "private")
    real_scandir = os.scandir

    def scandir(path="."):
        if str(path) == private:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = kb.sync()
    assert report.retired == [] and [str(e) for e in report.errors] == [
        f"{private}:1:1: cannot read this folder (Permission denied); what kb loaded from it before is kept"
    ]
    assert kb.show("private-note")["retired"] is False and reviews_of(kb, "private-note/definition") == 1
    assert [str(e) for e in kb.sync().errors] == [str(e) for e in report.errors]  # said on every sync
    monkeypatch.setattr(os, "scandir", real_scandir)
    assert kb.sync().errors == [] and kb.show("private-note")["retired"] is False


def _kb_cli(*args: str, home, deck, bundled) -> list[str]:
    """Run `python -m kb ARGS` as a user would; the duplicate-id lines it printed."""
    import subprocess
    import sys

    env = {**os.environ, "KB_HOME": str(home), "KB_CONTENT": str(deck), "KB_BUNDLED_CONTENT": str(bundled)}
    proc = subprocess.run([sys.executable, "-m", "kb", *args], capture_output=True, text=True, env=env)
    return [line for line in proc.stderr.splitlines() if "duplicate id" in line]


@pytest.mark.parametrize("added_later", [True, False], ids=["added-later", "added-together"])
def test_duplicate_id_is_placed_alike_by_sync_and_check(tmp_path, added_later):
    """`kb sync` points at both `id:` values exactly where `kb check` does, also when the first
    file was synced before (and so is not parsed again), and when the errors are read back."""
    from kb.config import Settings
    from kb.service import KnowledgeBase

    root = tmp_path.resolve()
    deck, bundled, cli_home = root / "deck", root / "bundled", root / "cli-home"
    bundled.mkdir()
    first = write_concept(deck, "twin", definition="First.")
    second = deck / "layers" / "twin-copy.yaml"  # sorts after the first: it is the one reported

    def add_second() -> None:
        second.parent.mkdir()
        second.write_text(concept_yaml("twin", definition="Second."), encoding="utf-8")

    if not added_later:
        add_second()
    with KnowledgeBase(Settings(home=root / "home", bundled_content=deck), clock=lambda: FIXED_NOW) as kb:
        reports = [kb.sync()]
        cli_syncs = [_kb_cli("sync", home=cli_home, deck=deck, bundled=bundled)]
        if added_later:
            add_second()
            reports.append(kb.sync())
            cli_syncs.append(_kb_cli("sync", home=cli_home, deck=deck, bundled=bundled))
        reports.append(kb.sync())  # nothing changed: the errors come back from the database
    cli_syncs.append(_kb_cli("sync", home=cli_home, deck=deck, bundled=bundled))
    cli_check = _kb_cli("check", home=cli_home, deck=deck, bundled=bundled)

    expected = [f"{second}:1:5: duplicate id 'twin' (also defined in {first}:1:5)"]
    assert cli_check == expected
    assert [[str(e) for e in r.errors] for r in reports[-2:]] == [expected, expected]
    assert cli_syncs[-2:] == [expected, expected]


def test_the_sync_plan_is_decided_from_plain_values(deck):
    """No engine: files on disk, their stored rows and the concept rows in, every decision out."""
    from kb.config import Deck

    kept = write_concept(deck, "kept")
    renamed = write_concept(deck, "new-name", extra="previous_ids: [old-name]\n")
    twin = deck / "layers" / "kept-copy.yaml"
    twin.parent.mkdir()
    twin.write_text(concept_yaml("kept"), encoding="utf-8")
    the_deck = Deck(deck, "test", trusted=True)
    on_disk = {str(p): (the_deck, 1, 1) for p in (kept, renamed, twin)}
    stored = {
        str(kept): ingest._Stored(str(kept), 1, 1, "hash", "kept", None),
        str(deck / "gone.yaml"): ingest._Stored(str(deck / "gone.yaml"), 1, 1, "hash", "gone", None),
    }
    parsed = {str(p): ingest.parse_for_sync(str(p)) for p in (renamed, twin)}

    plan = ingest.plan_sync(
        [the_deck],
        on_disk,
        [],
        parsed,
        stored=stored,
        concept_retired={"kept": False, "old-name": False, "gone": False},
        known_decks={str(deck)},
        unparsed_id_positions={str(kept): (1, 5)},
    )
    report = plan.report()
    # The renamed concept's row is new (its cards move over from the old id); the deleted file's concept retires.
    assert report.added == ["new-name"] and report.updated == []
    assert report.renamed == [("old-name", "new-name")] and report.retired == ["gone"]
    assert [str(e) for e in report.errors] == [f"{twin}:1:5: duplicate id 'kept' (also defined in {kept}:1:5)"]
    assert plan.deleted == [str(deck / "gone.yaml")] and plan.new_decks == [] and report.unchanged == 1
