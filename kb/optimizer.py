"""Fit FSRS-6 weights to a review history, counted in study days: `python -m kb.optimizer`.

The process reads {"reviews": [[card, rating, study day], ...], "current": [21 weights] or null} on
stdin, oldest review first, each study day a date's ordinal as the caller counts study days (its
time zone and rollover hour), and prints a JSON report (see `fit`).
It imports torch, so it runs in its own process: no UI process ever imports torch.

How the fit works, and why:
- Time between reviews is the number of study days between them, as the scheduler counts it (the
  `fsrs` package's optimizer counts 24-hour periods, so an evening review a few minutes earlier
  than the day before looks like a same-day review and is dropped).
- Every review of a card updates its memory state as FSRS-6 does, same-day reviews with the
  short-term formula; each review on a later study day than the one before is a prediction of
  recall, and the weights minimise the mean log loss of those predictions (full batch, Adam, a
  cosine learning-rate schedule, weights clipped to the fsrs package's bounds after each step).
- With little history, the weights are pulled towards the defaults (an L2 penalty that shrinks as
  reviews accumulate): a month of reviews says little about year-long intervals.
- The report gives the log loss and RMSE(bins) of the default, the current and the fitted weights
  on the same history; the caller keeps whichever has the lowest log loss.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone, tzinfo

from fsrs.scheduler import DEFAULT_PARAMETERS, LOWER_BOUNDS_PARAMETERS, UPPER_BOUNDS_PARAMETERS

# FSRS-6's published default weights, and the bounds the fsrs package clips fitted weights to.
DEFAULT_WEIGHTS = tuple(DEFAULT_PARAMETERS)
LOWER_BOUNDS = tuple(LOWER_BOUNDS_PARAMETERS)
UPPER_BOUNDS = tuple(UPPER_BOUNDS_PARAMETERS)
MIN_INTER_DAY_REVIEWS = 400  # below this, a fit says more about noise than about the learner
MAX_REVIEWS_PER_CARD = 128
PROGRESS_PREFIX = "progress "  # a line of the subprocess's stderr: "progress 40/400"
ITERATIONS = 400
LEARNING_RATE = 0.04
# The pull towards the defaults: PRIOR_REVIEWS reviews' worth of weight on the squared distance, in
# units of each weight's plausible range (a fifth of its bounds' width).
PRIOR_REVIEWS = 1000.0


@dataclass(frozen=True)
class Sequences:
    """Each card's reviews: study days since the previous review (0 for the first) and ratings."""

    deltas: list[list[int]]
    ratings: list[list[int]]

    @property
    def inter_day_reviews(self) -> int:
        return sum(1 for row in self.deltas for i, d in enumerate(row) if i and d > 0)

    @property
    def reviews(self) -> int:
        return sum(len(row) for row in self.deltas)


@dataclass(frozen=True)
class Evaluation:
    log_loss: float
    rmse_bins: float


@dataclass(frozen=True)
class FitReport:
    fitted: bool  # whether weights were fitted (False: too little history; `weights` are the current ones)
    weights: list[float]  # the weights to use from now on (the best of default, current and fitted)
    chosen: str  # "fitted", "current" or "default"
    reviews: int
    inter_day_reviews: int
    cards: int
    default: Evaluation | None
    current: Evaluation | None
    candidate: Evaluation | None  # the fitted weights' evaluation, even when they were not kept
    message: str


def sequences(reviews, *, zone: tzinfo = timezone.utc, rollover_hour: int = 4) -> Sequences:
    """Group (card, rating, when) rows by card, oldest first, in study days.

    `when` is a moment (a datetime or ISO text, placed in a study day by `zone` and `rollover_hour`)
    or already a study day's ordinal (an int). Rows of one card keep their order within a day.
    """
    from kb.studyday import study_day

    def day_number(when) -> int:
        if isinstance(when, int):
            return when
        if isinstance(when, str):
            when = datetime.fromisoformat(when)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return study_day(when, tz=zone, rollover_hour=rollover_hour).toordinal()

    by_card: dict[object, list[tuple[int, int]]] = {}
    for card, rating, when in reviews:
        by_card.setdefault(card, []).append((day_number(when), int(rating)))
    deltas, ratings = [], []
    for rows in by_card.values():
        rows.sort(key=lambda row: row[0])  # stable: same-day reviews keep their order
        rows = rows[:MAX_REVIEWS_PER_CARD]
        days = [day for day, _ in rows]
        deltas.append([0] + [b - a for a, b in zip(days, days[1:])])
        ratings.append([rating for _, rating in rows])
    return Sequences(deltas, ratings)


