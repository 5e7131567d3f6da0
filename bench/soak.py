"""Soak: 10,000 answers with the answering process killed (SIGKILL) at random moments.

A child process answers cards in a loop and prints `ack N` after each answer's transaction has
committed. The parent kills it at a random moment every few hundred answers and starts a new one,
until 10,000 answers were acknowledged. Then: every acknowledged answer must be in the review log
(nothing lost); the log may hold at most one more answer per kill (committed, killed before its
`ack` was printed); and the database must pass `PRAGMA integrity_check`.

    python bench/soak.py [--answers 10000] [--concepts 300]
"""

from __future__ import annotations

import argparse
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from kb.config import Settings
from kb.service import KnowledgeBase

home, deck, start = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
clock = [datetime(2026, 1, 1, 12, tzinfo=timezone.utc) + timedelta(minutes=start)]
kb = KnowledgeBase(Settings(home=home, bundled_content=deck, timezone="UTC", new_per_day=100000,
                            reviews_per_day=100000), clock=lambda: clock[0])
kb.sync()
n = start
while True:
    queue = kb.due_queue()
    if not queue:
        clock[0] += timedelta(hours=6)
        continue
    kb.answer(queue[0].card_id, 1 + n % 4, duration_ms=1000)
    n += 1
    print(f"ack {n}", flush=True)
    clock[0] += timedelta(minutes=1)
"""


def write_deck(deck: Path, concepts: int) -> None:
    for i in range(concepts):
        path = deck / "fundamentals" / f"soak-{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            textwrap.dedent(f"""\
            id: soak-{i}
            title: {{en: Soak concept {i}, zh: 浸泡测试{i}}}
            summary: {{en: A concept for the soak test., zh: 浸泡测试用的概念。}}
            category: fundamentals
            definition: Soak test concept number {i}.
            cards:
              - {{type: basic, id: q, front: Question {i}?, back: Answer {i}.}}
            """),
            encoding="utf-8",
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=10_000)
    parser.add_argument("--concepts", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        home, deck = Path(tmp) / "home", Path(tmp) / "deck"
        write_deck(deck, args.concepts)
        acked = kills = 0
        started = time.perf_counter()
        while acked < args.answers:
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(home), str(deck), str(acked)], stdout=subprocess.PIPE, cwd=ROOT
            )
            assert child.stdout is not None
            fd = child.stdout.fileno()
            # Kill at a random moment once it answers: after 50-400 answers' worth of time.
            quota = rng.randint(50, 400)
            seen, buffer = 0, b""
            while seen < quota and acked + seen < args.answers:
                ready, _, _ = select.select([fd], [], [], 5.0)
                if not ready:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise SystemExit(f"the answering process died on its own (exit {child.wait()})")
                buffer += chunk
                seen = buffer.count(b"ack ")
            time.sleep(rng.uniform(0, 0.01))  # land the kill anywhere, also inside a transaction
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            buffer += child.stdout.read()
            child.stdout.close()
            acked += buffer.count(b"\n")  # a complete "ack N" line only
            kills += 1
        elapsed = time.perf_counter() - started
        conn = sqlite3.connect(home / "kb.sqlite")
        stored = conn.execute("SELECT count(*) FROM review_log").fetchone()[0]
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
    lost = max(0, acked - stored)
    print(f"{acked:,} answers acknowledged, {kills} kills (SIGKILL at random moments), {elapsed:.0f} s")
    print(
        f"review log: {stored:,} rows; lost: {lost}; stored but unacknowledged: {stored - acked} "
        f"(at most one per kill allowed: the commit landed, the kill came before its ack)"
    )
    print(f"integrity_check: {integrity}")
    ok = lost == 0 and 0 <= stored - acked <= kills and integrity == "ok"
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
