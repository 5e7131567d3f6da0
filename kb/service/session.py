"""One quiz session, the same for `kb quiz --plain` and the TUI's quiz screen.

A session shows today's cards one at a time: `next()` loads the next card that can be shown,
`reveal()` grades a typed or chosen answer (an auto-graded card proposes a rating), `answer()`
stores a rating, `undo()` takes back this session's newest answer (never an answer of another
session or day, as in Anki), and `summary()` says what was done. The queue is built once per card.
A front end only draws what the session holds and passes the user's keys on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from kb.scheduler import RATINGS, rating_name

if TYPE_CHECKING:
    from kb.quiz import Grade
    from kb.service import KnowledgeBase
    from kb.service.study import AnswerOutcome, QuizItem


@dataclass(frozen=True)
class SessionSummary:
    answered: int
    recalled: int
    minutes: float
    due_today: int
    forecast_7d: list[int]
    waiting_line: str | None  # why cards still wait (computed cards without a passing run), if any


class QuizSession:
    """The state of one quiz: the card shown, its grade, counts, and this session's answers."""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        limit: int | None = None,
        search: str | None = None,
        preview: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if preview and search is None:
            raise ValueError("preview is a way to go through a custom study session: give a search")
        self.kb = kb
        self.limit = limit
        # Custom study: the cards this search selects, instead of today's queue. Its answers are
        # real reviews that take no place in today's limits; with `preview`, nothing is stored.
        self.search = search
        self.preview = preview
        self._done: set[str] = set()
        self.monotonic = monotonic
        self.current: QuizItem | None = None
        self.grade: Grade | None = None
        self.revealed = False
        self.remaining = 0  # cards in today's queue when the current one was loaded, it included
        self.answered = 0
        self.recalled = 0
        # this session's answers, newest last: all that undo may take back (card id, review id; a
        # previewed card has no review)
        self._answers: list[tuple[str, int | None]] = []
        self._started = monotonic()
        self._shown_at = self._started

    @property
    def limit_reached(self) -> bool:
        return self.limit is not None and self.answered >= self.limit

    @property
    def can_undo(self) -> bool:
        return bool(self._answers)

    @property
    def proposed_rating(self) -> int | None:
        return self.grade.proposed_rating if self.grade is not None else None

    def next(self) -> QuizItem | None:
        """Load the next card to show (None: nothing more now, or the limit is reached)."""
        self.grade, self.revealed = None, False
        if self.limit_reached:
            self.current, self.remaining = None, 0
            return None
        if self.search is not None:
            self.current, self.remaining = self.kb.first_in_search(self.search, done=self._done)
        else:
            self.current, self.remaining = self.kb.first_showable()
        self._shown_at = self.monotonic()
        return self.current

    def reveal(self, response: str | None = None) -> Grade | None:
        """Show the answer; for an auto-graded card given a `response`, grade it."""
        if self.current is None:
            raise RuntimeError("no card is shown")
        card = self.current.card
        self.revealed = True
        self.grade = self.kb.grade(card, response) if response is not None and card.auto_graded else None
        return self.grade

    def answer(self, rating: int) -> AnswerOutcome:
        """Store `rating` for the card shown (AnsweredElsewhere if another session answered it first;
        the card is let go either way, so the caller loads the next)."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be 1-4, got {rating!r}")
        item, self.current = self.current, None
        if item is None:
            raise RuntimeError("no card is shown")
        duration_ms = int((self.monotonic() - self._shown_at) * 1000)
        card_id = item.card.card_id
        if self.preview:
            from kb.service.study import AnswerOutcome

            outcome = AnswerOutcome(0, card_id, rating, self.kb.clock(), item.intervals[rating], False, previewed=True)
            self._answers.append((card_id, None))
        else:
            outcome = self.kb.answer(
                card_id,
                rating,
                duration_ms=duration_ms,
                shown_state=item.shown_state,
                custom=self.search is not None,
            )
            self._answers.append((card_id, outcome.review_id))
        self._done.add(card_id)
        self.answered += 1
        self.recalled += rating > 1
        return outcome

    def undo(self) -> str | None:
        """Take back this session's newest answer; returns its card id (None: nothing to undo)."""
        if not self._answers:
            return None
        shown, review_id = self._answers.pop()
        card_id = shown if review_id is None else self.kb.undo(review_id)
        self._done.discard(shown)
        if card_id is not None:
            self.answered = max(0, self.answered - 1)
        return card_id

    def buttons(
        self,
        separator: str = " | ",
        *,
        lowercase: bool = False,
        template: str = "{r} {name} {interval}",
        translate: Callable[[str], str] = str,
    ) -> str:
        """The four ratings with the interval each gives: "1 Again 1m | 2 Hard 6m | ..." (`translate`
        turns a rating's name into the front end's language)."""
        if self.current is None:
            return ""
        intervals = self.current.intervals
        return separator.join(
            template.format(r=r, name=translate(RATINGS[r] if lowercase else rating_name(r)), interval=intervals[r])
            for r in RATINGS
        )

    def summary(self) -> SessionSummary:
        stats = self.kb.stats()
        return SessionSummary(
            self.answered,
            self.recalled,
            (self.monotonic() - self._started) / 60,
            stats["due_today"],
            stats["forecast_7d"],
            self.kb.due_overview().waiting_line(),
        )
