"""Benchmark: TUI start-up, beside an empty Textual app measured in the same run.

Each figure is the median of several fresh processes (headless, 100x30), timed from the first line
of the child script (before any import) to:
- first frame: the app is ready with its first screen (`run_test` yields);
- list filled: the concept list shows concepts (the list cached at the last run, before the store
  is even imported; on a first run, the list from the store);
- store open: the knowledge base is open and synced in its worker and its list is shown;
- open concept: from the enter key on the list to the concept screen painted with its definition,
  pressed once the app has done its first-use imports in the background (about a second after the
  store opens: a person choosing a concept takes longer); the first open, then the median of
  opening four other concepts from the list.
The empty app and kb run alternately, so that the machine's load swings hit both alike.
Budgets: first frame within 1.3x of the empty app, list within 3x (bundled content) and 4x
(10,000 generated entries), opening a concept within 150 ms.

    python bench/startup.py [--runs 9] [--entries 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EMPTY = """
import time; t0 = time.perf_counter()
import asyncio, json
from textual.app import App
from textual.widgets import Footer, Header, OptionList

class Empty(App):
    def compose(self):
        yield Header(); yield OptionList(); yield Footer()

async def main():
    async with Empty().run_test(size=(100, 30)) as pilot:
        print(json.dumps({"first_frame": time.perf_counter() - t0}))
asyncio.run(main())
"""

KB_APP = """
import time; t0 = time.perf_counter()
import asyncio, json, sys
from pathlib import Path
from app.app import KBApp
from kb.config import Settings

async def main():
    settings = Settings(home=Path(sys.argv[1]), bundled_content=Path(sys.argv[2]))
    app = KBApp(settings, watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        first = time.perf_counter() - t0  # run_test yields once the first screen is up
        options = app.screen.query_one("#concepts")
        while options.option_count == 0:
            await asyncio.sleep(0.005)
        filled = time.perf_counter() - t0
        while app.kb is None or app.screen.query_one("#concepts").option_count == 0:
            await asyncio.sleep(0.005)  # the cached list shows first; open once the store is ready
        live = time.perf_counter() - t0  # the store is open and synced, its list shown
        app.warmed_up.wait(60)
        await pilot.pause(0.3)
        from app.screens.concept import ConceptScreen
        opens = []
        for index in range(5):
            options = app.screen.query_one("#concepts")
            options.highlighted = index * 7 % options.option_count
            await pilot.pause()
            start = time.perf_counter()
            await pilot.press("enter")
            while not (isinstance(app.screen, ConceptScreen) and app.screen.concept is not None):
                await asyncio.sleep(0.002)
            await pilot.pause(0)  # painted
            opens.append(time.perf_counter() - start)
            await pilot.press("escape")
            await pilot.pause(0.2)
        print(json.dumps({"first_frame": first, "list_filled": filled, "live": live, "open_concept": opens[0],
                          "open_again": sorted(opens[1:])[len(opens[1:]) // 2], "concepts": options.option_count}))
asyncio.run(main())
"""


def run(script: str, *args: str) -> dict:
    # Bytecode is cached as it is for an installed package (pip compiles it): with
    # PYTHONDONTWRITEBYTECODE set, as on some CI machines, every run would compile kb's modules anew.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def beside_empty(runs: int, *kb_args: str) -> tuple[float, dict]:
    """kb's figures as medians, each time as a ratio to an empty app run just before it.

    The ratio of each pair, then their median: on a machine whose load swings, both runs of a pair
    meet the same load, which the ratio cancels.
    """
    pairs = []
    for _ in range(runs):
        empty = run(EMPTY)["first_frame"]
        pairs.append((empty, run(KB_APP, *kb_args)))
    figures = {key: statistics.median(kb[key] for _, kb in pairs) for key in pairs[0][1]}
    ratios = {
        key: statistics.median(kb[key] / empty for empty, kb in pairs) for key in ("first_frame", "list_filled", "live")
    }
    return statistics.median(empty for empty, _ in pairs), {**figures, "ratio": ratios}


def generated_deck(root: Path, n: int) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    import random

    from sync import entry_text  # the same generated entries as bench/sync.py

    from kb.schema import CATEGORIES

    rng = random.Random(0)
    for i in range(n):
        path = root / CATEGORIES[i % len(CATEGORIES)] / f"concept-{i}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(entry_text(i, rng), encoding="utf-8")
    return root


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        run(KB_APP, str(home), str(ROOT / "content"))  # first run: create the database, sync
        empty, bundled = beside_empty(args.runs, str(home), str(ROOT / "content"))
        big_home = Path(tmp) / "big-home"
        deck = generated_deck(Path(tmp) / "deck", args.entries)
        run(KB_APP, str(big_home), str(deck))  # the first full load is bench/sync.py's business
        _, big = beside_empty(max(3, args.runs // 2), str(big_home), str(deck))
    print(f"empty Textual app, first frame: {empty * 1e3:6.0f} ms (baseline; ratios are medians of paired runs)")
    for label, kb, list_budget in (
        (f"bundled content ({bundled['concepts']:.0f} concepts)", bundled, 3),
        (f"{args.entries:,} generated entries", big, 4),
    ):
        ratio = kb["ratio"]
        print(f"kb, {label}:")
        print(f"  first frame   {kb['first_frame'] * 1e3:6.0f} ms  {ratio['first_frame']:4.2f}x  (budget 1.3x)")
        print(
            f"  list filled   {kb['list_filled'] * 1e3:6.0f} ms  {ratio['list_filled']:4.2f}x  (budget {list_budget}x)"
        )
        print(f"  store open    {kb['live'] * 1e3:6.0f} ms  {ratio['live']:4.2f}x  (synced; its list shown)")
        print(
            f"  open concept  {kb['open_concept'] * 1e3:6.0f} ms first, {kb['open_again'] * 1e3:.0f} ms then "
            "(enter to the concept screen painted; budget 150 ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
