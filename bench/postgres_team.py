"""Benchmark: what a lab on one PostgreSQL server does, beside SQLite in the same run.

1. No-op sync at N generated entries (default 10,000; the entries of bench/sync.py): the sync every
   `kb` start does, on SQLite and on PostgreSQL, median of 5.
2. Two users answering at once for a while (default 60 s): two processes, each a KnowledgeBase of
   its own user, answer the cards their queue shows as fast as they can; at the end the review log
   must hold exactly the answers each process says it stored, under its user (as `kb stats` counts).

    python bench/postgres_team.py [--entries 10000] [--seconds 60] [--url postgresql+psycopg://...]

Without --url a throw-away cluster is started (tests/pgcluster.py; fsync off).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))
sys.path.append(str(ROOT / "tests"))  # after the real kb: tests/kb is a folder of tests


def write_deck(root: Path, entries: int) -> Path:
    from sync import entry_text  # type: ignore[import-not-found]

    from kb.schema import CATEGORIES

    rng = random.Random(0)
    deck = root / "deck"
    for i in range(entries):
        path = deck / CATEGORIES[i % len(CATEGORIES)] / f"concept-{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(entry_text(i, rng), encoding="utf-8")
    return deck


def noop_sync(home: Path, deck: Path, url: str | None) -> tuple[float, float]:
    from kb.config import Settings
    from kb.service import KnowledgeBase

    settings = Settings(home=home, bundled_content=deck, database_url=url)
    with KnowledgeBase(settings, clock=lambda: datetime.now(timezone.utc)) as kb:
        start = time.perf_counter()
        kb.sync()
        full = time.perf_counter() - start
        times = []
        for _ in range(5):
            start = time.perf_counter()
            kb.sync()
            times.append(time.perf_counter() - start)
    return full, statistics.median(times)


def answer_for(args: tuple[str, Path, Path, str | None, float]) -> int:
    """One user's process: answer whatever the queue shows until the time is up; the count stored."""
    user, home, deck, url, seconds = args
    from kb.config import Settings
    from kb.service import KnowledgeBase
    from kb.service.study import AnsweredElsewhere

    settings = Settings(
        home=home, bundled_content=deck, database_url=url, user=user, new_per_day=100_000, bury_new_siblings=False
    )
    stored = 0
    deadline = time.monotonic() + seconds
    with KnowledgeBase(settings, clock=lambda: datetime.now(timezone.utc)) as kb:
        while time.monotonic() < deadline:
            item = kb.next_quiz_item()
            if item is None:
                break
            try:
                kb.answer(item.card.card_id, 3, shown_state=item.shown_state)
                stored += 1
            except AnsweredElsewhere:
                pass
    return stored


def two_users(root: Path, deck: Path, url: str | None, seconds: float) -> dict:
    from kb.config import Settings
    from kb.service import KnowledgeBase

    home = root / ("pg" if url else "sqlite")
    jobs = [
        ("ada", home / "ada" if url else home, deck, url, seconds),
        ("bo", home / "bo" if url else home, deck, url, seconds),
    ]
    for user, user_home, *_ in jobs:  # the database and each user's first sync, before the clock starts
        with KnowledgeBase(Settings(home=user_home, bundled_content=deck, database_url=url, user=user)) as kb:
            kb.sync()
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        counts = pool.map(answer_for, jobs)
    logged = {}  # each user's reviews as kb stats counts them
    for user, user_home, *_ in jobs:
        with KnowledgeBase(Settings(home=user_home, bundled_content=deck, database_url=url, user=user)) as kb:
            logged[user] = kb.stats()["reviews_total"]
    return {"ada": counts[0], "bo": counts[1], "logged": logged}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    cluster = None
    url = args.url
    if url is None:
        from pgcluster import Cluster  # type: ignore[import-not-found]

        cluster = Cluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            deck = write_deck(root, args.entries)
            sqlite_full, sqlite_noop = noop_sync(root / "sqlite-sync", deck, None)
            pg_url = url or cluster.create_database()
            pg_full, pg_noop = noop_sync(root / "pg-sync", deck, pg_url)
            print(f"{args.entries} entries: full load  SQLite {sqlite_full:.2f} s, PostgreSQL {pg_full:.2f} s")
            print(
                f"{args.entries} entries: no-op sync SQLite {sqlite_noop * 1e3:.0f} ms, PostgreSQL {pg_noop * 1e3:.0f} ms"
            )
            small = write_deck(root / "small", 3000)  # more cards than two people answer in a minute
            for label, target in (("SQLite", None), ("PostgreSQL", url or cluster.create_database())):
                result = two_users(root / label, small, target, args.seconds)
                ok = result["logged"] == {"ada": result["ada"], "bo": result["bo"]}
                print(
                    f"two users for {args.seconds:.0f} s on {label}: ada {result['ada']}, bo {result['bo']} answers "
                    f"stored; review log {result['logged']} ({'every answer once' if ok else 'MISMATCH'})"
                )
                if not ok:
                    return 1
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
