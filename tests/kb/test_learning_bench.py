"""The simulated-learner benchmark's pieces, checked small: kb's scheduler counts time as the fsrs
package does when that package is given a study-day clock, and the learners behave as FSRS-6 says."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def learning():
    return _bench("learning")


@pytest.mark.parametrize("jitter_h", [0.0, 3.0], ids=["20:00", "+-3h"])
def test_kb_without_fuzz_schedules_exactly_as_fsrs_on_a_study_day_clock(learning, jitter_h):
    """Same weights, no fuzz, sessions across both of Berlin's clock changes: every answer lands on the
    same day for both, so the reviews, recalls and end knowledge are identical."""
    from fsrs import Scheduler

    from kb.scheduler import SchedulerConfig

    setup = learning.Setup(0, learning.DEFAULT_WEIGHTS, cards=120, days=300, jitter_h=jitter_h, seed=11)
    kb = learning.KbScheduler(0.9, learning.DEFAULT_WEIGHTS, name="kb-true")
    kb.config = SchedulerConfig(
        parameters=learning.DEFAULT_WEIGHTS, zone=learning.ZONE, rollover_hour=learning.ROLLOVER, enable_fuzzing=False
    )
    reference = learning.FsrsScheduler(learning.DEFAULT_WEIGHTS)
    reference.scheduler = Scheduler(parameters=learning.DEFAULT_WEIGHTS, desired_retention=0.9, enable_fuzzing=False)
    ours, theirs = learning.simulate(setup, kb), learning.simulate(setup, reference)
    assert ours.reviews > 1000 and ours.inter_day > 500
    assert (ours.reviews, ours.passed, ours.inter_day) == (theirs.reviews, theirs.passed, theirs.inter_day)
    assert ours.knowledge == pytest.approx(theirs.knowledge, rel=1e-6)


def test_learner_recall_follows_the_forgetting_curve(learning):
    """At one stability's distance the learner recalls 90% of the time (FSRS's definition of stability)."""
    import numpy as np

    learners = sys.modules["learners"] if "learners" in sys.modules else _bench("learners")
    learner = learners.Learner(learners.DEFAULT_WEIGHTS)
    memory = learners.Memory(stability=7.0, difficulty=5.0, last=0.0)
    assert learner.retrievability(memory, 7.0) == pytest.approx(0.9)
    draws = np.random.default_rng(1).random((20_000, 2))
    recalled = np.mean([learner.rating(memory, 7.0, u, g) > 1 for u, g in draws])
    assert recalled == pytest.approx(0.9, abs=0.01)


def test_perturbed_weights_stay_in_bounds_and_near_the_defaults():
    import numpy as np

    learners = _bench("learners")
    for seed in range(20):
        weights = learners.perturbed_weights(np.random.default_rng(seed))
        for w, default, low, high in zip(
            weights, learners.DEFAULT_WEIGHTS, learners.LOWER_BOUNDS, learners.UPPER_BOUNDS
        ):
            assert low <= w <= high
            assert min(default * 0.7, high) - 1e-12 <= w or w == low
            assert w <= max(default * 1.3, low) + 1e-12 or w == high


def test_sm2_follows_anki_legacy_defaults(learning):
    """Graduating Good gives 1 day, Easy 4 days; a lapse costs 20% ease down to 130%."""
    from datetime import timedelta

    sm2 = learning.Sm2Scheduler()
    now = learning.day_start(0) + timedelta(hours=16)
    state, kind, due = sm2.answer(None, 4, now, card=1, day=0)
    assert kind == learning.REVIEW and state.interval == 4 and due == learning.day_start(4)
    state, kind, _ = sm2.answer(None, 3, now, card=2, day=0)
    assert kind == learning.LEARNING
    state, kind, due = sm2.answer(state, 3, now, card=2, day=0)
    assert kind == learning.REVIEW and state.interval == 1 and due == learning.day_start(1)
    for _ in range(8):
        state, kind, _ = sm2.answer(state, 1, now, card=2, day=state.due_day)
        state, kind, _ = sm2.answer(state, 3, now, card=2, day=state.due_day)
    assert state.ease == pytest.approx(1.3)
