"""Fit FSRS parameters to a review history: run as `python -m kb.optimizer` (it imports torch).

Reads a JSON list of [card_id, rating, reviewed_at ISO, duration_ms] on stdin and prints the
parameters as a JSON list. A subprocess, so no UI process ever imports torch.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime


def main() -> int:
    try:
        from fsrs import Optimizer, Rating, ReviewLog
    except ImportError as exc:  # pandas/tqdm/torch are the optimizer's own extras
        print(f"the FSRS optimizer needs {exc.name}: pip install 'mlkb[optimizer]'", file=sys.stderr)
        return 1
    rows = json.load(sys.stdin)
    numbers: dict[str, int] = {}
    logs = [
        ReviewLog(card_id=numbers.setdefault(card, len(numbers) + 1), rating=Rating(rating),
                  review_datetime=datetime.fromisoformat(at), review_duration=duration)
        for card, rating, at, duration in rows
    ]
    parameters = Optimizer(logs).compute_optimal_parameters()
    json.dump([float(p) for p in parameters], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
