"""Benchmark: reviews saved by kb's schedule, on simulated learners, against Anki's legacy SM-2.

Each learner's memory follows FSRS-6 (bench/learners.py) with the default weights or a perturbed
set (each weight times U[0.7, 1.3], clipped). Recall is drawn from the learner's own memory. Every
scheduler meets the same learner with the same random numbers (per card and presentation, per day
for the session's hour). One session a day, in Europe/Berlin (so both clock changes happen), at
20:00 or at 20:00 +- U(3 h); 20 new cards a day at most, 200 reviews.

Schedulers, each through the same queue rules as kb's (learning cards due now, then the day's due
reviews in due order, then new cards, then learning cards due within 20 minutes):
- kb: `kb.scheduler.answer` as shipped (default weights), over a sweep of desired retention;
- kb-optimized: kb with default weights, then `kb.optimizer.fit` on its own history at day 120;
- kb-true: kb with the learner's true weights;
- fsrs-true: the fsrs package's Scheduler with the true weights, fed a clock counting study days;
- SM-2: Anki's legacy scheduler (learning steps 1m 10m, graduating 1 d, easy 4 d, ease 250%,
  hard 1.2x, easy bonus 1.3, lapse: ease -20% to a floor of 130%, new interval 0%, schedv2 fuzz).

Per learner it prints: reviews (every answer, learning steps included), retention at review (the
share of reviews on a later day than the card's previous one that were recalled), knowledge at the
end (the sum of every card's recall probability), the most reviews in one day, and reviews at equal
knowledge against SM-2 (kb's desired-retention sweep interpolated at SM-2's knowledge).

    python bench/learning.py [--cards 1000] [--days 365] [--learners 6] [--jobs 2] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import heapq
import math
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from learners import DEFAULT_WEIGHTS, Learner, Memory, perturbed_weights  # noqa: E402

ZONE = ZoneInfo("Europe/Berlin")
FIRST_DAY = date(2026, 1, 5)
SESSION_HOUR = 20
ANSWER_SECONDS = 10
LEARN_AHEAD = timedelta(minutes=20)
ROLLOVER = 4
SWEEP = (0.75, 0.80, 0.85, 0.90, 0.95)
OPTIMIZE_DAY = 120

NEW, LEARNING, REVIEW, RELEARNING = "new", "learning", "review", "relearning"


@functools.lru_cache(maxsize=None)
def day_start(day: int) -> datetime:
    from kb.studyday import day_start as start

    return start(FIRST_DAY + timedelta(days=day), tz=ZONE, rollover_hour=ROLLOVER)


# --- schedulers ---------------------------------------------------------------------------------


class KbScheduler:
    """kb's scheduler as shipped: kb.scheduler.answer, its deterministic fuzz seeded by the card."""

    def __init__(self, retention: float = 0.9, weights=None, name: str = "kb") -> None:
        from kb.scheduler import SchedulerConfig

        self.name = name
        self.config = SchedulerConfig(
            desired_retention=retention, parameters=weights, zone=ZONE, rollover_hour=ROLLOVER
        )

    def answer(self, state, rating: int, now: datetime, card: int, day: int):
        from kb.scheduler import answer

        new = answer(state, rating, now, config=self.config, fuzz_seed=card)
        return new, new.state, new.due


class FsrsScheduler:
    """The fsrs package's own Scheduler, its clock counting study days (day index, then the time
    since the session began), so that it counts days as kb and Anki do."""

    def __init__(self, weights, retention: float = 0.9, name: str = "fsrs-true") -> None:
        from fsrs import Scheduler

        self.name = name
        self.scheduler = Scheduler(parameters=weights, desired_retention=retention, enable_fuzzing=True)
        self.epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
        self.last: dict[int, tuple[int, timedelta]] = {}

    def answer(self, state, rating: int, now: datetime, card: int, day: int):
        from copy import copy

        from fsrs import Card, Rating, State

        offset = now - day_start(day)  # under 24 h: the time within the study day
        synthetic = self.epoch + timedelta(days=day) + offset
        if state is None:
            state = Card(card_id=card, due=synthetic)
        else:
            state = copy(state)
            last_day, last_offset = self.last[card]
            # On a later study day, exactly that many days back; on the same day, the real gap.
            state.last_review = (
                synthetic - timedelta(days=day - last_day)
                if day > last_day
                else self.epoch + timedelta(days=day) + min(last_offset, offset)
            )
        random.seed(card * 1_000_003 + day * 1_009 + int(offset.total_seconds()))  # fsrs fuzzes with `random`
        new, _ = self.scheduler.review_card(state, Rating(rating), review_datetime=synthetic)
        self.last[card] = (day, offset)
        kind = {State.Learning: LEARNING, State.Review: REVIEW, State.Relearning: RELEARNING}[new.state]
        if kind == REVIEW:
            days = round((new.due - synthetic).total_seconds() / 86400)
            due = day_start(day + days)
        else:
            due = now + (new.due - synthetic)
        return new, kind, due


