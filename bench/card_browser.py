"""Benchmark: the card browser's first page at 100,000 cards, beside an empty DataTable.

In one headless app (120x34), alternately:
- baseline: push a screen holding an empty DataTable with the browser's ten columns, until it is
  mounted and painted;
- browser: push the card browser on every card of a knowledge base of N cards, until its table
  shows its first rows (the first page is one small read; the rest arrives in pages afterwards).
Both are timed from the push to the moment the table is first drawn (its `render_lines`, with rows
for the browser), so later work (the worker reading the other pages) is not counted in either. Reported: medians and the ratio (budget: within 4x), and how long the
whole list takes to fill. The knowledge base (N/20 generated concepts of 20 cards each) is built
once and kept in the folder given by --home.

    python bench/card_browser.py [--cards 100000] [--runs 7] [--home /tmp/kb-browser-bench]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

CARDS_PER_CONCEPT = 20  # 18 written + the definition and reverse cards every entry gets


def build(home: Path, cards: int) -> Path:
    deck = home / "deck"
    marker = home / f"built-{cards}"
    if marker.exists():
        return deck
    concepts = cards // CARDS_PER_CONCEPT
    for i in range(concepts):
        folder = deck / "fundamentals"
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            f"id: bench-{i:06d}",
            f"title: {{en: Bench concept {i}, zh: 基准概念{i}}}",
            f"summary: {{en: Generated concept number {i}., zh: 第{i}个生成的概念。}}",
            "category: fundamentals",
            f"definition: Generated concept {i}, here to make the card list long.",
            "cards:",
        ]
        lines += [
            f"  - {{type: basic, id: q{j}, front: 'Question {j} of concept {i}?', back: 'Answer {j}.'}}"
            for j in range(CARDS_PER_CONCEPT - 2)
        ]
        (folder / f"bench-{i:06d}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from kb.config import Settings
    from kb.service import KnowledgeBase

    started = time.perf_counter()
    with KnowledgeBase(Settings(home=home, bundled_content=deck)) as kb:
        report = kb.sync()
        assert not report.errors, report.errors[:3]
    print(f"built {concepts} concepts in {time.perf_counter() - started:.0f} s")
    marker.touch()
    return deck


async def measure(home: Path, deck: Path, runs: int) -> dict:
    from textual.screen import Screen
    from textual.widgets import DataTable, Footer, Header

    from app.app import KBApp
    from app.screens.cards import COLUMNS, CardBrowserScreen
    from kb.config import Settings

    class EmptyTable(Screen):
        def compose(self):
            yield Header()
            yield DataTable(id="t")
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.bench_empty = True  # type: ignore[attr-defined]
            for label, key in COLUMNS:
                table.add_column(label, key=key)

    painted: dict[int, float] = {}
    original_render_lines = DataTable.render_lines

    def render_lines(table, crop):  # the first time each table is drawn (with rows, when it has any)
        if id(table) not in painted and (table.row_count or getattr(table, "bench_empty", False)):
            painted[id(table)] = time.perf_counter()
        return original_render_lines(table, crop)

    DataTable.render_lines = render_lines  # type: ignore[method-assign]
    app = KBApp(Settings(home=home, bundled_content=deck), watch=False)
    baseline, first_page, full = [], [], []
    async with app.run_test(size=(120, 34)) as pilot:
        while app.kb is None:
            await pilot.pause(0.05)
        for _ in range(runs):
            screen = EmptyTable()
            started = time.perf_counter()
            app.push_screen(screen)
            while not (screen.is_mounted and id(screen.query_one(DataTable)) in painted):
                await pilot.pause()
            baseline.append(painted[id(screen.query_one(DataTable))] - started)
            app.pop_screen()
            await pilot.pause(0.2)

            browser = CardBrowserScreen()
            started = time.perf_counter()
            app.push_screen(browser)
            while not (browser.is_mounted and id(browser.query_one("#card-table", DataTable)) in painted):
                await pilot.pause()
            first_page.append(painted[id(browser.query_one("#card-table", DataTable))] - started)
            while not browser.complete:
                await pilot.pause(0.05)
            full.append(time.perf_counter() - started)
            shown = len(browser.cards)
            app.pop_screen()
            await pilot.pause(0.2)
    return {"baseline": baseline, "first_page": first_page, "full": full, "shown": shown}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--home", type=Path, default=Path("/tmp/kb-browser-bench"))
    args = parser.parse_args()
    deck = build(args.home, args.cards)
    result = asyncio.run(measure(args.home, deck, args.runs))
    base, first = statistics.median(result["baseline"]), statistics.median(result["first_page"])
    print(f"cards listed: {result['shown']:,}")
    print(f"empty DataTable mounted: {base * 1000:.0f} ms (median of {args.runs})")
    print(f"browser first page:      {first * 1000:.0f} ms = {first / base:.2f}x (budget 4x)")
    print(f"whole list filled:       {statistics.median(result['full']):.1f} s")


if __name__ == "__main__":
    main()
