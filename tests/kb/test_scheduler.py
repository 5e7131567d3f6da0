"""kb.scheduler: fsrs wrapped as a pure, deterministic state machine: the same inputs always give the
same schedule, and a clock set wrong never crashes it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from fsrs import Card, Rating, Scheduler
from fsrs.scheduler import DEFAULT_PARAMETERS

from kb.scheduler import (
    RATINGS,
    CardState,
    SchedulerConfig,
    answer,
    became_leech,
    format_interval,
    is_leech,
    next_states,
    retrievability,
    study_days_between,
)

NOW = datetime(2026, 5, 10, 12, 0, tzinfo=timezone.utc)
NO_FUZZ = SchedulerConfig(enable_fuzzing=False)
FUZZ = SchedulerConfig()


def graduate(config: SchedulerConfig = NO_FUZZ, *, now: datetime = NOW, fuzz_seed: int = 0) -> CardState:
    """A new card answered Good twice (1 m then 10 m): a review card."""
    state = answer(None, 3, now, config=config, fuzz_seed=fuzz_seed)
    state = answer(state, 3, state.due, config=config, fuzz_seed=fuzz_seed)
    assert state.state == "review"
    return state


def mature(config: SchedulerConfig = NO_FUZZ, *, good_answers: int = 4, fuzz_seed: int = 0) -> CardState:
    """A review card answered Good on its due date `good_answers` more times: a long interval."""
    state = graduate(config, fuzz_seed=fuzz_seed)
    for _ in range(good_answers):
        state = answer(state, 3, state.due, config=config, fuzz_seed=fuzz_seed)
    return state


def interval(state: CardState) -> timedelta:
    assert state.last_review is not None
    return state.due - state.last_review


# --- new cards and the learning steps --------------------------------------------------------------


def test_new_card_buttons_give_the_learning_steps_fsrs_gives():
    states = next_states(None, NOW, config=NO_FUZZ)
    assert set(states) == set(RATINGS) == {1, 2, 3, 4}
    assert interval(states[1]) == timedelta(minutes=1)
    assert interval(states[2]) == timedelta(minutes=5, seconds=30)  # halfway between the two steps
    assert interval(states[3]) == timedelta(minutes=10)
    assert states[4].state == "review" and interval(states[4]) == timedelta(days=8)
    reference = Scheduler(enable_fuzzing=False)
    for rating, state in states.items():
        card, _ = reference.review_card(Card(card_id=1, due=NOW), Rating(rating), review_datetime=NOW)
        assert (state.due, state.step, state.stability, state.difficulty) == (
            card.due,
            card.step,
            card.stability,
            card.difficulty,
        )
        assert state.last_review == NOW and state.reps == 1 and state.lapses == 0


def test_new_card_states():
    states = next_states(None, NOW, config=NO_FUZZ)
    assert [s.state for s in states.values()] == ["learning", "learning", "learning", "review"]
    assert [s.step for s in states.values()] == [0, 0, 1, None]


def test_answer_equals_next_states_for_every_rating_and_kind_of_card():
    review = mature(FUZZ)
    relearning = answer(review, 1, review.due, config=FUZZ)
    for state in (None, answer(None, 3, NOW, config=FUZZ), review, relearning):
        moment = NOW + timedelta(days=400)
        states = next_states(state, moment, config=FUZZ, fuzz_seed=7)
        for rating in RATINGS:
            assert answer(state, rating, moment, config=FUZZ, fuzz_seed=7) == states[rating]


def test_answer_does_not_mutate_its_input():
    state = mature()
    before = state.to_dict()
    answer(state, 1, state.due, config=FUZZ)
    assert state.to_dict() == before


def test_non_utc_aware_now_is_the_same_instant():
    berlin = NOW.astimezone(ZoneInfo("Europe/Berlin"))
    state = mature()
    assert answer(state, 3, berlin, config=FUZZ) == answer(state, 3, NOW, config=FUZZ)
    assert answer(state, 3, berlin, config=FUZZ).due.tzinfo == timezone.utc


# --- serialisation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rating", [1, 2, 3, 4])
def test_to_dict_from_dict_round_trips_exactly_through_json(rating):
    for state in (answer(None, rating, NOW, config=FUZZ), answer(mature(), rating, NOW, config=FUZZ)):
        data = json.loads(json.dumps(state.to_dict()))
        assert CardState.from_dict(data) == state
        assert CardState.from_dict(data).to_dict() == state.to_dict()


def test_from_dict_keeps_zero_values_and_normalises_to_utc():
    state = CardState("review", None, 0.5, 1.0, NOW.astimezone(ZoneInfo("Asia/Tokyo")), NOW, reps=0, lapses=0)
    assert state.due.tzinfo == timezone.utc
    again = CardState.from_dict(state.to_dict())
    assert again == state and again.stability == 0.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"state": "new"},
        {"state": "review", "step": None, "stability": None},
        {"state": "relearning", "step": None},
        {"state": "review", "step": 0},
        {"due": datetime(2026, 5, 10)},
        {"last_review": datetime(2026, 5, 10)},
        {"reps": -1},
    ],
)
def test_invalid_card_state_is_rejected(kwargs):
    fields = {"state": "learning", "step": 0, "stability": 1.0, "difficulty": 5.0, "due": NOW, "last_review": NOW}
    with pytest.raises(ValueError):
        CardState(**{**fields, **kwargs})


# --- fuzz ------------------------------------------------------------------------------------------


def test_fuzz_is_deterministic_for_equal_inputs():
    state = mature(FUZZ, fuzz_seed=3)
    first = next_states(state, state.due, config=FUZZ, fuzz_seed=3)
    second = next_states(CardState.from_dict(state.to_dict()), state.due, config=SchedulerConfig(), fuzz_seed=3)
    assert first == second


def test_fuzz_differs_between_seeds_on_long_intervals_and_stays_in_fsrs_range():
    state = mature()
    plain = answer(state, 3, state.due, config=NO_FUZZ)
    days = interval(plain).days
    assert days > 20
    delta = 1 + 0.15 * 4.5 + 0.1 * 13 + 0.05 * (days - 20)  # fsrs's FUZZ_RANGES
    fuzzed = {interval(answer(state, 3, state.due, config=FUZZ, fuzz_seed=seed)).days for seed in range(30)}
    assert len(fuzzed) > 3
    assert all(round(days - delta) <= d <= round(days + delta) for d in fuzzed)
    assert all(answer(state, 3, state.due, config=FUZZ, fuzz_seed=s).stability == plain.stability for s in range(3))


def test_fuzz_leaves_short_intervals_and_learning_steps_alone():
    for seed in range(10):
        assert next_states(None, NOW, config=FUZZ, fuzz_seed=seed)[3].due == NOW + timedelta(minutes=10)


def test_fuzz_does_not_touch_global_random_state():
    state = mature()
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    next_states(state, state.due, config=FUZZ, fuzz_seed=5)
    assert random.random() == expected


def test_fuzz_does_not_depend_on_hash_seed():
    code = (
        "from datetime import datetime, timezone\n"
        "from kb.scheduler import CardState, SchedulerConfig, next_states\n"
        "s = CardState('review', None, 60.0, 5.0, datetime(2026, 5, 10, tzinfo=timezone.utc),"
        " datetime(2026, 3, 10, tzinfo=timezone.utc), reps=6)\n"
        "print([v.due.isoformat() for v in next_states(s, s.due, config=SchedulerConfig(), fuzz_seed=9).values()])"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        ).stdout
        for hash_seed in ("1", "2")
    }
    assert len(outputs) == 1


# --- lapses, reps, leeches -------------------------------------------------------------------------


def test_reps_and_lapses_are_counted():
    state = answer(None, 1, NOW, config=NO_FUZZ)
    assert (state.reps, state.lapses) == (1, 0)  # forgetting a learning card is no lapse
    state = graduate()
    assert (state.reps, state.lapses) == (2, 0)
    state = answer(state, 1, state.due, config=NO_FUZZ)
    assert (state.state, state.step, state.reps, state.lapses) == ("relearning", 0, 3, 1)
    assert interval(state) == timedelta(minutes=10)
    state = answer(state, 1, state.due, config=NO_FUZZ)  # failing a relearning step is no new lapse
    assert (state.state, state.reps, state.lapses) == ("relearning", 4, 1)
    state = answer(state, 3, state.due, config=NO_FUZZ)
    assert (state.state, state.reps, state.lapses) == ("review", 5, 1)


def test_leech_after_eight_lapses():
    config = SchedulerConfig(enable_fuzzing=False)
    state = graduate(config)
    for lapse in range(1, 9):
        assert not is_leech(state, config)
        state = answer(state, 1, state.due, config=config)
        state = answer(state, 3, state.due, config=config)
        assert state.lapses == lapse
    assert is_leech(state, config)
    assert not is_leech(state, SchedulerConfig(leech_lapses=9))


# --- intervals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [NO_FUZZ, FUZZ], ids=["plain", "fuzzed"])
def test_good_on_time_gives_increasing_intervals(config):
    state = graduate(config)
    intervals = [interval(state)]
    for _ in range(6):
        state = answer(state, 3, state.due, config=config)
        intervals.append(interval(state))
    assert intervals == sorted(intervals) and len(set(intervals)) == len(intervals)


def test_button_intervals_are_ordered_on_a_review_card():
    state = mature()
    states = next_states(state, state.due, config=NO_FUZZ)
    assert states[1].state == "relearning"
    assert interval(states[1]) < interval(states[2]) < interval(states[3]) < interval(states[4])


@pytest.mark.parametrize("fuzz", [False, True], ids=["plain", "fuzzed"])
def test_maximum_interval_is_respected(fuzz):
    config = SchedulerConfig(maximum_interval_days=30, enable_fuzzing=fuzz)
    state = graduate(config)
    for _ in range(10):
        state = answer(state, 4, state.due, config=config)
        assert interval(state) <= timedelta(days=30)
    # Fuzz only ever moves a capped interval down (fsrs's range is clipped at the maximum).
    assert interval(state) == timedelta(days=30) if not fuzz else interval(state) >= timedelta(days=27)


def test_desired_retention_changes_intervals():
    state = mature()
    high = answer(state, 3, state.due, config=SchedulerConfig(desired_retention=0.95, enable_fuzzing=False))
    low = answer(state, 3, state.due, config=SchedulerConfig(desired_retention=0.8, enable_fuzzing=False))
    assert interval(high) < interval(answer(state, 3, state.due, config=NO_FUZZ)) < interval(low)


def test_optimized_parameters_are_used():
    parameters = list(DEFAULT_PARAMETERS)
    parameters[3] = 20.0  # initial stability after Easy
    config = SchedulerConfig(parameters=tuple(parameters), enable_fuzzing=False)
    assert interval(answer(None, 4, NOW, config=config)) == timedelta(days=20)
    assert interval(answer(None, 4, NOW, config=NO_FUZZ)) == timedelta(days=8)


def test_custom_steps_are_used():
    config = SchedulerConfig(learning_steps=(timedelta(minutes=2),), relearning_steps=(), enable_fuzzing=False)
    states = next_states(None, NOW, config=config)
    assert interval(states[1]) == timedelta(minutes=2)
    assert interval(states[2]) == timedelta(minutes=3)
    assert states[3].state == "review"
    lapsed = answer(mature(config), 1, NOW + timedelta(days=365), config=config)
    assert lapsed.state == "review" and lapsed.lapses == 1  # no relearning steps: straight back to review


@pytest.mark.parametrize(
    "kwargs",
    [
        {"desired_retention": 1.0},
        {"desired_retention": 0.0},
        {"maximum_interval_days": 0},
        {"leech_lapses": 0},
        {"learning_steps": (timedelta(0),)},
    ],
)
def test_invalid_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        SchedulerConfig(**kwargs)


def test_out_of_bounds_parameters_are_rejected():
    with pytest.raises(ValueError):
        answer(None, 3, NOW, config=SchedulerConfig(parameters=(1.0,) * 19))


# --- a clock set back or forward, and input checks -------------------------------------------------


@pytest.mark.parametrize("config", [NO_FUZZ, FUZZ], ids=["plain", "fuzzed"])
@pytest.mark.parametrize("card", ["learning", "review", "relearning"])
def test_clock_set_back_a_year_clamps_instead_of_crashing(config, card):
    state = {"learning": answer(None, 3, NOW, config=config), "review": mature(config)}.get(card)
    if state is None:
        review = mature(config)
        state = answer(review, 1, review.due, config=config)
    back = state.last_review - timedelta(days=365)
    for rating, new in next_states(state, back, config=config).items():
        assert new.due >= back and new.last_review == back
        assert new.stability is not None and new.stability > 0
        assert new == answer(state, rating, back, config=config)
    # No elapsed time counts, as for an answer given at the same instant as the last one.
    assert next_states(state, back, config=config) == {
        rating: _shifted(new, back - state.last_review)
        for rating, new in next_states(state, state.last_review, config=config).items()
    }


def _shifted(state: CardState, by: timedelta) -> CardState:
    return CardState.from_dict(
        {**state.to_dict(), "due": (state.due + by).isoformat(), "last_review": (state.last_review + by).isoformat()}
    )


def test_clock_set_forward_a_year_is_a_long_overdue_review():
    state = mature()
    late = state.due + timedelta(days=365)
    assert retrievability(state, late, config=NO_FUZZ) < 0.9
    new = answer(state, 3, late, config=NO_FUZZ)
    assert new.due > late and new.stability > state.stability


def test_naive_datetimes_are_rejected():
    naive = datetime(2026, 5, 10, 12, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        answer(None, 3, naive, config=NO_FUZZ)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_states(mature(), naive, config=NO_FUZZ)
    with pytest.raises(ValueError, match="timezone-aware"):
        retrievability(mature(), naive, config=NO_FUZZ)


@pytest.mark.parametrize("rating", [0, 5, -1, True, 3.0, "3"])
def test_bad_ratings_are_rejected(rating):
    with pytest.raises(ValueError, match="rating"):
        answer(None, rating, NOW, config=NO_FUZZ)


# --- retrievability and display --------------------------------------------------------------------


def test_retrievability_decreases_with_time():
    state = mature()
    values = [
        retrievability(state, state.last_review + timedelta(days=d), config=NO_FUZZ) for d in (0, 1, 10, 100, 1000)
    ]
    assert values[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(values, values[1:]))
    assert retrievability(state, state.due, config=NO_FUZZ) == pytest.approx(0.9, abs=0.01)  # due at 90 %
    assert retrievability(state, state.last_review - timedelta(days=30), config=NO_FUZZ) == pytest.approx(1.0)


def test_retrievability_of_new_and_unstable_cards():
    assert retrievability(None, NOW, config=NO_FUZZ) == 0.0
    fresh = CardState("learning", 0, None, None, NOW, None)
    assert retrievability(fresh, NOW, config=NO_FUZZ) == 1.0


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=-30), "<1m"),
        (timedelta(0), "<1m"),
        (timedelta(seconds=59), "<1m"),
        (timedelta(minutes=1), "1m"),
        (timedelta(minutes=5, seconds=30), "6m"),
        (timedelta(minutes=10), "10m"),
        (timedelta(minutes=59), "59m"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=23), "23h"),
        (timedelta(days=1), "1d"),
        (timedelta(days=3), "3d"),
        (timedelta(days=30), "30d"),
        (timedelta(days=64), "2.1mo"),
        (timedelta(days=365 / 12 * 2), "2mo"),
        (timedelta(days=364), "12mo"),
        (timedelta(days=365), "1y"),
        (timedelta(days=475), "1.3y"),
        (timedelta(days=36500), "100y"),
    ],
)
def test_format_interval(delta, text):
    assert format_interval(NOW, NOW + delta) == text


# --- time between reviews is counted in study days ------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
BERLIN_NO_FUZZ = SchedulerConfig(enable_fuzzing=False, zone=BERLIN)


def at(day: str, clock: str, zone=BERLIN) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=zone)


def test_answering_a_little_earlier_in_the_day_than_last_time_changes_nothing():
    # Learnt at 20:00, graduated at 20:11; on the day it falls due, answered at 20:05 or at 20:16.
    learnt = answer(None, 3, at("2026-05-04", "20:00"), config=BERLIN_NO_FUZZ)
    graduated = answer(learnt, 3, at("2026-05-04", "20:11"), config=BERLIN_NO_FUZZ)
    assert graduated.state == "review"
    due_day = graduated.due.astimezone(BERLIN).date().isoformat()
    earlier = answer(graduated, 3, at(due_day, "20:05"), config=BERLIN_NO_FUZZ)
    later = answer(graduated, 3, at(due_day, "20:16"), config=BERLIN_NO_FUZZ)
    assert earlier.stability == pytest.approx(later.stability)
    assert earlier.due.astimezone(BERLIN).date() == later.due.astimezone(BERLIN).date()
    assert format_interval(at(due_day, "20:05"), earlier.due) == format_interval(at(due_day, "20:16"), later.due)


def test_a_one_day_interval_answered_earlier_the_next_evening_is_an_inter_day_review():
    card = CardState("review", None, 0.5, 6.0, at("2026-05-05", "20:00"), at("2026-05-04", "20:11"), reps=3)
    next_evening = answer(card, 3, at("2026-05-05", "19:55"), config=BERLIN_NO_FUZZ)
    same_evening = answer(card, 3, at("2026-05-04", "21:55"), config=BERLIN_NO_FUZZ)
    # A day apart, the long-term formula applies (stability grows a lot); not the same-day one.
    assert next_evening.stability > 2 * same_evening.stability
    assert retrievability(card, at("2026-05-05", "19:55"), config=BERLIN_NO_FUZZ) < 1.0
    assert retrievability(card, at("2026-05-04", "23:55"), config=BERLIN_NO_FUZZ) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "before, after, quiet_before, quiet_after",
    [
        # Spring forward (29 March 2026): 20:05 to 20:05 is 23 hours, still one study day.
        (("2026-03-28", "20:05"), ("2026-03-29", "20:05"), ("2026-04-11", "20:05"), ("2026-04-12", "20:05")),
        # Fall back (25 October 2026): the study day lasts 25 hours; 04:30 to 04:20 the next study day.
        (("2026-10-24", "04:30"), ("2026-10-25", "04:20"), ("2026-10-10", "04:30"), ("2026-10-11", "04:20")),
    ],
)
def test_a_clock_change_does_not_change_the_elapsed_days(before, after, quiet_before, quiet_after):
    def review(last, now):
        card = CardState("review", None, 3.0, 5.0, at(*now), at(*last), reps=4)
        return answer(card, 3, at(*now), config=BERLIN_NO_FUZZ)

    across, quiet = review(before, after), review(quiet_before, quiet_after)
    assert across.stability == pytest.approx(quiet.stability)
    gap = quiet.due.astimezone(BERLIN).date() - at(*quiet_after).date()
    assert across.due.astimezone(BERLIN).date() - at(*after).date() == gap


def test_a_study_day_of_25_hours_is_still_one_day():
    # 24 October 2026 in Berlin: from 04:00 to the next 04:00 is 25 hours (the clocks go back at
    # 03:00 on the 25th), one study day.
    start = at("2026-10-24", "04:00").astimezone(timezone.utc)
    card = CardState("relearning", 0, 2.0, 5.0, start, start, reps=5, lapses=1)
    late = start + timedelta(hours=24, minutes=50)
    assert late.astimezone(BERLIN).isoformat() == "2026-10-25T03:50:00+01:00"  # the next morning
    same_day = answer(card, 3, late, config=BERLIN_NO_FUZZ)
    utc_start, utc_late = start.astimezone(timezone.utc), late.astimezone(timezone.utc)
    reference, _ = Scheduler(enable_fuzzing=False).review_card(
        Card(
            card_id=1,
            state=3,
            step=0,
            stability=2.0,
            difficulty=5.0,
            due=utc_start,
            last_review=utc_late - timedelta(hours=1),
        ),
        Rating.Good,
        review_datetime=utc_late,
    )
    assert same_day.stability == pytest.approx(reference.stability)  # the same-day (short-term) formula


def test_a_review_falls_due_on_a_study_day_whatever_the_time_change():
    for now in (
        at("2026-03-28", "03:30"),
        at("2026-03-28", "04:10"),
        at("2026-10-24", "04:10"),
        at("2026-10-24", "23:59"),
        at("2026-03-27", "02:30"),
    ):
        card = CardState("review", None, 10.0, 5.0, now, now - timedelta(days=10), reps=4)
        for rating in (2, 3, 4):
            state = answer(card, rating, now, config=SchedulerConfig(zone=BERLIN))
            days = round((state.due - now).total_seconds() / 86400)
            from kb.studyday import study_day

            assert (study_day(state.due, tz=BERLIN) - study_day(now, tz=BERLIN)).days == days


def test_leech_again_every_half_threshold():
    """Anki's rule: the lapse that reaches the threshold, then every half threshold after."""
    config = SchedulerConfig(enable_fuzzing=False, leech_lapses=4)
    state, flagged = graduate(config), []
    for _ in range(10):
        before = state
        state = answer(state, 1, state.due, config=config)
        if became_leech(before, state, config):
            flagged.append(state.lapses)
        state = answer(state, 3, state.due, config=config)
    assert flagged == [4, 6, 8, 10]


def test_learning_steps_and_maximum_interval_are_used():
    from kb.config import parse_steps

    config = SchedulerConfig(enable_fuzzing=False, learning_steps=parse_steps("30s 2h"), maximum_interval_days=3)
    state = answer(None, 3, NOW, config=config)
    assert state.due - NOW == timedelta(hours=2)
    state = answer(state, 3, state.due, config=config)
    assert state.state == "review"
    for _ in range(4):
        state = answer(state, 4, state.due, config=config)
        assert study_days_between(state.last_review, state.due, config) <= 3


@pytest.mark.parametrize(
    "text, message",
    [
        ("1m 10", "'10' is not a step"),
        ("0s", "'0s': a step lasts from 1s to 30d"),
        ("5y", "'5y' is not a step"),
    ],
)
def test_bad_steps_are_one_clear_message(text, message):
    from kb.config import parse_steps

    with pytest.raises(ValueError, match=message):
        parse_steps(text)
