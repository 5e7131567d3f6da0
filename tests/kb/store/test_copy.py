"""`kb db copy`: SQLite to PostgreSQL and back, all or nothing, into an empty database only."""

from __future__ import annotations

import dataclasses

import pytest

from helpers import FIXED_NOW, db_execute, write_concept
from kb.cli import main
from kb.service import KnowledgeBase
from kb.store.errors import StoreError

CARDS = "cards:\n  - {type: basic, id: b, front: 'Front?', back: Back.}\n"


@pytest.fixture
def studied(settings, deck):
    """A SQLite kb with concepts, answers of two users, a mark and a stored setting."""
    for i in range(3):
        write_concept(deck, f"c{i}", title_zh=f"卷积{i}", extra=CARDS)
    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as kb:
        kb.sync()
        kb.answer("c0/b", 3, duration_ms=1000)
        kb.answer("c1/b", 1, duration_ms=1000)
        kb.change_cards(["c2/b"], "flag", 2)
        from kb.store.reviews import set_setting

        set_setting(kb.engine, "fsrs_fit", {"chosen": "current"})
    with KnowledgeBase(dataclasses.replace(settings, user="bob"), clock=lambda: FIXED_NOW) as bob:
        bob.answer("c0/b", 4, duration_ms=500)
    return settings


def _tables(kb) -> dict[str, list]:
    out = {}
    for table, order in (
        ("card", "pk"),
        ("review_log", "id"),
        ("card_state", "user_name, card_pk"),
        ("setting", "key"),
    ):
        out[table] = [
            tuple(map(lambda v: int(v) if isinstance(v, bool) else v, r))
            for r in db_execute(kb, f"SELECT * FROM {table} ORDER BY {order}")
        ]
    return out


def test_sqlite_to_postgresql_and_back_keeps_every_row(studied, postgres_url, tmp_path):
    with KnowledgeBase(studied, clock=lambda: FIXED_NOW) as kb:
        source, target, counts = kb.copy_database(to=postgres_url)
        before, stats = _tables(kb), kb.stats()
    assert "***" in target and counts["review_log"] == 4 and counts["card_state"] == 3
    on_server = dataclasses.replace(studied, database_url=postgres_url)
    with KnowledgeBase(on_server, clock=lambda: FIXED_NOW) as kb:
        assert _tables(kb) == before
        assert kb.stats()["reviews_total"] == stats["reviews_total"] == 2
        assert [h.id for h in kb.search("卷积1")][:1] == ["c1"]
        # New rows continue after the copied ids.
        assert kb.answer("c2/b", 3, duration_ms=100).review_id > max(r[0] for r in before["review_log"])
    back = tmp_path / "back.sqlite"
    with KnowledgeBase(dataclasses.replace(studied, home=tmp_path / "other"), clock=lambda: FIXED_NOW) as empty:
        empty.copy_database(to=str(back))  # an empty kb copied to a file: it makes the file
    back.unlink()
    with KnowledgeBase(on_server, clock=lambda: FIXED_NOW) as kb:
        _, _, again = kb.copy_database(to=str(back))
    assert again["review_log"] == 5


def test_only_into_an_empty_database(studied, postgres_url):
    with KnowledgeBase(studied, clock=lambda: FIXED_NOW) as kb:
        kb.copy_database(to=postgres_url)
        with pytest.raises(StoreError, match="is not empty .*nothing was copied"):
            kb.copy_database(to=postgres_url)
    with KnowledgeBase(dataclasses.replace(studied, database_url=postgres_url), clock=lambda: FIXED_NOW) as kb:
        assert db_execute(kb, "SELECT count(*) FROM review_log") == [(4,)]


def test_a_failure_half_way_leaves_the_target_empty(studied, postgres_url, monkeypatch):
    from kb.store import copy as store_copy

    real = store_copy._copy_rows

    def fails_at_the_review_log(src, dst, table):
        if table.name == "review_log":
            raise StoreError("the server went away")
        return real(src, dst, table)

    monkeypatch.setattr(store_copy, "_copy_rows", fails_at_the_review_log)
    with KnowledgeBase(studied, clock=lambda: FIXED_NOW) as kb, pytest.raises(StoreError):
        kb.copy_database(to=postgres_url)
    monkeypatch.undo()
    with KnowledgeBase(dataclasses.replace(studied, database_url=postgres_url), clock=lambda: FIXED_NOW) as kb:
        assert db_execute(kb, "SELECT count(*) FROM card") == [(0,)]
        assert db_execute(kb, "SELECT count(*) FROM concept") == [(0,)]


def test_the_command_says_what_it_copied_in_one_line(studied, postgres_url, capsys, monkeypatch):
    monkeypatch.setenv("KB_HOME", str(studied.home))
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(studied.bundled_content))
    assert main(["db", "copy", "--to", postgres_url]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("copied ") and "4 review_log" in out and len(out.splitlines()) == 1
    assert main(["db", "copy", "--to", postgres_url]) == 1
    err = capsys.readouterr().err.strip()
    assert "is not empty" in err and len(err.splitlines()) == 1 and "Traceback" not in err
