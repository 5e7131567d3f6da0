"""Fill a knowledge base with a simulated learner's daily quizzes, through kb's own service.

The learner's memory follows FSRS-6 with perturbed weights (bench/learners.py); each evening it
takes the day's quiz at 20:00 +- 2 h in its time zone. Useful to try `kb stats` and `kb optimize`
on a realistic history:

    python bench/simulated_history.py --home /tmp/kb-sim --days 120
    KB_HOME=/tmp/kb-sim kb optimize
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from learners import Learner, perturbed_weights  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="the KB_HOME to fill (made if missing)")
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--tz", default="Europe/Berlin")
    args = parser.parse_args()

    from kb.config import Settings
    from kb.service import KnowledgeBase

    zone = ZoneInfo(args.tz)
    rng = random.Random(args.seed)
    learner = Learner(perturbed_weights(np.random.default_rng(args.seed)))
    first = (datetime.now(timezone.utc) - timedelta(days=args.days)).astimezone(zone).date()
    origin = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    now = [origin]
    settings = Settings(home=args.home, timezone=args.tz)
    memories: dict[str, object] = {}
    answered = 0
    with KnowledgeBase(settings, clock=lambda: now[0]) as kb:
        kb.sync()
        for day in range(args.days):
            now[0] = (origin + timedelta(days=day, hours=20 + rng.uniform(-2, 2))).astimezone(timezone.utc)
            for _ in range(1000):
                queue = kb.due_queue()
                if not queue:
                    break
                card_id = queue[0].card_id
                t = (now[0] - origin).total_seconds() / 86400
                rating = learner.rating(memories.get(card_id), t, rng.random(), rng.random())
                memories[card_id] = learner.remember(memories.get(card_id), rating, t)
                kb.answer(card_id, rating)
                answered += 1
                now[0] += timedelta(seconds=rng.uniform(5, 20))
            print(f"\rday {day + 1}/{args.days}: {answered} answers", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
