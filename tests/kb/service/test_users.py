"""Users: reviews, schedules, card marks, settings and trust are each user's own; concepts,
decks and cards are shared (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from helpers import FIXED_NOW, Clock, db_execute, write_concept
from kb.config import SettingsError, load_settings
from kb.service import KnowledgeBase

pytestmark = pytest.mark.both_backends

CARDS = "cards:\n  - {type: basic, id: b, front: 'Front?', back: Back.}\n"
SNIPPET = "snippet:\n  code: |\n    assert 2 + 2 == 4\n"


@pytest.fixture
def two(settings, deck):
    """Alice's and Bob's kb on one database and one deck."""
    for i in range(3):
        write_concept(deck, f"c{i}", extra=CARDS)
    clock = Clock(FIXED_NOW)
    alice = KnowledgeBase(dataclasses.replace(settings, user="alice", timezone="UTC"), clock=clock)
    bob = KnowledgeBase(dataclasses.replace(settings, user="bob", timezone="UTC"), clock=clock)
    alice.sync()
    yield alice, bob
    alice.close()
    bob.close()


def test_two_users_answering_one_card_each_get_their_own_review(two):
    alice, bob = two
    first = alice.answer("c0/b", 3, duration_ms=1000)
    second = bob.answer("c0/b", 1, duration_ms=2000)
    assert first.review_id != second.review_id
    rows = db_execute(alice, "SELECT user_name, rating FROM review_log ORDER BY id")
    assert rows == [("alice", 3), ("bob", 1)]
    states = db_execute(alice, "SELECT user_name, state FROM card_state ORDER BY user_name")
    assert [user for user, _ in states] == ["alice", "bob"]
    # Each one's history and schedule are their own.
    assert [h.what for h in alice.card_history("c0/b")] == ["Good"]
    assert [h.what for h in bob.card_history("c0/b")] == ["Again"]


def test_stats_and_the_quiz_are_per_user(two):
    alice, bob = two
    for card in ("c0/b", "c1/b"):
        alice.answer(card, 3, duration_ms=1000)
    assert alice.stats()["reviews_total"] == 2 and bob.stats()["reviews_total"] == 0
    assert alice.stats()["cards_new"] == bob.stats()["cards_new"] - 2

    # Alice's answers put her c0/b and c1/b in learning (and bury their siblings for today); Bob's
    # queue still offers all three concepts' new cards.
    def new_concepts(kb):
        return {e.card_id.split("/")[0] for e in kb.due_queue() if e.state == "new"}

    assert new_concepts(bob) == {"c0", "c1", "c2"}
    assert new_concepts(alice) == {"c2"}
    assert {e.card_id for e in alice.due_queue() if e.state == "learning"} == {"c0/b", "c1/b"}


def test_marks_undo_and_settings_are_per_user(two):
    alice, bob = two
    alice.change_cards(["c2/b"], "suspend")
    assert [c.card_id for c in alice.search_cards("is:suspended")] == ["c2/b"]
    assert bob.search_cards("is:suspended") == []
    answer = bob.answer("c0/b", 3, duration_ms=1000)
    assert alice.undo(answer.review_id) is None  # not Alice's to take back
    assert bob.stats()["reviews_total"] == 1
    from kb.store.reviews import get_setting, set_setting

    set_setting(alice.engine, "fsrs_parameters", [0.4] * 21)
    assert get_setting(alice.engine, "fsrs_parameters") == [0.4] * 21
    assert get_setting(bob.engine, "fsrs_parameters") is None


def test_trust_is_per_user(settings, deck, tmp_path):
    lab = tmp_path / "lab"
    write_concept(lab, "lab-alpha", extra=CARDS + SNIPPET)
    shared = dataclasses.replace(settings, extra_content=(lab,))
    with (
        KnowledgeBase(dataclasses.replace(shared, user="alice"), clock=lambda: FIXED_NOW) as alice,
        KnowledgeBase(dataclasses.replace(shared, user="bob"), clock=lambda: FIXED_NOW) as bob,
    ):
        alice.sync()
        alice.trust("lab")
        assert {d.name: d.trust for d in alice.decks()}["lab"] == "trusted"
        assert {d.name: d.trust for d in bob.decks()}["lab"] != "trusted"


def test_kb_user_names_the_user(tmp_path: Path):
    assert load_settings({"KB_HOME": str(tmp_path), "KB_USER": "alice"}).user_name == "alice"
    assert load_settings({"KB_HOME": str(tmp_path)}).user_name  # the login name (or "kb")
    with pytest.raises(SettingsError, match="not a user name"):
        load_settings({"KB_HOME": str(tmp_path), "KB_USER": "a'; DROP TABLE card; --"})
