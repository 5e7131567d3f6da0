"""Cards changed by hand, custom study and preview, and the order new cards come in."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from helpers import Clock, backend_url, db_execute, write_concept
from kb.config import Settings
from kb.errors import KbError
from kb.service import KnowledgeBase
from kb.service.session import QuizSession

START = datetime(2026, 3, 2, 15, 0, tzinfo=timezone.utc)  # 10:00 in New York
CARDS = (
    "cards:\n"
    "  - {type: basic, id: b, front: 'Front?', back: Back.}\n"
    "  - {type: typed, id: t, question: 'Type it?', answer: 'it|that'}\n"
    "  - {type: basic, id: c, front: 'Third?', back: Third.}\n"
)

pytestmark = pytest.mark.both_backends


def make_kb(tmp_path, deck, clock, **settings) -> KnowledgeBase:
    options = {"timezone": "America/New_York", **settings}
    options.setdefault("database_url", backend_url())
    return KnowledgeBase(Settings(home=tmp_path / "home", bundled_content=deck, **options), clock=clock)


@pytest.fixture
def kb(tmp_path, deck):
    for i in range(6):
        write_concept(deck, f"c{i}", extra=CARDS)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock) as kb:
        kb.sync()
        kb.test_clock = clock  # type: ignore[attr-defined]
        yield kb


def manual_rows(kb) -> list[tuple]:
    return db_execute(kb, "SELECT rating, kind FROM review_log WHERE kind = 'manual'")


def ids(cards) -> list[str]:
    return [c.card_id for c in cards]


def test_suspend_keeps_new_and_review_cards_out_until_unsuspended_and_undo_restores(kb):
    first = kb.due_queue()[0].card_id
    assert first == "c0/definition"
    kb.answer(first, 4)  # easy: a review card, due in days
    report = kb.change_cards([first, "c1/definition"], "suspend")
    assert report.changed == [first, "c1/definition"] and report.unchanged == 0
    assert ids(kb.search_cards("is:suspended")) == [first, "c1/definition"]
    assert "c1/definition" not in ids(kb.due_queue())
    kb.test_clock.advance(days=30)
    assert first not in ids(kb.due_queue())  # due long ago, still held back
    assert kb.stats()["cards_suspended"] == 2
    # Every change is a manual row of the review log, not an answer.
    assert manual_rows(kb) == [(0, "manual"), (0, "manual")]
    assert kb.stats()["reviews_total"] == 1
    # Suspending again changes nothing and logs nothing.
    again = kb.change_cards([first], "suspend")
    assert again.changed == [] and again.unchanged == 1 and len(manual_rows(kb)) == 2
    undone = kb.undo_last_change()
    assert undone.changed == sorted([first, "c1/definition"])
    assert kb.search_cards("is:suspended") == [] and manual_rows(kb) == []
    assert first in ids(kb.due_queue())


def test_unsuspend_frees_a_leech_too(kb):
    kb.answer("c0/b", 4)
    db_execute(kb, "UPDATE card_state SET suspended = TRUE, leech = TRUE")  # as the leech action leaves it
    assert ids(kb.search_cards("is:suspended is:leech")) == ["c0/b"]
    assert kb.change_cards(["c0/b"], "unsuspend").changed == ["c0/b"]
    assert ids(kb.search_cards("is:suspended")) == [] and ids(kb.search_cards("is:leech")) == ["c0/b"]


def test_bury_holds_a_card_until_the_next_study_day(kb):
    kb.change_cards(["c0/definition"], "bury")
    assert ids(kb.search_cards("is:buried")) == ["c0/definition"]
    queue = ids(kb.due_queue())
    assert "c0/definition" not in queue and queue[0] == "c0/reverse"  # the next card of c0 stands in
    kb.test_clock.advance(hours=20)  # 06:00 the next morning, after the 04:00 rollover
    assert kb.search_cards("is:buried") == []
    assert ids(kb.due_queue())[0] == "c0/definition"
    assert kb.change_cards(["c0/definition"], "unbury").unchanged == 1  # nothing to unbury any more


def test_flags_are_searched_and_cleared(kb):
    assert kb.change_cards(["c2/t"], "flag", 1).changed == ["c2/t"]
    kb.change_cards(["c3/t"], "flag", "7")
    assert ids(kb.search_cards("flag:1")) == ["c2/t"]
    assert ids(kb.search_cards("is:flagged")) == ["c2/t", "c3/t"]
    assert kb.card_view("c3/t").marks == "purple flag"
    kb.change_cards(["c2/t", "c3/t"], "flag", 0)
    assert kb.search_cards("is:flagged") == []
    with pytest.raises(KbError, match="a flag is a number from 0"):
        kb.change_cards(["c2/t"], "flag", 8)


def test_reset_makes_a_card_new_and_the_optimizer_forgets_its_old_answers(kb):
    from kb.store.reviews import review_history

    kb.answer("c0/b", 3)
    kb.test_clock.advance(days=3)
    kb.answer("c0/b", 3)
    assert kb.card_view("c0/b").state != "new"
    kb.change_cards(["c0/b"], "reset")
    view = kb.card_view("c0/b")
    assert view.state == "new" and view.reviews == 2  # the answers stay in the log
    assert [row.what for row in kb.card_history("c0/b")] == ["Good", "Good", "reset"]
    assert [card for card, *_ in review_history(kb.engine)] == []
    kb.answer("c0/b", 3)  # a new card again: counts as today's new card
    assert [card for card, *_ in review_history(kb.engine)] == ["c0/b"]
    # The reset is taken back only while it is the card's newest row.
    assert kb.undo_last_change().unchanged == 1
    assert kb.card_view("c0/b").reviews == 3


def test_due_date_moves_scheduled_cards_and_leaves_new_ones(kb):
    kb.answer("c0/b", 4)
    report = kb.change_cards(["c0/b", "c1/b"], "due", "2026-03-20")
    assert report.changed == ["c0/b"] and report.unchanged == 1
    assert "new cards have no schedule" in report.line()
    assert kb.card_view("c0/b").due_day == date(2026, 3, 20)
    kb.test_clock.now = datetime(2026, 3, 20, 13, 0, tzinfo=timezone.utc)
    assert "c0/b" in ids(kb.due_queue())
    with pytest.raises(KbError, match="YYYY-MM-DD"):
        kb.change_cards(["c0/b"], "due", "soon")


def test_an_answer_after_a_change_is_the_newest_row_so_the_change_stays(kb):
    kb.change_cards(["c0/b"], "flag", 2)
    outcome = kb.answer("c0/b", 3)
    report = kb.undo_last_change()
    assert report.changed == [] and report.unchanged == 1 and "answered or changed since" in report.line()
    assert kb.card_view("c0/b").flag == 2
    assert kb.undo(outcome.review_id) == "c0/b"


def test_custom_study_answers_are_real_reviews_outside_the_daily_limits(tmp_path, deck):
    for i in range(6):
        write_concept(deck, f"c{i}", extra=CARDS)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock, new_per_day=2) as kb:
        kb.sync()
        session = QuizSession(kb, search="concept:c5")
        studied = []
        while (item := session.next()) is not None and len(studied) < 20:
            if item.card.card_id not in studied:
                studied.append(item.card.card_id)
            session.answer(4)
        # Every card of it, new ones too, past the limit of two new cards a day.
        assert set(studied) == {f"c5/{k}" for k in ("definition", "reverse", "b", "t", "c")}
        # The daily quiz still offers its two new cards (c5 is buried: it was studied today).
        daily = kb.due_queue()
        assert [e.state for e in daily if e.concept_id != "c5"] == ["new", "new"]
        assert all(kb.card_view(card).state != "new" for card in studied)
        kinds = {kind for (kind,) in db_execute(kb, "SELECT kind FROM review_log")}
        assert kinds == {"custom"}
        assert ids(kb.search_cards("rated:1")) == sorted(set(studied), key=studied.index)


def test_preview_stores_nothing_and_undo_shows_the_card_again(kb):
    session = QuizSession(kb, search="concept:c0", preview=True)
    first = session.next().card.card_id
    outcome = session.answer(1)
    assert outcome.previewed and kb.stats()["reviews_total"] == 0
    second = session.next().card.card_id
    assert second != first
    assert session.undo() == first
    assert session.next().card.card_id == first
    assert kb.card_view(first).state == "new"
    with pytest.raises(ValueError):
        QuizSession(kb, preview=True)


def days_until_each_card(tmp_path, deck, *, days: int, **settings) -> dict[str, int]:
    """Answer every card Good each day; the day each card is first shown."""
    for i in range(12):
        write_concept(deck, f"c{i:02d}", extra=CARDS)
    clock = Clock(START)
    first_seen: dict[str, int] = {}
    with make_kb(tmp_path, deck, clock, new_per_day=6, **settings) as kb:
        kb.sync()
        for day in range(days):
            for _ in range(200):
                item = kb.next_quiz_item()
                if item is None:
                    break
                first_seen.setdefault(item.card.card_id, day)
                kb.answer(item.card.card_id, 3)
                clock.advance(minutes=11)  # past the learning steps
            clock.now = START + timedelta(days=day + 1)
    return first_seen


def test_definition_first_shows_a_concepts_recall_cards_within_days(tmp_path, deck):
    first_seen = days_until_each_card(tmp_path, deck, days=8)
    # Day 1: the definition of six concepts, nothing else.
    assert sorted(card for card, day in first_seen.items() if day == 0) == [f"c{i:02d}/definition" for i in range(6)]
    # The typed card (a recall card) of a concept comes within three days of its definition...
    for i in range(9):
        assert first_seen[f"c{i:02d}/t"] - first_seen[f"c{i:02d}/definition"] <= 3, first_seen
    # ... while new concepts keep coming: half of each later day's new cards start a concept.
    assert sum(card.endswith("/definition") for card, day in first_seen.items() if day == 1) == 3


def test_concept_order_goes_through_each_concept_in_the_decks_order(tmp_path, deck):
    first_seen = days_until_each_card(tmp_path, deck, days=3, new_card_order="concept")
    assert sorted(card for card, day in first_seen.items() if day == 0) == [f"c{i:02d}/definition" for i in range(6)]
    # Day 2: the same six concepts' next cards in the deck's order (the reverse card), no new concept.
    assert sorted(card for card, day in first_seen.items() if day == 1) == [f"c{i:02d}/reverse" for i in range(6)]


def test_kind_order_and_no_burying_bring_siblings_the_same_day(tmp_path, deck):
    for i in range(3):
        write_concept(deck, f"c{i}", extra=CARDS)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock, new_card_order="kind", bury_new_siblings=False) as kb:
        kb.sync()
        queue = ids(kb.due_queue())
        assert queue[:6] == [
            "c0/definition",
            "c1/definition",
            "c2/definition",
            "c0/reverse",
            "c1/reverse",
            "c2/reverse",
        ]
        assert len(queue) == 15  # every card of the three concepts on day 1
    with make_kb(tmp_path, deck, clock, new_card_order="random", bury_new_siblings=False) as kb:
        shuffled = ids(kb.due_queue())
        assert sorted(shuffled) == sorted(ids(kb.search_cards(""))) and shuffled != sorted(shuffled)
        assert ids(kb.due_queue()) == shuffled  # a fixed order, not a new one each time