def _tensors(seqs: Sequences):
    import torch

    n, length = len(seqs.deltas), max((len(r) for r in seqs.deltas), default=0)
    delta = torch.zeros((length, n), dtype=torch.float64)
    rating = torch.zeros((length, n), dtype=torch.long)
    for j, (ds, rs) in enumerate(zip(seqs.deltas, seqs.ratings)):
        delta[: len(ds), j] = torch.tensor(ds, dtype=torch.float64)
        rating[: len(rs), j] = torch.tensor(rs, dtype=torch.long)
    return delta, rating


def _predictions(w, delta, rating):
    """Predicted recall, outcome and a mask of the inter-day reviews, each (length, cards)."""
    import torch

    length, n = delta.shape
    decay = -w[20]
    factor = 0.9 ** (1 / decay) - 1
    clamp_s = lambda s: s.clamp(min=0.001)  # noqa: E731
    clamp_d = lambda d: d.clamp(1.0, 10.0)  # noqa: E731
    initial_d = lambda g: w[4] - torch.exp(w[5] * (g - 1)) + 1  # noqa: E731
    predicted, outcome, counted = [], [], []
    s = d = None
    for t in range(length):
        g = rating[t]
        present = g > 0
        gf = g.clamp(min=1).to(torch.float64)
        if t == 0:
            s = clamp_s(w[:4][g.clamp(min=1) - 1])
            d = clamp_d(initial_d(gf))
            continue
        dt = delta[t]
        r = (1 + factor * dt / s) ** decay
        inter_day = present & (dt > 0)
        predicted.append(r)
        outcome.append((g > 1).to(torch.float64))
        counted.append(inter_day)
        recall_s = s * (
            1
            + torch.exp(w[8])
            * (11 - d)
            * s ** -w[9]
            * (torch.exp((1 - r) * w[10]) - 1)
            * torch.where(g == 2, w[15], torch.ones_like(s))
            * torch.where(g == 4, w[16], torch.ones_like(s))
        )
        forget_s = torch.minimum(
            w[11] * d ** -w[12] * ((s + 1) ** w[13] - 1) * torch.exp((1 - r) * w[14]), s / torch.exp(w[17] * w[18])
        )
        long_s = torch.where(g > 1, recall_s, forget_s)
        growth = torch.exp(w[17] * (gf - 3 + w[18])) * s ** -w[19]
        growth = torch.where(g > 1, growth.clamp(min=1.0), growth)
        short_s = s * growth
        new_s = clamp_s(torch.where(dt > 0, long_s, short_s))
        damped = d + (-w[6] * (gf - 3)) * (10 - d) / 9
        new_d = clamp_d(w[7] * initial_d(torch.tensor(4.0, dtype=torch.float64)) + (1 - w[7]) * damped)
        s = torch.where(present, new_s, s)
        d = torch.where(present, new_d, d)
    if not predicted:
        empty = torch.zeros((0, n), dtype=torch.float64)
        return empty, empty, empty.bool()
    return torch.stack(predicted), torch.stack(outcome), torch.stack(counted)


def evaluate(weights, seqs: Sequences) -> Evaluation | None:
    """Log loss and RMSE(bins) of `weights` on the inter-day reviews of `seqs` (None without any).

    RMSE(bins): reviews grouped by interval, number of earlier reviews and lapses, each on a
    logarithmic scale; the root of the count-weighted mean squared gap between the mean predicted
    and the observed recall of each group (the measure of the FSRS benchmarks and Anki).
    """
    import torch

    delta, rating = _tensors(seqs)
    with torch.no_grad():
        w = torch.tensor(weights, dtype=torch.float64)
        p, y, mask = _predictions(w, delta, rating)
    if not bool(mask.any()):
        return None
    p_m, y_m = p[mask].clamp(1e-6, 1 - 1e-6), y[mask]
    log_loss = float(-(y_m * torch.log(p_m) + (1 - y_m) * torch.log(1 - p_m)).mean())
    # Bins: (interval, reviews before, lapses before), each bucketed on a log scale.
    bins: dict[tuple, list[float]] = {}
    positions = mask.nonzero().tolist()
    for t, j in positions:
        card_ratings = seqs.ratings[j]
        before = card_ratings[: t + 1]
        lapses = sum(1 for i, g in enumerate(before) if i and g == 1 and seqs.deltas[j][i] > 0)
        key = (_bucket(seqs.deltas[j][t + 1]), _bucket(t + 1), _bucket(lapses))
        entry = bins.setdefault(key, [0.0, 0.0, 0])
        entry[0] += float(p[t, j])
        entry[1] += float(y[t, j])
        entry[2] += 1
    total = sum(c for _, _, c in bins.values())
    rmse = math.sqrt(sum(c * ((sp - sy) / c) ** 2 for sp, sy, c in bins.values()) / total)
    return Evaluation(round(log_loss, 5), round(rmse, 5))


