"""Benchmark: formulas as images, and opening a concept with six formulas.

1. Renderers: how many bundled display formulas (the Formulas sections and every `$$` block) each
   candidate renders faithfully, and its time per formula: ziamath (what kb uses: LaTeX -> MathML
   -> SVG, then resvg to PNG) and matplotlib's mathtext (measured when matplotlib is installed).
2. Opening a concept with six formulas (softmax, 6 formulas and a `$$` block) in the TUI, headless,
   with the Sixel profile: from the enter key to the concept painted (as today, text), and to its
   formula images mounted, with an empty image cache (cold) and a filled one (warm). The same
   opening with formulas as text is measured alternately in the same process, as the baseline.

    python bench/formula_images.py [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "kb"))


def renderers() -> None:
    from test_formula_images import bundled_display_formulas  # type: ignore[import-not-found]

    from kb.render.formula_image import FormulaRenderError, render_png

    formulas = bundled_display_formulas()
    start = time.perf_counter()
    failed = 0
    for _, tex in formulas:
        try:
            render_png(tex, size_px=17)
        except FormulaRenderError:
            failed += 1
    each = (time.perf_counter() - start) / len(formulas)
    print(f"ziamath + resvg:     {len(formulas) - failed} of {len(formulas)} rendered ({each * 1e3:.1f} ms each)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import mathtext
    except ImportError:
        print("matplotlib mathtext:  not installed (pip install matplotlib to compare)")
        return
    start = time.perf_counter()
    failed = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, tex in formulas:
            try:
                mathtext.math_to_image("$" + " ".join(tex.split()) + "$", io.BytesIO(), dpi=100, format="png")
            except Exception:
                failed += 1
    each = (time.perf_counter() - start) / len(formulas)
    print(f"matplotlib mathtext: {len(formulas) - failed} of {len(formulas)} rendered ({each * 1e3:.1f} ms each)")


async def open_concept(home: Path, protocol: str | None, runs_cold: bool) -> tuple[float, float]:
    """Seconds from enter to the concept painted, and to its images mounted (or 0 for text)."""
    from app import formulas
    from app.app import KBApp
    from app.screens.concept import ConceptScreen
    from kb.config import Settings

    formulas.use(protocol, (9, 18))
    if runs_cold:
        shutil.rmtree(home / "cache" / "formulas", ignore_errors=True)
    app = KBApp(Settings(home=home, language="both"), watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.kb is None or app.screen.query_one("#concepts").option_count == 0:
            await asyncio.sleep(0.005)
        app.warmed_up.wait(60)
        await pilot.press("slash", *"softmax", "enter")
        await pilot.pause(0.3)
        start = time.perf_counter()
        await pilot.press("enter")
        while not (isinstance(app.screen, ConceptScreen) and app.screen.concept is not None):
            await asyncio.sleep(0.002)
        await pilot.pause(0)
        painted = time.perf_counter() - start
        mounted = 0.0
        if protocol is not None:
            while not app.screen._images_ready:
                await asyncio.sleep(0.002)
            await pilot.pause(0)
            mounted = time.perf_counter() - start
        formulas.use(None)
        return painted, mounted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    renderers()
    home = Path(tempfile.mkdtemp(prefix="kb-bench-formulas-"))
    try:
        asyncio.run(open_concept(home, None, False))  # the first sync, not measured
        text, cold, warm = [], [], []
        for _ in range(args.runs):
            text.append(asyncio.run(open_concept(home, None, False)))
            cold.append(asyncio.run(open_concept(home, "sixel", True)))
            warm.append(asyncio.run(open_concept(home, "sixel", False)))
    finally:
        shutil.rmtree(home, ignore_errors=True)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1e3:6.0f} ms"

    print(f"opening softmax (6 formulas, one $$ block), median of {args.runs}:")
    print(f"  formulas as text (today):   painted {ms([p for p, _ in text])}")
    print(f"  images, cold cache:         painted {ms([p for p, _ in cold])}, images {ms([m for _, m in cold])}")
    print(f"  images, warm cache:         painted {ms([p for p, _ in warm])}, images {ms([m for _, m in warm])}")
    ratio = statistics.median(m for _, m in warm) / statistics.median(p for p, _ in text)
    print(f"  warm images / text painted: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
