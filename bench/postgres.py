"""Benchmark: the same kb on SQLite and on PostgreSQL, with 100,000 cards and a review history.

Rows are generated straight into each database, as bench/daily_queue.py does (25,000 concepts x 4
cards, 70% of the cards in review with due dates spread over +-60 days, 3 reviews each in the log),
plus each concept's search row (a title, an alias, a Chinese title and a short body). Figures per
backend: building today's queue, recording an answer (commit included), and search p50/p95 over a
mix of English words, a two-character Chinese term, a short prefix and two-term queries.

    python bench/postgres.py [--cards 100000] [--url postgresql+psycopg://...]

Without --url a throw-away cluster is started (tests/pgcluster.py: PostgreSQL's initdb and pg_ctl
must be installed); it runs with fsync off, so its answer figures are a lower bound.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kb.config import Settings
from kb.schema import CATEGORIES
from kb.service import KnowledgeBase
from kb.store.cjk import with_cjk_grams
from kb.store.dialect import is_postgres, run

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=timezone.utc)
WORDS = "attention softmax convolution gradient entropy kernel token layer norm residual pooling stride".split()
QUERIES = ["attention", "softmax weights", "卷积", "concept 1234", "gr", "entropy kernel", "概念12", "nothing-like-it"]


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def populate(kb: KnowledgeBase, cards: int, rng: random.Random) -> None:
    per_concept = 4
    concepts = cards // per_concept
    stamp = iso(NOW - timedelta(days=90))
    with kb.engine.begin() as conn:
        run(
            conn,
            "INSERT INTO concept (id, deck_path, source_path, category, title_en, title_zh, data_json, content_hash, "
            "snippet_line_offset, prerequisites_json, retired, created_at, updated_at) "
            "VALUES (?, 'deck', ?, ?, ?, ?, ?, 'h', 0, '[]', FALSE, ?, ?)",
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
        search = []
        for i in range(concepts):
            body = " ".join(rng.choice(WORDS) for _ in range(30)) + (" 卷积核" if i % 50 == 0 else "")
            search.append((f"c{i}", f"Concept {i}\n概念{i}", f"alias {i}", CATEGORIES[i % 9], body))
        run(conn, "INSERT INTO concept_fts (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)", search)
        if not is_postgres(conn):
            run(
                conn,
                "INSERT INTO concept_words (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)",
                [(r[0], *(with_cjk_grams(t) for t in r[1:])) for r in search],
            )
        run(
            conn,
            "INSERT INTO card (pk, card_id, concept_id, key, kind, position, order_key, content_hash, payload_json, "
            "retired, created_at, updated_at) VALUES (?, ?, ?, ?, 'basic', ?, ?, 'h', '{}', FALSE, ?, ?)",
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
                states.append((pk, "review", iso(due), 0, 3, False, False, json.dumps(data)))
                for r in range(3):
                    logs.append((pk, 3, iso(last - timedelta(days=10 * r)), 5000, "h", r == 2, None, None))
        run(
            conn,
            "INSERT INTO card_state (card_pk, state, due, lapses, reps, suspended, leech, data_json, user_name) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, kb.settings.user_name) for row in states],
        )
        run(
            conn,
            "INSERT INTO review_log (card_pk, rating, reviewed_at, duration_ms, content_hash, was_new, "
            "state_before, state_after, user_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*row, kb.settings.user_name) for row in logs],
        )
        if is_postgres(conn):
            # The serial behind card.pk: the rows above set pk by hand.
            run(conn, "SELECT setval(pg_get_serial_sequence('card', 'pk'), (SELECT max(pk) FROM card))")
    with kb.engine.begin() as conn:  # the planner's statistics (both run ANALYZE inside a transaction)
        conn.exec_driver_sql("ANALYZE")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1e3


def measure(name: str, settings: Settings, cards: int, repeat: int) -> dict:
    rng = random.Random(0)
    with KnowledgeBase(settings, clock=lambda: NOW) as kb:
        started = time.perf_counter()
        populate(kb, cards, rng)
        load_s = time.perf_counter() - started
        queue_t = [timed(kb.due_queue) for _ in range(repeat)]
        queue = kb.due_queue()
        answer_t = [timed(lambda e=e: kb.answer(e.card_id, 3, duration_ms=1000)) for e in queue[:repeat]]
        search_t = [timed(lambda q=q: kb.search(q)) for _ in range(max(1, repeat // len(QUERIES))) for q in QUERIES]
        hits = {q: [h.id for h in kb.search(q)][:3] for q in QUERIES}
    print(
        f"{name:10} load {load_s:5.1f} s | queue ({len(queue)}) p50 {p(queue_t, 0.5):7.2f} ms p95 {p(queue_t, 0.95):7.2f} ms"
        f" | answer p50 {p(answer_t, 0.5):6.2f} ms p95 {p(answer_t, 0.95):6.2f} ms"
        f" | search p50 {p(search_t, 0.5):7.2f} ms p95 {p(search_t, 0.95):7.2f} ms"
    )
    return hits


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--url", help="a PostgreSQL database to fill (its tables must not exist yet)")
    args = parser.parse_args()
    cluster = None
    url = args.url
    if url is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from pgcluster import Cluster

        cluster = Cluster()
        url = cluster.create_database()
    print(f"cards: {args.cards:,}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            common = {"bundled_content": Path(tmp) / "empty", "timezone": "UTC"}
            sqlite_hits = measure("sqlite", Settings(home=Path(tmp) / "a", **common), args.cards, args.repeat)
            pg_hits = measure(
                "postgresql", Settings(home=Path(tmp) / "b", database_url=url, **common), args.cards, args.repeat
            )
        for query in QUERIES:
            same = "same" if sqlite_hits[query] == pg_hits[query] else "differ"
            print(f"  top 3 for {query!r}: sqlite {sqlite_hits[query]} postgresql {pg_hits[query]} ({same})")
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
