"""Cards: find them with the search language (kb.cardsearch), and see what the scheduler thinks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from kb.errors import KbError
from kb.service.base import ServiceBase

if TYPE_CHECKING:
    from kb.cardsearch import Query, SearchableCard
    from kb.scheduler import SchedulerConfig
    from kb.store.reviews import CardRecord, CardSnapshot

# Anki's flag colours, by number.
FLAGS = ("", "red", "orange", "green", "blue", "pink", "turquoise", "purple")

# What `kb cards QUERY --ACTION` and the card browser can do to cards.
CARD_ACTIONS = ("suspend", "unsuspend", "bury", "unbury", "flag", "reset", "due")


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
    buried: bool = False
    flag: int = 0
    due_day: date | None = None  # the study day `due` falls in

    @property
    def marks(self) -> str:
        """The card's flags as words: "suspended, leech, buried, red flag"."""
        words = [
            name for name, on in (("suspended", self.suspended), ("leech", self.leech), ("buried", self.buried)) if on
        ]
        if self.flag:
            words.append(f"{FLAGS[self.flag]} flag")
        return ", ".join(words)

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
            "buried": self.buried,
            "flag": self.flag,
        }


@dataclass(frozen=True)
class ChangeReport:
    """What a change by hand did: the cards changed, and how many were left as they were."""

    action: str
    changed: list[str]
    unchanged: int
    note: str = ""  # why some were left (a due date cannot be given to a new card)

    def line(self) -> str:
        if self.action.startswith("undo "):
            text = f"took back the last change ({self.action[5:]}) of {len(self.changed)} card(s)"
            return text + (f"; {self.unchanged} kept it ({self.note})" if self.unchanged else "")
        verb = {
            "suspend": "suspended",
            "unsuspend": "unsuspended",
            "bury": "buried until tomorrow",
            "unbury": "unburied",
            "flag": "flagged",
            "reset": "reset to new",
            "due": "given the due date",
        }.get(self.action, self.action)
        text = f"{len(self.changed)} card(s) {verb}"
        if self.unchanged:
            text += f"; {self.unchanged} left as they were" + (f" ({self.note})" if self.note else "")
        return text


