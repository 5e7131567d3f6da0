"""The daily quiz: the queue, a card ready to show, answers and undo."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from kb.errors import KbError
from kb.service.base import ServiceBase

if TYPE_CHECKING:
    import random

    from kb.quiz import Grade, QuizCard
    from kb.scheduler import CardState
    from kb.store.reviews import StoredCard


@dataclass(frozen=True)
class QuizItem:
    """A card ready to show, with the interval each rating 1-4 would give (as Anki shows)."""

    card: QuizCard
    state: str  # new | learning | relearning | review
    intervals: dict
    shown_state: dict | None = None  # the stored state when shown: pass it to answer() (None: new)


@dataclass(frozen=True)
class DueOverview:
    """Today's due cards: how many can be shown, and the concepts whose cards wait for a run."""

    showable: int
    waiting_for_a_run: list[str]

    def waiting_line(self) -> str | None:
        if not self.waiting_for_a_run:
            return None
        names = ", ".join(self.waiting_for_a_run[:5]) + (" …" if len(self.waiting_for_a_run) > 5 else "")
        return (
            f"{len(self.waiting_for_a_run)} concept(s) have computed cards waiting for their snippet to give a "
            f"value ({names}): `kb verify`, or r on the concept"
        )


class AnsweredElsewhere(KbError):
    """The card was answered by another session (a second terminal, another kb) after it was shown
    here: this answer is not recorded, and the session goes on with the next card."""

    def __init__(self, card_id: str) -> None:
        super().__init__(
            f"{card_id} was answered in another session after it was shown here; this answer was not recorded"
        )
        self.card_id = card_id


@dataclass(frozen=True)
class AnswerOutcome:
    review_id: int
    card_id: str
    rating: int
    due: datetime
    interval: str
    leech: bool  # this answer made the card a leech
    suspended: bool = False  # ... and it was suspended for it (the leech action "suspend")
    previewed: bool = False  # a preview: shown and rated, not stored, the card not rescheduled

    @property
    def leech_message(self) -> str:
        if not self.leech:
            return ""
        return (
            "leech: suspended after repeated lapses"
            if self.suspended
            else "leech: marked after repeated lapses; it stays in the quiz"
        )


@dataclass(frozen=True)
class DueCard:
    """One card of today's queue."""

    card_id: str
    concept_id: str
    kind: str
    state: str  # new | learning | relearning | review
    due: datetime | None  # None for a new card


