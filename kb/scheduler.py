"""FSRS-6 scheduling of one card, wrapping `fsrs`. Pure: the clock and the fuzz seed are passed in.

Time between reviews is counted in study days, as Anki counts it: the days between the study days
(local days starting at the rollover hour) of the two reviews, whatever the hours. `fsrs` itself
counts whole 24-hour periods, so a card answered a few minutes earlier in the day than last time
would count a day short (a 1-day interval read as a same-day review); `answer` therefore hands fsrs
a last-review time exactly that many days back, and places a review's due time on its study day.

Like Anki's `scheduler/states`, `next_states` gives what each rating would do, and `answer` applies one;
neither touches a database. Fuzz is deterministic: it depends only on the inputs, never on `random`'s
global state (see `_fuzzed_days`).

Classes:
    SchedulerConfig: The scheduler's settings (retention, steps, maximum interval, fuzz, parameters).
    CardState: The scheduling state of one card, with its answer and lapse counts.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import TypedDict

from fsrs import Card, Rating, Scheduler, State
from fsrs.scheduler import DEFAULT_PARAMETERS, FUZZ_RANGES

from kb.studyday import DEFAULT_ROLLOVER_HOUR, day_start, study_day

RATINGS = {1: "again", 2: "hard", 3: "good", 4: "easy"}  # the one vocabulary of ratings, as Anki names them


def rating_name(rating: int) -> str:
    """ "Again", "Hard", "Good" or "Easy" (as a button shows it)."""
    return RATINGS[rating].capitalize()


def parse_rating(word: str) -> int | None:
    """A typed rating ("1"-"4" or a name, any case) as 1-4; None when it is neither."""
    text = word.strip().lower()
    if text in ("1", "2", "3", "4"):
        return int(text)
    return next((rating for rating, name in RATINGS.items() if name == text), None)


STATES = {State.Learning: "learning", State.Review: "review", State.Relearning: "relearning"}
STATE_BY_NAME = {name: state for state, name in STATES.items()}
CARD_ID = 1  # fsrs cards need an id; a fixed one keeps its clock-derived default out
MIN_FUZZ_DAYS = 2.5  # fsrs leaves shorter intervals unfuzzed
SAME_DAY_AT_MOST = timedelta(hours=23, minutes=59)  # a study day can last 25 h around a clock change

SECOND = 1.0
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
MONTH = 365 / 12 * DAY  # Anki's month and year, for `format_interval`
YEAR = 365 * DAY


@dataclass(frozen=True)
class SchedulerConfig:
    """Settings of the FSRS scheduler; `parameters=None` means fsrs's defaults, else optimized ones.

    Attributes:
        desired_retention: Target probability of recall when a card comes due, in (0, 1).
        learning_steps: Intervals of the learning steps of a new card.
        relearning_steps: Intervals of the relearning steps after a lapse.
        maximum_interval_days: Longest interval of a review card, in days.
        enable_fuzzing: Whether review intervals get fsrs's small, here deterministic, fuzz.
        parameters: The 21 FSRS-6 weights, or None for `fsrs.scheduler.DEFAULT_PARAMETERS`.
        leech_lapses: Lapses from which a card counts as a leech (Anki's threshold is 8).
        zone: The time zone of study days.
        rollover_hour: The local hour a study day starts.
    """

    desired_retention: float = 0.9
    learning_steps: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=10))
    relearning_steps: tuple[timedelta, ...] = (timedelta(minutes=10),)
    maximum_interval_days: int = 36500
    enable_fuzzing: bool = True
    parameters: tuple[float, ...] | None = None
    leech_lapses: int = 8
    zone: tzinfo = timezone.utc
    rollover_hour: int = DEFAULT_ROLLOVER_HOUR

    def __post_init__(self) -> None:
        if not 0 < self.desired_retention < 1:
            raise ValueError(f"desired_retention must be in (0, 1), got {self.desired_retention}")
        if self.maximum_interval_days < 1:
            raise ValueError(f"maximum_interval_days must be >= 1, got {self.maximum_interval_days}")
        if self.leech_lapses < 1:
            raise ValueError(f"leech_lapses must be >= 1, got {self.leech_lapses}")
        if any(step <= timedelta(0) for step in tuple(self.learning_steps) + tuple(self.relearning_steps)):
            raise ValueError("learning and relearning steps must be positive")
        if (
            isinstance(self.rollover_hour, bool)
            or not isinstance(self.rollover_hour, int)
            or not 0 <= self.rollover_hour <= 23
        ):
            raise ValueError(f"rollover_hour must be an integer in 0..23, got {self.rollover_hour!r}")
        object.__setattr__(self, "learning_steps", tuple(self.learning_steps))
        object.__setattr__(self, "relearning_steps", tuple(self.relearning_steps))
        if self.parameters is not None:
            object.__setattr__(self, "parameters", tuple(float(w) for w in self.parameters))


class CardStateDict(TypedDict):
    """JSON-able form of a `CardState` (datetimes as ISO 8601 strings)."""

    state: str
    step: int | None
    stability: float | None
    difficulty: float | None
    due: str
    last_review: str | None
    reps: int
    lapses: int


@dataclass(frozen=True)
class CardState:
    """Scheduling state of one card; `None` in its place means a new card that was never answered.

    Attributes:
        state: "learning", "review" or "relearning".
        step: The (re)learning step, or None in review.
        stability: FSRS stability in days (None only before the first answer).
        difficulty: FSRS difficulty in [1, 10] (None only before the first answer).
        due: When the card is next due, UTC-aware.
        last_review: When it was last answered, UTC-aware, or None.
        reps: Answers so far.
        lapses: Times a review card was forgotten (rated 1 in state "review").
    """

    state: str
    step: int | None
    stability: float | None
    difficulty: float | None
    due: datetime
    last_review: datetime | None
    reps: int = 0
    lapses: int = 0

    def __post_init__(self) -> None:
        if self.state not in STATE_BY_NAME:
            raise ValueError(f"state must be one of {sorted(STATE_BY_NAME)}, got {self.state!r}")
        if self.state != "learning" and (self.stability is None or self.difficulty is None):
            raise ValueError(f"a {self.state} card needs stability and difficulty")
        if (self.step is None) != (self.state == "review") or (self.step is not None and self.step < 0):
            raise ValueError(f"a {self.state} card needs {'no step' if self.state == 'review' else 'a step >= 0'}")
        if self.reps < 0 or self.lapses < 0:
            raise ValueError("reps and lapses must be >= 0")
        object.__setattr__(self, "due", _utc(self.due, name="due"))
        if self.last_review is not None:
            object.__setattr__(self, "last_review", _utc(self.last_review, name="last_review"))

    def to_dict(self) -> CardStateDict:
        """A JSON-able dict with ISO datetimes; `from_dict` gives back an equal state."""
        return {
            "state": self.state,
            "step": self.step,
            "stability": self.stability,
            "difficulty": self.difficulty,
            "due": self.due.isoformat(),
            "last_review": self.last_review.isoformat() if self.last_review is not None else None,
            "reps": self.reps,
            "lapses": self.lapses,
        }

    @classmethod
    def from_dict(cls, data: CardStateDict | dict) -> CardState:
        """The state that `to_dict` wrote; `reps` and `lapses` default to 0 when absent."""
        return cls(
            state=data["state"],
            step=None if data["step"] is None else int(data["step"]),
            stability=None if data["stability"] is None else float(data["stability"]),
            difficulty=None if data["difficulty"] is None else float(data["difficulty"]),
            due=datetime.fromisoformat(data["due"]),
            last_review=None if data["last_review"] is None else datetime.fromisoformat(data["last_review"]),
            reps=int(data.get("reps", 0)),
            lapses=int(data.get("lapses", 0)),
        )


def next_states(
    state: CardState | None, now: datetime, *, config: SchedulerConfig, fuzz_seed: int = 0
) -> dict[int, CardState]:
    """The state each rating 1-4 would give at `now` (for showing each button's interval, as Anki does)."""
    return {rating: answer(state, rating, now, config=config, fuzz_seed=fuzz_seed) for rating in RATINGS}


def answer(
    state: CardState | None, rating: int, now: datetime, *, config: SchedulerConfig, fuzz_seed: int = 0
) -> CardState:
    """The new state after answering `rating` at `now`; equals `next_states(...)[rating]`.

    A `now` before the last review (clock set back) counts as no time elapsed, so due stays >= now.

    Raises:
        ValueError: If `now` is naive or `rating` is not 1-4.
    """
    now = _utc(now, name="now")
    if not isinstance(rating, int) or isinstance(rating, bool) or rating not in RATINGS:
        raise ValueError(f"rating must be one of 1-4, got {rating!r}")
    card = _to_card(state, now, config)
    new_card, _ = _fsrs_scheduler(config).review_card(card, Rating(rating), review_datetime=now)
    due = max(new_card.due, now)
    if new_card.state == State.Review:
        days = max(1, round((new_card.due - now).total_seconds() / DAY))  # fsrs's intervals are whole days
        if config.enable_fuzzing:
            days = _fuzzed_days(days, config=config, seed=(fuzz_seed, 0 if state is None else state.reps, rating))
        due = _on_study_day(now, days, config)
    reps = 0 if state is None else state.reps
    lapses = 0 if state is None else state.lapses
    lapsed = state is not None and state.state == "review" and rating == 1
    return CardState(
        state=STATES[new_card.state],
        step=new_card.step,
        stability=new_card.stability,
        difficulty=new_card.difficulty,
        due=due,
        last_review=now,
        reps=reps + 1,
        lapses=lapses + lapsed,
    )


def study_days_between(earlier: datetime, later: datetime, config: SchedulerConfig) -> int:
    """Study days from `earlier` to `later` (0 on the same study day; never negative)."""
    return max(0, (_day(later, config) - _day(earlier, config)).days)


def is_leech(state: CardState, config: SchedulerConfig) -> bool:
    """Whether the card has lapsed `config.leech_lapses` times or more (Anki's leech)."""
    return state.lapses >= config.leech_lapses


def became_leech(before: CardState | None, after: CardState, config: SchedulerConfig) -> bool:
    """Whether this answer makes the card a leech, as Anki decides it: the lapse that reaches the
    threshold, then every half threshold after (8, 12, 16, ... with the default 8)."""
    lapsed = after.lapses > (before.lapses if before is not None else 0)
    threshold = config.leech_lapses
    return lapsed and after.lapses >= threshold and (after.lapses - threshold) % max(threshold // 2, 1) == 0


def retrievability(state: CardState | None, now: datetime, *, config: SchedulerConfig) -> float:
    """FSRS probability of recall at `now`: 0 for a new card, 1 for a learning card without stability."""
    now = _utc(now, name="now")
    if state is None:
        return 0.0
    if state.stability is None:
        return 1.0
    return float(_fsrs_scheduler(config).get_card_retrievability(_to_card(state, now, config), current_datetime=now))


def format_interval(now: datetime, due: datetime) -> str:
    """Anki-style length of `due - now`: "<1m", "10m", "1h", "3d", "2.1mo", "1.3y" (past due gives "<1m")."""
    seconds = max((due - now).total_seconds(), 0.0)
    if seconds < MINUTE:
        return "<1m"
    if seconds < HOUR:
        return f"{_round_half_up(seconds / MINUTE)}m"
    if seconds < DAY:
        return f"{_round_half_up(seconds / HOUR)}h"
    if seconds < MONTH:
        return f"{_round_half_up(seconds / DAY)}d"
    if seconds < YEAR:
        return f"{_one_decimal(seconds / MONTH)}mo"
    return f"{_one_decimal(seconds / YEAR)}y"


@lru_cache(maxsize=32)
def _fsrs_scheduler(config: SchedulerConfig) -> Scheduler:
    """The fsrs scheduler for `config`, built once; its own (global-random) fuzz is always off."""
    return Scheduler(
        parameters=DEFAULT_PARAMETERS if config.parameters is None else config.parameters,
        desired_retention=config.desired_retention,
        learning_steps=config.learning_steps,
        relearning_steps=config.relearning_steps,
        maximum_interval=config.maximum_interval_days,
        enable_fuzzing=False,
    )


def _fuzzed_days(days: int, *, config: SchedulerConfig, seed: tuple[int, int, int]) -> int:
    """`days` moved to a seeded-random whole day within fsrs's own fuzz range (`FUZZ_RANGES`)."""
    if days < MIN_FUZZ_DAYS:
        return days
    delta = 1.0
    for fuzz_range in FUZZ_RANGES:
        delta += fuzz_range["factor"] * max(min(float(days), fuzz_range["end"]) - fuzz_range["start"], 0.0)
    high = min(round(days + delta), config.maximum_interval_days)
    low = min(max(2, round(days - delta)), high)
    return _seeded_rng(seed).randint(low, high)


def _seeded_rng(seed: tuple[int, ...]) -> random.Random:
    """A private generator seeded from `seed` through blake2b, so it never depends on PYTHONHASHSEED."""
    digest = hashlib.blake2b(":".join(map(str, seed)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _to_card(state: CardState | None, now: datetime, config: SchedulerConfig) -> Card:
    """The fsrs card for `state` at `now`; a new card is due `now`.

    Its last review is moved so that fsrs, which counts whole 24-hour periods, counts the study days
    since it: exactly that many days back, or within the last 24 hours on the same study day. A
    `now` before the last review (a clock set back) counts as no time elapsed.
    """
    if state is None:
        return Card(card_id=CARD_ID, due=now)
    last_review = state.last_review
    if last_review is not None:
        days = study_days_between(last_review, now, config)
        if days:
            last_review = now - timedelta(days=days)
        else:
            last_review = now - min(max(now - last_review, timedelta(0)), SAME_DAY_AT_MOST)
    return Card(
        card_id=CARD_ID,
        state=STATE_BY_NAME[state.state],
        step=state.step,
        stability=state.stability,
        difficulty=state.difficulty,
        due=state.due,
        last_review=last_review,
    )


def _day(moment: datetime, config: SchedulerConfig) -> date:
    return study_day(moment, tz=config.zone, rollover_hour=config.rollover_hour)


def _on_study_day(now: datetime, days: int, config: SchedulerConfig) -> datetime:
    """A due time `days` study days after `now`'s: the same local time of day, or, where a time
    change moves that into another study day, the start of the right one."""
    target = _day(now, config) + timedelta(days=days)
    local = now.astimezone(config.zone)
    wall = local.replace(tzinfo=None) + timedelta(days=days)
    due = wall.replace(tzinfo=config.zone, fold=local.fold).astimezone(timezone.utc)
    if _day(due, config) != target:
        due = day_start(target, tz=config.zone, rollover_hour=config.rollover_hour)
    return max(due, now)


def _utc(moment: datetime, *, name: str) -> datetime:
    """`moment` in UTC (`timezone.utc`, as fsrs requires).

    Raises:
        ValueError: If `moment` is naive.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")
    return moment.astimezone(timezone.utc)


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def _one_decimal(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


__all__ = [
    "RATINGS",
    "parse_rating",
    "rating_name",
    "CardState",
    "SchedulerConfig",
    "answer",
    "became_leech",
    "format_interval",
    "is_leech",
    "next_states",
    "retrievability",
    "study_days_between",
]