@dataclass(frozen=True)
class HistoryRow:
    """One row of a card's history, as the browser shows it."""

    day: date  # the study day
    what: str  # Again | Hard | Good | Easy | a change by hand ("suspend", "reset", ...)
    custom: bool  # answered in custom study
    interval_days: int | None  # the interval the row gave (answers of review cards)
    stability: float | None  # stability after it


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
        return [card for page in self.search_card_pages(query) for card in page]

    def search_card_pages(
        self, query: str, *, page_size: int = 2000, first_page: int | None = None
    ) -> Iterator[list[CardView]]:
        """The matches of `query` page by page: each page is what one read of `page_size` cards
        found (the first read takes `first_page` cards, so a list can show its first screen soon).
        The query is parsed first: a bad one raises QueryError before any page."""
        from kb.cardsearch import parse
        from kb.store.reviews import card_records

        parsed = parse(query)
        context = self._search_context()
        after: tuple[str, int] | None = None
        size = first_page or page_size
        while True:
            records = card_records(self.engine, after=after, limit=size)
            yield self._matching(records, parsed, context)
            if len(records) < size:
                return
            after = (records[-1].order_key, records[-1].card_pk)
            size = page_size

    def card_view(self, card_id: str) -> CardView | None:
        """One active card as the list shows it (None: no such card, or retired)."""
        from kb.store.reviews import card_records

        records = card_records(self.engine, card_id=card_id)
        if not records:
            return None
        return self._searchable(records[0], self._search_context(), {})[1]

    def _search_context(self) -> _Context:
        now = self.clock()
        return _Context(
            now,
            self.scheduler_config(),
            *self.study_day_bounds(now)[::2],
            {str(d.path): d.name for d in self.settings.decks()},
        )

    def _matching(self, records: list[CardRecord], parsed: Query, context: _Context) -> list[CardView]:
        concepts: dict[str, tuple[dict, str]] = {}
        out = []
        for record in records:
            card, view = self._searchable(record, context, concepts)
            if parsed.matches(card):
                out.append(view)
        return out

    # --- changes by hand ---------------------------------------------------------------------

    def change_cards(self, card_ids: list[str], action: str, value: str | int | None = None) -> ChangeReport:
        """Change the cards `card_ids` by hand, all in one transaction, each change a "manual" row of
        the review log (so `undo_last_change` and the card's history see it).

        suspend / unsuspend (also a leech's suspension) / bury (until the next study day) / unbury /
        flag (value 0-7, 0 clears) / reset (new again; its answers stay in the log) / due (value: a
        date, YYYY-MM-DD; the card becomes due at the start of that study day; new cards have no
        schedule to move and are left).
        """
        from kb.store.reviews import change_cards

        now = self.clock()
        change, note = self._change_of(action, value, now)
        changed: list[str] = []

        def decide(card: CardSnapshot) -> CardSnapshot | None:
            after = change(card)
            if after is not None and after != card:
                changed.append(card.card_id)
            return after

        change_cards(self.engine, list(card_ids), action=action, now=now, change=decide)
        unchanged = len(card_ids) - len(changed)
        return ChangeReport(action, changed, unchanged, note if unchanged else "")

    def _change_of(
        self, action: str, value: str | int | None, now: datetime
    ) -> tuple[Callable[[CardSnapshot], CardSnapshot | None], str]:
        """(what `action` does to one card, why a card may be left as it is)."""

        def marks(card: CardSnapshot, **changes: Any) -> CardSnapshot:
            return replace(card, marks=replace(card.marks, **changes))

        if action == "suspend":
            return (lambda c: None if c.marks.suspended or c.leech_suspended else marks(c, suspended=True)), ""
        if action == "unsuspend":
            return (
                lambda c: (
                    None
                    if not (c.marks.suspended or c.leech_suspended)
                    else replace(marks(c, suspended=False), leech_suspended=False)
                )
            ), ""
        if action == "bury":
            _, _, day_end = self.study_day_bounds(now)
            return (
                lambda c: (
                    None if c.marks.buried_until and c.marks.buried_until >= day_end else marks(c, buried_until=day_end)
                )
            ), ""
        if action == "unbury":
            return (
                lambda c: (
                    None if c.marks.buried_until is None or c.marks.buried_until <= now else marks(c, buried_until=None)
                )
            ), ""
        if action == "flag":
            flag = _flag_number(value)
            return (lambda c: None if c.marks.flag == flag else marks(c, flag=flag)), ""
        if action == "reset":
            return (
                lambda c: (
                    None
                    if c.state is None and not c.leech
                    else replace(c, state=None, leech_suspended=False, leech=False)
                )
            ), ""
        if action == "due":
            start = self._day_start(_due_date(value))

            def move(c: CardSnapshot) -> CardSnapshot | None:
                if c.state is None:
                    return None
                return replace(c, state={**c.state, "due": start.isoformat()})

            return move, "new cards have no schedule to move"
        raise KbError(f"no card action {action!r}; the actions: {', '.join(CARD_ACTIONS)}")

    def _day_start(self, day: date) -> datetime:
        from kb.studyday import day_start

        return day_start(day, tz=self.zone(), rollover_hour=self.settings.rollover_hour)

    def undo_last_change(self) -> ChangeReport:
        """Take back the newest change by hand, every card it changed; KbError when there is none."""
        from kb.store.reviews import undo_last_change

        try:
            action, cards, not_undone = undo_last_change(self.engine)
        except LookupError as exc:
            raise KbError(str(exc)) from None
        return ChangeReport(f"undo {action}", cards, not_undone, "answered or changed since" if not_undone else "")

    def card_history(self, card_id: str) -> list[HistoryRow]:
        """Every answer and change by hand of one card, oldest first."""
        from kb.scheduler import RATINGS, CardState, rating_name, study_days_between
        from kb.store.reviews import card_history

        config = self.scheduler_config()
        out = []
        for entry in card_history(self.engine, card_id):
            state = CardState.from_dict(entry.state_after) if entry.state_after else None
            interval = (
                study_days_between(state.last_review, state.due, config)
                if state is not None and state.state == "review" and state.last_review is not None
                else None
            )
            what = rating_name(entry.rating) if entry.rating in RATINGS else (entry.action or "change")
            out.append(
                HistoryRow(
                    self.study_day(entry.at),
                    what,
                    entry.kind == "custom",
                    interval,
                    None if state is None else state.stability,
                )
            )
        return out

    def _searchable(
        self, record: CardRecord, context: _Context, concepts: dict[str, tuple[dict, str]]
    ) -> tuple[SearchableCard, CardView]:
        from kb.cardsearch import SearchableCard
        from kb.scheduler import CardState, retrievability, study_days_between

        now, config, today, day_end = context.now, context.config, context.today, context.day_end
        if record.concept_id not in concepts:  # a concept's cards come together: parse it once
            concepts.clear()
            concept = json.loads(record.concept_json)
            title, summary = concept.get("title") or {}, concept.get("summary") or {}
            concept_text = "\n".join(
                str(part)
                for part in (
                    title.get("en", ""),
                    title.get("zh", ""),
                    summary.get("en", ""),
                    summary.get("zh", ""),
                    concept.get("definition", ""),
                    concept.get("definition_zh") or "",
                    " ".join(concept.get("aliases") or ()),
                )
            )
            concepts[record.concept_id] = (concept, concept_text)
        concept, concept_text = concepts[record.concept_id]
        state = CardState.from_dict(json.loads(record.state_json)) if record.state_json else None
        r = retrievability(state, now, config=config) if state is not None and state.stability else None
        interval = (
            study_days_between(state.last_review, state.due, config)
            if state is not None and state.state == "review" and state.last_review
            else None
        )
        due_day = None if state is None else self.study_day(state.due)
        until_due = None if due_day is None else (due_day - today).days
        text = f"{record.card_id}\n{concept_text}\n{record.payload_json}"
        buried = record.marks.buried_until is not None and record.marks.buried_until > now
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
            buried=buried,
            flag=record.marks.flag,
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
            buried,
            record.marks.flag,
            due_day,
        )
        return searchable, view


def _flag_number(value: str | int | None) -> int:
    text = str(value).strip() if value is not None else ""
    if not text.isdigit() or int(text) > 7:
        raise KbError(
            f"--flag: a flag is a number from 0 (none) to 7 ({', '.join(f'{i} {n}' for i, n in enumerate(FLAGS) if i)}), got {value!r}"
        )
    return int(text)


def _due_date(value: str | int | None) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise KbError(f"--due: a date is YYYY-MM-DD, got {value!r}") from None
