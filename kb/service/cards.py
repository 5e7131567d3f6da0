"""Cards: find them with the search language (kb.cardsearch), and see what the scheduler thinks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from kb.service.base import ServiceBase

if TYPE_CHECKING:
    from kb.cardsearch import SearchableCard
    from kb.scheduler import SchedulerConfig
    from kb.store.reviews import CardRecord


@dataclass(frozen=True)
class CardView:
    """One card as `kb cards` lists it."""

    card_id: str
    concept_id: str
    kind: str
    state: str  # new | learning | review | relearning
    due: datetime | None
    stability: float | None
    difficulty: float | None
    retrievability: float | None
    lapses: int
    reviews: int
    suspended: bool
    leech: bool

    def to_dict(self) -> dict[str, Any]:
        def rounded(x: float | None, digits: int) -> float | None:
            return None if x is None else round(x, digits)

        return {
            "card_id": self.card_id,
            "concept_id": self.concept_id,
            "kind": self.kind,
            "state": self.state,
            "due": None if self.due is None else self.due.isoformat(),
            "stability": rounded(self.stability, 3),
            "difficulty": rounded(self.difficulty, 3),
            "retrievability": rounded(self.retrievability, 4),
            "lapses": self.lapses,
            "reviews": self.reviews,
            "suspended": self.suspended,
            "leech": self.leech,
        }


@dataclass(frozen=True)
class _Context:
    """What every card of one search is compared with: the moment, the schedule, today's bounds."""

    now: datetime
    config: SchedulerConfig
    today: date
    day_end: datetime
    deck_names: dict[str, str]


class CardsUseCases(ServiceBase):
    """The card list and its search."""

    def search_cards(self, query: str) -> list[CardView]:
        """The active cards matching `query` (the search language; QueryError for bad input), in
        the order new cards are introduced."""
        from kb.cardsearch import parse
        from kb.store.reviews import card_records

        parsed = parse(query)  # first: a bad query is reported without touching the database
        now = self.clock()
        context = _Context(
            now,
            self.scheduler_config(),
            *self.study_day_bounds(now)[::2],
            {str(d.path): d.name for d in self.settings.decks()},
        )
        out = []
        for record in card_records(self.engine):
            card, view = self._searchable(record, context)
            if parsed.matches(card):
                out.append(view)
        return out

    def _searchable(self, record: CardRecord, context: _Context) -> tuple[SearchableCard, CardView]:
        from kb.cardsearch import SearchableCard
        from kb.scheduler import CardState, retrievability, study_days_between

        now, config, today, day_end = context.now, context.config, context.today, context.day_end
        concept = json.loads(record.concept_json)
        state = CardState.from_dict(json.loads(record.state_json)) if record.state_json else None
        r = retrievability(state, now, config=config) if state is not None and state.stability else None
        interval = (
            study_days_between(state.last_review, state.due, config)
            if state is not None and state.state == "review" and state.last_review
            else None
        )
        until_due = None if state is None else (self.study_day(state.due) - today).days
        title, summary = concept.get("title") or {}, concept.get("summary") or {}
        text = "\n".join(
            str(part)
            for part in (
                record.card_id,
                title.get("en", ""),
                title.get("zh", ""),
                summary.get("en", ""),
                summary.get("zh", ""),
                concept.get("definition", ""),
                concept.get("definition_zh") or "",
                " ".join(concept.get("aliases") or ()),
                record.payload_json,
            )
        )
        ratings = tuple(((today - self.study_day(at)).days, rating) for at, rating in record.ratings)
        deck = context.deck_names.get(record.deck_path, record.deck_path)
        searchable = SearchableCard(
            card_id=record.card_id,
            concept_id=record.concept_id,
            category=record.category,
            deck=deck,
            kind=record.kind,
            state="new" if state is None else state.state,
            tags=tuple(concept.get("tags") or ()),
            text=text,
            due_now=state is not None and state.due < day_end,
            suspended=record.suspended,
            leech=record.leech,
            retrievability=r,
            stability=None if state is None else state.stability,
            difficulty=None if state is None else state.difficulty,
            interval_days=interval,
            days_until_due=until_due,
            lapses=0 if state is None else state.lapses,
            reps=0 if state is None else state.reps,
            ratings_by_days_ago=ratings,
        )
        view = CardView(
            record.card_id,
            record.concept_id,
            record.kind,
            searchable.state,
            None if state is None else state.due,
            searchable.stability,
            searchable.difficulty,
            r,
            searchable.lapses,
            len(record.ratings),
            record.suspended,
            record.leech,
        )
        return searchable, view
