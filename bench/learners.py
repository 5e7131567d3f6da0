"""Simulated learners: memory that follows the FSRS-6 model, written here from its equations.

Nothing here calls kb.scheduler or the fsrs package's scheduling code: a learner's recall is drawn
from its own memory state, so a scheduler that counts time wrongly, or predicts recall wrongly,
shows as more reviews or lower retention instead of agreeing with itself. Time is continuous (in
days, fractions included): the learner forgets by the hour, whatever calendar a scheduler keeps.

Used by bench/learning.py and by tests that drive kb with a learner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from fsrs.scheduler import DEFAULT_PARAMETERS, LOWER_BOUNDS_PARAMETERS, UPPER_BOUNDS_PARAMETERS

# FSRS-6's published default weights, and the bounds the fsrs package clips fitted weights to (its own
# constants, not kb's): the learners' true weights are these, each times a factor from U[0.7, 1.3], clipped.
DEFAULT_WEIGHTS = tuple(DEFAULT_PARAMETERS)
LOWER_BOUNDS = tuple(LOWER_BOUNDS_PARAMETERS)
UPPER_BOUNDS = tuple(UPPER_BOUNDS_PARAMETERS)

# The first answer to a card never seen (Again, Hard, Good, Easy), and the grade of a success.
FIRST_RATING_P = (0.24, 0.094, 0.495, 0.171)
SUCCESS_RATING_P = (0.15, 0.80, 0.05)  # Hard, Good, Easy
FIRST_RATING_CUMULATIVE = tuple(np.cumsum(FIRST_RATING_P))
SUCCESS_RATING_CUMULATIVE = tuple(np.cumsum(SUCCESS_RATING_P))
SAME_SESSION_DAYS = 0.5  # reviews closer than this use the model's same-day (short-term) update


def _index(cumulative: tuple[float, ...], u: float) -> int:
    """The category a uniform draw `u` falls in."""
    for index, bound in enumerate(cumulative):
        if u < bound:
            return index
    return len(cumulative) - 1


def perturbed_weights(rng: np.random.Generator) -> tuple[float, ...]:
    """Each default weight times a factor from U[0.7, 1.3], clipped to the bounds."""
    factors = rng.uniform(0.7, 1.3, size=len(DEFAULT_WEIGHTS))
    return tuple(
        float(min(max(w * f, lo), hi)) for w, f, lo, hi in zip(DEFAULT_WEIGHTS, factors, LOWER_BOUNDS, UPPER_BOUNDS)
    )


@dataclass
class Memory:
    stability: float
    difficulty: float
    last: float  # when it was last reviewed, in days


class Learner:
    """One learner with FSRS-6 weights `w`; `recall` and `remember` are its whole behaviour."""

    def __init__(self, weights: tuple[float, ...]) -> None:
        self.w = tuple(float(x) for x in weights)
        self.decay = -self.w[20]
        self.factor = 0.9 ** (1 / self.decay) - 1

    def retrievability(self, memory: Memory | None, now: float) -> float:
        if memory is None:
            return 0.0
        elapsed = max(0.0, now - memory.last)
        return (1 + self.factor * elapsed / memory.stability) ** self.decay

    def rating(self, memory: Memory | None, now: float, u_recall: float, u_grade: float) -> int:
        """The learner's answer, from two uniform draws (common random numbers across schedulers)."""
        if memory is None:
            return 1 + _index(FIRST_RATING_CUMULATIVE, u_grade)
        if u_recall >= self.retrievability(memory, now):
            return 1
        return 2 + _index(SUCCESS_RATING_CUMULATIVE, u_grade)

    def remember(self, memory: Memory | None, rating: int, now: float) -> Memory:
        """The memory after a review graded `rating` at `now`."""
        w = self.w
        if memory is None:
            return Memory(max(w[rating - 1], 0.001), self._initial_difficulty(rating), now)
        s, d = memory.stability, memory.difficulty
        if now - memory.last < SAME_SESSION_DAYS:
            growth = math.exp(w[17] * (rating - 3 + w[18])) * s ** -w[19]
            if rating >= 2:
                growth = max(growth, 1.0)
            new_s = s * growth
        else:
            r = self.retrievability(memory, now)
            if rating == 1:
                new_s = min(
                    w[11] * d ** -w[12] * ((s + 1) ** w[13] - 1) * math.exp((1 - r) * w[14]),
                    s / math.exp(w[17] * w[18]),
                )
            else:
                bonus = (w[15] if rating == 2 else 1.0) * (w[16] if rating == 4 else 1.0)
                new_s = s * (1 + math.exp(w[8]) * (11 - d) * s ** -w[9] * (math.exp((1 - r) * w[10]) - 1) * bonus)
        change = -w[6] * (rating - 3)
        damped = d + change * (10 - d) / 9
        new_d = w[7] * self._initial_difficulty(4, clamp=False) + (1 - w[7]) * damped
        return Memory(max(new_s, 0.001), min(max(new_d, 1.0), 10.0), now)

    def _initial_difficulty(self, rating: int, *, clamp: bool = True) -> float:
        d = self.w[4] - math.exp(self.w[5] * (rating - 1)) + 1
        return min(max(d, 1.0), 10.0) if clamp else d
