"""Benchmark: TUI start-up, beside an empty Textual app measured in the same run.

Each figure is the median of several fresh processes (headless, 100x30), timed from the first line
of the child script (before any import) to:
- first frame: the app is ready with its first screen (`run_test` yields);
- list filled: the concept list shows concepts (the list cached at the last run, before the store
  is even imported; on a first run, the list from the store);
- store open: the knowledge base is open and synced in its worker and its list is shown;
- open concept: from the enter key on the list to the concept screen showing its definition.
Budgets (ARCHITECTURE.md / issue 5): first frame within 1.5x of the empty app, list within 3x
(bundled content) and 4x (10,000 generated entries).

    python bench/startup.py [--runs 5] [--entries 10000]
"""

from __future__ import annotations

import argparse
import json
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
        await pilot.pause()
        start = time.perf_counter()
        await pilot.press("enter")
        from app.screens.concept import ConceptScreen
        while not (isinstance(app.screen, ConceptScreen) and app.screen.concept is not None):
            await asyncio.sleep(0.002)
        opened = time.perf_counter() - start
        print(json.dumps({"first_frame": first, "list_filled": filled, "live": live, "open_concept": opened,
                          "concepts": options.option_count}))
asyncio.run(main())
"""


def run(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_of(runs: int, script: str, *args: str) -> dict:
    results = [run(script, *args) for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


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
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        run(KB_APP, str(home), str(ROOT / "content"))  # first run: create the database, sync
        empty = median_of(args.runs, EMPTY)["first_frame"]
        bundled = median_of(args.runs, KB_APP, str(home), str(ROOT / "content"))
        big_home = Path(tmp) / "big-home"
        deck = generated_deck(Path(tmp) / "deck", args.entries)
        run(KB_APP, str(big_home), str(deck))  # the first full load is bench/sync.py's business
        big = median_of(max(1, args.runs // 2), KB_APP, str(big_home), str(deck))
    print(f"empty Textual app, first frame: {empty * 1e3:6.0f} ms (baseline)")
    print(f"kb, bundled content ({bundled['concepts']:.0f} concepts):")
    print(f"  first frame   {bundled['first_frame'] * 1e3:6.0f} ms  {bundled['first_frame'] / empty:4.2f}x  (budget 1.5x)")
    print(f"  list filled   {bundled['list_filled'] * 1e3:6.0f} ms  {bundled['list_filled'] / empty:4.2f}x  (budget 3x)")
    print(f"  store open    {bundled['live'] * 1e3:6.0f} ms  {bundled['live'] / empty:4.2f}x  (synced; its list shown)")
    print(f"  open concept  {bundled['open_concept'] * 1e3:6.0f} ms  (enter to the concept screen filled)")
    print(f"kb, {args.entries:,} generated entries:")
    print(f"  first frame   {big['first_frame'] * 1e3:6.0f} ms  {big['first_frame'] / empty:4.2f}x  (budget 1.5x)")
    print(f"  list filled   {big['list_filled'] * 1e3:6.0f} ms  {big['list_filled'] / empty:4.2f}x  (budget 4x)")
    print(f"  store open    {big['live'] * 1e3:6.0f} ms  {big['live'] / empty:4.2f}x  (synced; its list shown)")
    print(f"  open concept  {big['open_concept'] * 1e3:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
