"""Benchmark: today's queue and recording an answer with 100,000 cards and a review history.

Rows are generated straight into a fresh kb database (25,000 concepts x 4 cards, 70% of the cards
already in review with due dates spread over +-60 days, 3 reviews each in the log). Each figure is
printed beside a plain-SQL baseline measured in the same run:
- queue: a bare `SELECT ... WHERE state = 'review' AND due < ? ORDER BY due LIMIT 200` on card_state;
- answer: a bare INSERT of one review_log row in its own transaction.
Budgets, so that opening the quiz and answering a card feel instant: queue under 50 ms, answer under 5 ms.

    python bench/daily_queue.py [--cards 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kb.config import Settings
from kb.schema import CATEGORIES
from kb.service import KnowledgeBase

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def populate(db: Path, cards: int, rng: random.Random, user: str) -> None:
    per_concept = 4
    concepts = cards // per_concept
    conn = sqlite3.connect(db)
    stamp = iso(NOW - timedelta(days=90))
    with conn:
        conn.executemany(
            "INSERT INTO concept (id, deck_path, source_path, category, title_en, title_zh, data_json, content_hash, "
            "snippet_line_offset, prerequisites_json, retired, created_at, updated_at) "
            "VALUES (?, 'deck', ?, ?, ?, ?, ?, 'h', 0, '[]', 0, ?, ?)",
            [
                (
                    f"c{i}",
                    f"c{i}.yaml",
                    CATEGORIES[i % 9],
                    f"Concept {i}",
                    f"概念{i}",
                    json.dumps({"id": f"c{i}", "category": CATEGORIES[i % 9]}),
                    stamp,
                    stamp,
                )
                for i in range(concepts)
            ],
        )
        conn.executemany(
            "INSERT INTO card (pk, card_id, concept_id, key, kind, position, order_key, content_hash, payload_json, "
            "retired, created_at, updated_at) VALUES (?, ?, ?, ?, 'basic', ?, ?, 'h', '{}', 0, ?, ?)",
            [
                (i * per_concept + j + 1, f"c{i}/k{j}", f"c{i}", f"k{j}", j, f"{i % 9:02d}/c{i}/{j:04d}", stamp, stamp)
                for i in range(concepts)
                for j in range(per_concept)
            ],
        )
        states, logs = [], []
        for pk in range(1, cards + 1):
            if rng.random() < 0.7:
                due = NOW + timedelta(days=rng.uniform(-60, 60))
                # History ends before today, so today's limits are untouched.
                last = min(due - timedelta(days=rng.uniform(1, 30)), NOW - timedelta(days=1, hours=12))
                data = {
                    "state": "review",
                    "step": None,
                    "stability": 10.0,
                    "difficulty": 5.0,
                    "due": due.isoformat(),
                    "last_review": last.isoformat(),
                    "reps": 3,
                    "lapses": 0,
                }
                states.append((pk, "review", iso(due), 0, 3, 0, 0, json.dumps(data)))
                for r in range(3):
                    logs.append((pk, 3, iso(last - timedelta(days=10 * r)), 5000, "h", r == 2, None, None))
        conn.executemany(
            "INSERT INTO card_state (card_pk, state, due, lapses, reps, suspended, leech, data_json, user_name) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, user) for row in states],
        )
        conn.executemany(
            "INSERT INTO review_log (card_pk, rating, reviewed_at, duration_ms, content_hash, was_new, "
            "state_before, state_after, user_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, user) for row in logs],
        )
    conn.execute("ANALYZE")
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        clock_now = [NOW]
        settings = Settings(home=Path(tmp) / "home", bundled_content=Path(tmp) / "empty", timezone="UTC")
        with KnowledgeBase(settings, clock=lambda: clock_now[0]) as kb:
            _ = kb.engine  # create the schema
            populate(settings.db_path, args.cards, rng, settings.user_name)
            raw = sqlite3.connect(settings.db_path, isolation_level=None)
            raw.execute("PRAGMA journal_mode=WAL")
            raw.execute("PRAGMA synchronous=FULL")

            def baseline_queue():
                raw.execute(
                    "SELECT card_pk FROM card_state WHERE state = 'review' AND due < ? ORDER BY due LIMIT 200",
                    (iso(NOW + timedelta(hours=13)),),
                ).fetchall()

            def timed(fn) -> float:
                start = time.perf_counter()
                fn()
                return time.perf_counter() - start

            base_q = [timed(baseline_queue) for _ in range(args.repeat)]
            queue_t = [timed(kb.due_queue) for _ in range(args.repeat)]
            queue = kb.due_queue()

            def baseline_answer():
                raw.execute("BEGIN IMMEDIATE")
                raw.execute(
                    "INSERT INTO review_log (card_pk, rating, reviewed_at, duration_ms, content_hash, was_new, user_name) "
                    "VALUES (1, 3, ?, 1000, 'h', 0, ?)",
                    (iso(NOW), settings.user_name),
                )
                raw.execute("COMMIT")

            base_a = [timed(baseline_answer) for _ in range(args.repeat)]
            answer_t = []
            for entry in queue[: args.repeat]:
                answer_t.append(timed(lambda e=entry: kb.answer(e.card_id, 3, duration_ms=1000)))
            raw.close()
    q50, b50 = statistics.median(queue_t) * 1e3, statistics.median(base_q) * 1e3
    a50, ab50 = statistics.median(answer_t) * 1e3, statistics.median(base_a) * 1e3
    print(f"cards: {args.cards:,}, queue length: {len(queue)} (200 reviews + 20 new)")
    print(
        f"build today's queue: p50 {q50:6.2f} ms  max {max(queue_t) * 1e3:6.2f} ms   "
        f"baseline bare SELECT p50 {b50:5.2f} ms ({q50 / b50:.1f}x)   budget 50 ms"
    )
    print(
        f"record an answer:    p50 {a50:6.2f} ms  max {max(answer_t) * 1e3:6.2f} ms   "
        f"baseline bare INSERT+COMMIT p50 {ab50:5.2f} ms ({a50 / ab50:.1f}x)   budget 5 ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