class StudyUseCases(ServiceBase):
    """Today's queue, cards to show, answers."""

    def due_queue(self, now: datetime | None = None) -> list[DueCard]:
        """Today's queue of cards (learning, then due reviews, then new), within the daily limits."""
        from kb.store.reviews import build_queue

        now = now or self.clock()
        _, start, end = self.study_day_bounds(now)
        entries = build_queue(
            self.engine,
            now=now,
            day_start=start,
            day_end=end,
            new_limit=self.settings.new_per_day,
            review_limit=self.settings.reviews_per_day,
            new_order=self.settings.new_card_order,
            bury_new=self.settings.bury_new_siblings,
            bury_reviews=self.settings.bury_review_siblings,
        )
        return [DueCard(e.card_id, e.concept_id, e.kind, e.state, e.due) for e in entries]

    def due_overview(self) -> DueOverview:
        """What today's queue holds that can be shown now, and what waits (a computed card whose
        snippet has not yet produced its value): the header and the quiz's end say the same."""
        waiting: list[str] = []
        showable = 0
        for entry in self.due_queue():
            if entry.kind in ("computed", "choice") and self.quiz_item(entry.card_id) is None:
                waiting.append(entry.concept_id)
            else:
                showable += 1
        return DueOverview(showable, sorted(set(waiting)))

    def quiz_item(self, card_id: str, *, rng: random.Random | None = None) -> QuizItem | None:
        """A card ready to show: prompt, answer, options, and the interval each rating would give."""
        import random

        from kb.quiz import CardUnavailable, present
        from kb.scheduler import format_interval, next_states
        from kb.store.queries import (
            concept_data,
            last_passing_values,
            titles_in_category,
        )
        from kb.store.reviews import get_card

        stored = get_card(self.engine, card_id)
        if stored is None:
            return None
        stored_concept = concept_data(self.engine, stored.concept_id)
        if stored_concept is None:
            return None
        concept = stored_concept["data"]
        now = self.clock()
        if rng is None:  # the same options in the same order all day
            day, _, _ = self.study_day_bounds(now)
            rng = random.Random(f"{card_id}:{day.isoformat()}")
        pool = [
            title for cid, title in titles_in_category(self.engine, concept["category"]) if cid != stored.concept_id
        ]
        try:
            card = present(
                card_id=card_id,
                kind=stored.kind,
                payload=stored.payload,
                concept=concept,
                rng=rng,
                distractor_pool=pool,
                computed_values=last_passing_values(self.engine, stored.concept_id),
                language=self.settings.content_language,
            )
        except CardUnavailable:
            return None
        state = self._card_state(stored)
        states = next_states(state, now, config=self.scheduler_config(), fuzz_seed=stored.card_pk)
        return QuizItem(
            card,
            stored.state["state"] if stored.state else "new",
            {rating: format_interval(now, s.due) for rating, s in states.items()},
            stored.state,
        )

    @staticmethod
    def _card_state(stored: StoredCard) -> CardState | None:
        from kb.scheduler import CardState

        return CardState.from_dict(stored.state) if stored.state else None

    def next_quiz_item(
        self, *, skip: Collection[str] = frozenset(), rng: random.Random | None = None
    ) -> QuizItem | None:
        """The first card of today's queue that can be shown (computed cards need a passing run)."""
        return self.first_showable(skip=skip, rng=rng)[0]

    def first_showable(
        self, *, skip: Collection[str] = frozenset(), rng: random.Random | None = None
    ) -> tuple[QuizItem | None, int]:
        """(the first card of today's queue that can be shown, or None; the queue's length), from one
        build of the queue."""
        queue = self.due_queue()
        for entry in queue:
            if entry.card_id in skip:
                continue
            item = self.quiz_item(entry.card_id, rng=rng)
            if item is not None:
                return item, len(queue)
        return None, len(queue)

    def first_in_search(self, query: str, *, done: Collection[str] = frozenset()) -> tuple[QuizItem | None, int]:
        """Custom study: (the next card of the cards `query` selects, or None; how many are left).

        New cards come too, with no daily limit and no burying of siblings (suspended and buried
        cards stay out, as in Anki's filtered decks); cards in a learning step come back when due
        (within 20 minutes, as in the daily quiz); a card answered in this session (`done`)
        otherwise does not come back.
        """
        from datetime import timedelta

        cards = [c for c in self.search_cards(query) if not (c.suspended or c.buried)]
        now = self.clock()
        ahead = now + timedelta(minutes=20)
        stepping = sorted(
            (c for c in cards if c.state in ("learning", "relearning") and c.due is not None and c.due <= ahead),
            key=lambda c: c.due or ahead,
        )
        due_now = [c for c in stepping if c.due is not None and c.due <= now]
        rest = [c for c in cards if c.card_id not in done and c.state not in ("learning", "relearning")]
        # As in the daily quiz: steps due now, then the others, then steps due within 20 minutes.
        for card in due_now + rest + [c for c in stepping if c not in due_now]:
            item = self.quiz_item(card.card_id)
            if item is not None:
                return item, len(stepping) + len(rest)
        return None, 0

    def grade(self, card: QuizCard, response: str) -> Grade | None:
        from kb.quiz import grade

        return grade(card, response)

    def answer(
        self,
        card_id: str,
        rating: int,
        *,
        duration_ms: int | None = None,
        shown_state: dict | None | object = ...,
        custom: bool = False,
    ) -> "AnswerOutcome":
        """Store an answer and the card's next state in one transaction.

        A `custom` answer (custom study) is a real review, scheduled as any other, that takes no
        place in today's limits. With `shown_state` (QuizItem.shown_state), the answer is refused with AnsweredElsewhere when
        the card's state changed since it was shown: two quizzes at once never answer a card twice.
        """
        from kb.scheduler import CardState, answer, became_leech, format_interval
        from kb.store.reviews import NextState, get_card, record_answer

        if rating not in (1, 2, 3, 4):
            raise ValueError(f"rating must be 1-4, got {rating!r}")
        stored = get_card(self.engine, card_id)
        if stored is None:
            raise KeyError(card_id)
        now = self.clock()
        config = self.scheduler_config()
        decided: list = []

        def decide(before: dict | None) -> NextState:
            if shown_state is not ... and before != shown_state:  # checked inside the write transaction
                raise AnsweredElsewhere(card_id)
            previous = CardState.from_dict(before) if before else None
            state = answer(previous, rating, now, config=config, fuzz_seed=stored.card_pk)
            leech = became_leech(previous, state, config)
            decided.append((state, leech))
            return NextState(
                dict(state.to_dict()),
                state.state,
                state.due,
                state.lapses,
                state.reps,
                leech,
                suspend_leech=self.settings.leech_action == "suspend",
            )

        review_id = record_answer(
            self.engine,
            card_id,
            rating=rating,
            now=now,
            duration_ms=duration_ms,
            decide=decide,
            kind="custom" if custom else "review",
        )
        state, leech = decided[-1]
        return AnswerOutcome(
            review_id,
            card_id,
            rating,
            state.due,
            format_interval(now, state.due),
            leech,
            suspended=leech and self.settings.leech_action == "suspend",
        )

    def undo(self, review_id: int) -> str | None:
        """Take back one answer of the caller's session (its review id, from AnswerOutcome); returns the
        card id, or None when it is no longer its card's newest answer. Answers of other sessions and
        earlier days are never touched: a quiz keeps the ids of its own answers and offers only those."""
        from kb.store.reviews import undo_review

        return undo_review(self.engine, review_id)