def _bucket(x: float) -> float:
    if x <= 0:
        return 0.0
    return round(2.48 * 3.62 ** math.floor(math.log(x) / math.log(3.62)), 2)


def fit_weights(seqs: Sequences, *, start=DEFAULT_WEIGHTS, iterations: int = ITERATIONS, on_step=None) -> list[float]:
    """Weights minimising the log loss of `seqs`' inter-day reviews plus the pull to the defaults.

    `on_step(done, iterations)`, if given, is called after each step (for a progress bar).
    """
    import torch

    delta, rating = _tensors(seqs)
    lower = torch.tensor(LOWER_BOUNDS, dtype=torch.float64)
    upper = torch.tensor(UPPER_BOUNDS, dtype=torch.float64)
    prior = torch.tensor(DEFAULT_WEIGHTS, dtype=torch.float64)
    scale = (upper - lower) / 5
    w = torch.tensor(start, dtype=torch.float64).clamp(lower, upper).requires_grad_(True)
    n = max(seqs.inter_day_reviews, 1)
    optimizer = torch.optim.Adam([w], lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=iterations)
    for step in range(iterations):
        optimizer.zero_grad()
        p, y, mask = _predictions(w, delta, rating)
        p_m = p[mask].clamp(1e-6, 1 - 1e-6)
        y_m = y[mask]
        loss = -(y_m * torch.log(p_m) + (1 - y_m) * torch.log(1 - p_m)).mean()
        loss = loss + (PRIOR_REVIEWS / n) * (((w - prior) / scale) ** 2).mean()
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            w.clamp_(lower, upper)
        if on_step is not None:
            on_step(step + 1, iterations)
    return [round(float(x), 6) for x in w.detach()]


def fit(reviews, *, zone: tzinfo = timezone.utc, rollover_hour: int = 4, current=None, on_step=None) -> FitReport:
    """Fit, evaluate and choose: see the module's docstring."""
    seqs = sequences(reviews, zone=zone, rollover_hour=rollover_hour)
    current = list(current) if current else None
    inter_day = seqs.inter_day_reviews
    if inter_day < MIN_INTER_DAY_REVIEWS:
        kept = current or list(DEFAULT_WEIGHTS)
        return FitReport(
            False,
            kept,
            "current" if current else "default",
            seqs.reviews,
            inter_day,
            len(seqs.deltas),
            None,
            None,
            None,
            f"{inter_day} reviews on a later day than the card's previous one (of {seqs.reviews} "
            f"reviews); a fit needs at least {MIN_INTER_DAY_REVIEWS}. "
            f"Keeping the {'optimized' if current else 'default'} parameters.",
        )
    candidate = fit_weights(seqs, on_step=on_step)
    scored = {
        "default": (list(DEFAULT_WEIGHTS), evaluate(DEFAULT_WEIGHTS, seqs)),
        "fitted": (candidate, evaluate(candidate, seqs)),
    }
    if current:
        scored["current"] = (current, evaluate(current, seqs))
    chosen = min(scored, key=lambda k: _log_loss(scored[k][1]))
    message = {
        "fitted": f"fitted FSRS parameters to {inter_day} reviews on later days ({seqs.reviews} reviews of "
        f"{len(seqs.deltas)} cards); they are used from now on",
        "current": "the fitted parameters predict your history no better than the ones in use; keeping them",
        "default": "the fitted parameters predict your history no better than the defaults; using the defaults",
    }
    return FitReport(
        True,
        scored[chosen][0],
        chosen,
        seqs.reviews,
        inter_day,
        len(seqs.deltas),
        scored["default"][1],
        scored.get("current", (None, None))[1],
        scored["fitted"][1],
        message[chosen],
    )


def _log_loss(evaluation: Evaluation | None) -> float:
    return math.inf if evaluation is None else evaluation.log_loss


def main() -> int:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        print(f"the optimizer needs {exc.name}: pip install torch", file=sys.stderr)
        return 1
    request = json.load(sys.stdin)

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"{PROGRESS_PREFIX}{done}/{total}", file=sys.stderr, flush=True)

    report = fit(
        [(row[0], row[1], int(row[2])) for row in request["reviews"]], current=request.get("current"), on_step=progress
    )
    json.dump(asdict(report), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
