"""Benchmark: when a concept's recall cards come, for each new-card order, on the bundled deck.

A learner takes the daily quiz for --days days (20 new cards a day, the other settings default,
every answer Good, the learning steps waited out) under each `new_card_order`. Reported per order:
the concepts started, and for those started in the first week the study days from a concept's
definition to its first recall card (cloze, typed or choice), its median and 90th percentile, and
Softmax's.

    python bench/new_card_order.py [--days 21]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ORDERS = ("definition-first", "concept", "kind", "random")
RECALL = ("cloze", "typed", "choice")
START = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def simulate(order: str, days: int, home: Path) -> dict[str, dict[str, int]]:
    """{concept: {kind: first study day}}."""
    from kb.config import Settings
    from kb.service import KnowledgeBase

    clock = Clock(START)
    first: dict[str, dict[str, int]] = {}
    with KnowledgeBase(Settings(home=home, timezone="UTC", new_card_order=order), clock=clock) as kb:
        kb.sync()
        for day in range(days):
            clock.now = START + timedelta(days=day)
            for _ in range(400):
                item = kb.next_quiz_item()
                if item is None:
                    break
                card = item.card
                first.setdefault(card.concept_id, {}).setdefault(card.kind, day)
                kb.answer(card.card_id, 3)
                clock.now += timedelta(minutes=11)
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=21)
    args = parser.parse_args()
    print(f"{'order':<17} {'started':>7} {'recall after definition, days (median / p90)':>46} {'softmax':>8}")
    for order in ORDERS:
        with tempfile.TemporaryDirectory() as tmp:
            first = simulate(order, args.days, Path(tmp))
        gaps = []
        for kinds in first.values():
            start = kinds.get("definition")
            recall = [kinds[k] for k in RECALL if k in kinds]
            if start is not None and start < 7:
                gaps.append(min(recall) - start if recall else args.days - start)  # not yet: counted as the horizon
        gaps.sort()
        median = statistics.median(gaps) if gaps else float("nan")
        p90 = gaps[int(0.9 * (len(gaps) - 1))] if gaps else float("nan")
        softmax = first.get("softmax", {})
        soft = (
            min(softmax[k] for k in RECALL if k in softmax) - softmax["definition"]
            if "definition" in softmax and any(k in softmax for k in RECALL)
            else None
        )
        print(f"{order:<17} {len(first):>7} {f'{median:g} / {p90:g}':>46} {('-' if soft is None else str(soft)):>8}")
    print(f"('-': not within {args.days} days; a gap not closed by then counts as the days left)")


if __name__ == "__main__":
    main()