@dataclass
class Sm2State:
    kind: str
    step: int = 0
    ease: float = 2.5
    interval: int = 0
    due_day: int = 0


class Sm2Scheduler:
    """Anki's legacy (v2) scheduler with its default options."""

    name = "SM-2"
    steps = (timedelta(minutes=1), timedelta(minutes=10))
    relearn_steps = (timedelta(minutes=10),)

    def answer(self, state: Sm2State | None, rating: int, now: datetime, card: int, day: int):
        rng = random.Random(card * 1_000_003 + day * 7 + rating)
        if state is None:
            state = Sm2State(LEARNING)
        if state.kind in (LEARNING, RELEARNING):
            steps = self.steps if state.kind == LEARNING else self.relearn_steps
            if rating == 1:
                state.step = 0
                return state, state.kind, now + steps[0]
            if rating == 2:
                delay = steps[state.step] if state.step or len(steps) == 1 else (steps[0] + steps[1]) / 2
                return state, state.kind, now + delay
            if rating == 3 and state.step + 1 < len(steps):
                state.step += 1
                return state, state.kind, now + steps[state.step]
            # graduate: 1 day (good) or 4 days (easy); after a lapse, the lapse interval
            if state.kind == LEARNING:
                interval = 4 if rating == 4 else 1
            else:
                interval = max(1, state.interval + (1 if rating == 4 else 0))
            state = Sm2State(REVIEW, ease=state.ease, interval=interval, due_day=day + interval)
            return state, REVIEW, day_start(day + interval)
        # review
        late = max(0, day - state.due_day)
        if rating == 1:
            state.ease = max(1.3, state.ease - 0.2)
            state.interval = max(1, int(state.interval * 0.0))  # "new interval" 0% -> 1 day
            state.kind, state.step = RELEARNING, 0
            return state, RELEARNING, now + self.relearn_steps[0]
        hard = max(state.interval + 1, int(state.interval * 1.2))
        if rating == 2:
            interval = hard
            state.ease = max(1.3, state.ease - 0.15)
        else:
            good = max(hard + 1, int((state.interval + late // 2) * state.ease))
            if rating == 3:
                interval = good
            else:
                interval = max(good + 1, int((state.interval + late) * state.ease * 1.3))
                state.ease += 0.15
        interval = self._fuzz(interval, rng)
        state.interval, state.due_day = interval, day + interval
        return state, REVIEW, day_start(day + interval)

    @staticmethod
    def _fuzz(interval: int, rng: random.Random) -> int:
        if interval < 2:
            return interval
        if interval == 2:
            low, high = 2, 3
        elif interval < 7:
            fuzz = max(1, int(interval * 0.25))
            low, high = interval - fuzz, interval + fuzz
        elif interval < 30:
            fuzz = max(2, int(interval * 0.15))
            low, high = interval - fuzz, interval + fuzz
        else:
            fuzz = max(4, int(interval * 0.05))
            low, high = interval - fuzz, interval + fuzz
        return rng.randint(max(1, low), high)


# --- the simulation -----------------------------------------------------------------------------


@dataclass
class Result:
    scheduler: str
    retention_target: float | None
    reviews: int = 0
    passed: int = 0
    inter_day: int = 0
    knowledge: float = 0.0
    peak_day: int = 0
    late_passed: int = 0  # from the optimisation day on
    late_inter_day: int = 0
    fit_note: str = ""


@dataclass
class Setup:
    learner_index: int
    weights: tuple
    cards: int
    days: int
    jitter_h: float
    seed: int
    new_per_day: int = 20
    review_limit: int = 200


def simulate(
    setup: Setup, scheduler, *, optimize_at: int | None = None, target: float | None = None, label: str | None = None
) -> Result:
    learner = Learner(setup.weights)
    rng = np.random.default_rng(setup.seed)
    # Common random numbers: the same draws for a card's n-th presentation, whatever the schedule.
    draws = rng.random((setup.cards, 512, 2))
    session_offsets = (
        rng.uniform(-setup.jitter_h, setup.jitter_h, size=setup.days) if setup.jitter_h else np.zeros(setup.days)
    )
    origin = day_start(0)
    memories: list[Memory | None] = [None] * setup.cards
    states: list = [None] * setup.cards
    kinds = [NEW] * setup.cards
    dues: list[datetime | None] = [None] * setup.cards
    last_day = [-1] * setup.cards
    shown = [0] * setup.cards
    history: list[tuple[int, int, datetime]] = []
    result = Result(label or scheduler.name, target)
    next_new = 0

    def days_since_origin(moment: datetime) -> float:
        return (moment - origin).total_seconds() / 86400

    for day in range(setup.days):
        if optimize_at is not None and day == optimize_at:
            scheduler, note = optimized(scheduler, history)
            result.fit_note = note
        start = datetime.combine(FIRST_DAY + timedelta(days=day), datetime.min.time()).replace(tzinfo=ZONE)
        now = (start + timedelta(hours=SESSION_HOUR + float(session_offsets[day]))).astimezone(timezone.utc)
        day_end = day_start(day + 1)
        learning = [(dues[c], c) for c in range(next_new) if kinds[c] in (LEARNING, RELEARNING)]
        heapq.heapify(learning)
        reviews = sorted((dues[c], c) for c in range(next_new) if kinds[c] == REVIEW and dues[c] < day_end)
        reviews = [c for _, c in reviews[: setup.review_limit]]
        new_today = list(range(next_new, min(setup.cards, next_new + setup.new_per_day)))
        next_new += len(new_today)
        review_at = 0
        answered_today = 0
        while True:
            if learning and learning[0][0] <= now:
                card = heapq.heappop(learning)[1]
            elif review_at < len(reviews):
                card, review_at = reviews[review_at], review_at + 1
            elif new_today:
                card = new_today.pop(0)
            elif learning and learning[0][0] <= now + LEARN_AHEAD:
                card = heapq.heappop(learning)[1]
            else:
                break
            t = days_since_origin(now)
            n = min(shown[card], 511)
            rating = learner.rating(memories[card], t, draws[card, n, 0], draws[card, n, 1])
            if kinds[card] == REVIEW and last_day[card] < day:
                result.inter_day += 1
                result.passed += rating > 1
                if optimize_at is not None and day >= optimize_at:
                    result.late_inter_day += 1
                    result.late_passed += rating > 1
            memories[card] = learner.remember(memories[card], rating, t)
            states[card], kinds[card], dues[card] = scheduler.answer(states[card], rating, now, card, day)
            history.append((card, rating, now))
            shown[card] += 1
            last_day[card] = day
            answered_today += 1
            if kinds[card] in (LEARNING, RELEARNING):
                heapq.heappush(learning, (dues[card], card))
            now += timedelta(seconds=ANSWER_SECONDS)
        result.reviews += answered_today
        result.peak_day = max(result.peak_day, answered_today)
    end = days_since_origin(day_start(setup.days))
    result.knowledge = sum(learner.retrievability(m, end) for m in memories)
    return result


def optimized(scheduler, history):
    from kb.optimizer import fit

    report = fit([(c, r, at) for c, r, at in history], zone=ZONE, rollover_hour=ROLLOVER)
    weights = tuple(report.weights)
    note = (
        f"{report.chosen}; log loss {report.default.log_loss if report.default else '-'} -> "
        f"{report.candidate.log_loss if report.candidate else '-'}; decay {weights[20]:.3f}"
    )
    return KbScheduler(scheduler.config.desired_retention, weights, name="kb-optimized"), note


def run_learner(args: tuple) -> list[Result]:
    setup, quick = args
    results = []
    sweep = (0.80, 0.90) if quick else SWEEP
    for retention in sweep:
        results.append(simulate(setup, KbScheduler(retention), target=retention))
    results.append(simulate(setup, KbScheduler(0.9, setup.weights, name="kb-true"), target=0.9))
    results.append(simulate(setup, FsrsScheduler(setup.weights), target=0.9))
    results.append(simulate(setup, Sm2Scheduler()))
    results.append(
        simulate(
            setup, KbScheduler(0.9), optimize_at=min(OPTIMIZE_DAY, setup.days // 3), target=0.9, label="kb-optimized"
        )
    )
    return results


def at_equal_knowledge(kb_runs: list[Result], knowledge: float) -> float | None:
    """kb's reviews at `knowledge`, interpolated along its desired-retention sweep."""
    points = sorted((r.knowledge, r.reviews) for r in kb_runs)
    for (k0, r0), (k1, r1) in zip(points, points[1:]):
        if k0 <= knowledge <= k1 and k1 > k0:
            return r0 + (r1 - r0) * (knowledge - k0) / (k1 - k0)
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument(
        "--learners", type=int, default=6, help="the default weights and this many minus one perturbed sets"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--quick", action="store_true", help="two retentions in the sweep (a smoke test)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    weights = [DEFAULT_WEIGHTS] + [perturbed_weights(rng) for _ in range(args.learners - 1)]
    setups = [
        Setup(i, w, args.cards, args.days, jitter, args.seed + 101 * i + (7 if jitter else 0))
        for i, w in enumerate(weights)
        for jitter in (0.0, 3.0)
    ]
    began = time.perf_counter()
    if args.jobs > 1:
        from multiprocessing import Pool

        with Pool(args.jobs) as pool:
            outcomes = pool.map(run_learner, [(s, args.quick) for s in setups])
    else:
        outcomes = [run_learner((s, args.quick)) for s in setups]
    elapsed = time.perf_counter() - began
    report(setups, outcomes, args)
    print(
        f"\n{len(setups)} learner-timings x {len(outcomes[0])} schedules, {args.cards} cards, {args.days} days: "
        f"{elapsed:.0f} s on {args.jobs} processes"
    )
    return 0


def report(setups, outcomes, args) -> None:
    print(
        f"{'learner':<13}{'sessions':<10}{'scheduler':<14}{'reviews':>8}{'retention':>10}{'knowledge':>10}"
        f"{'peak/day':>9}  vs SM-2 at equal knowledge"
    )
    savings, true_gaps, calibration = [], [], []
    for setup, results in zip(setups, outcomes):
        by_name = {}
        for r in results:
            by_name.setdefault(r.scheduler, []).append(r)
        sm2 = by_name["SM-2"][0]
        kb_sweep = by_name["kb"]
        equal = at_equal_knowledge(kb_sweep, sm2.knowledge)
        saving = None if equal is None else equal / sm2.reviews - 1
        savings.append(saving)
        kb_true, fsrs_true = by_name["kb-true"][0], by_name["fsrs-true"][0]
        true_gaps.append(kb_true.reviews / fsrs_true.reviews - 1)
        opt = by_name["kb-optimized"][0]
        late = opt.late_passed / opt.late_inter_day if opt.late_inter_day else float("nan")
        calibration.append(late - 0.9)
        label = "default" if setup.learner_index == 0 else f"perturbed {setup.learner_index}"
        sessions = "+-3 h" if setup.jitter_h else "20:00"
        shown = [r for r in kb_sweep if r.retention_target == 0.9] + [kb_true, fsrs_true, sm2, opt]
        for r in shown:
            retention = r.passed / r.inter_day if r.inter_day else float("nan")
            extra = ""
            if r is sm2:
                extra = "  (baseline)"
            elif r.scheduler == "kb":
                extra = f"  kb {saving:+.1%}" if saving is not None else "  (outside kb's sweep)"
            elif r is opt:
                extra = f"  retention after day {OPTIMIZE_DAY}: {late:.3f} ({opt.fit_note})"
            print(
                f"{label:<13}{sessions:<10}{r.scheduler:<14}{r.reviews:>8}{retention:>10.3f}{r.knowledge:>10.1f}"
                f"{r.peak_day:>9}{extra}"
            )
    known = [s for s in savings if s is not None]
    print("\nTargets:")
    if known:
        print(
            f"  kb vs SM-2 at equal knowledge: mean {statistics.mean(known):+.1%}, worst {max(known):+.1%} "
            f"(target: every learner below 0, mean -5% or less)"
        )
    print(
        f"  kb-true vs fsrs-true reviews: mean {statistics.mean(true_gaps):+.1%}, largest "
        f"{max(true_gaps, key=abs):+.1%} (target: within 2%)"
    )
    gaps = [abs(c) for c in calibration if not math.isnan(c)]
    if gaps:
        print(
            f"  kb-optimized |retention - 0.9| after day {OPTIMIZE_DAY}: mean {statistics.mean(gaps) * 100:.2f} "
            f"points, largest {max(gaps) * 100:.2f} (target: mean <= 1.5, each <= 3)"
        )


if __name__ == "__main__":
    sys.exit(main())
