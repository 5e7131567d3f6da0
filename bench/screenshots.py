"""Screenshots of the TUI for the README: `python bench/screenshots.py [--language zh] [--out docs]`.

Runs the app headless on the bundled deck in a fresh KB_HOME, opens the list, a concept, the quiz
and the card browser, and writes one SVG per screen, then a PNG beside each (with `rsvg-convert`,
when it is installed; Chinese needs a CJK font such as Debian's fonts-noto-cjk).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
from pathlib import Path


async def shoot(language: str, out: Path) -> list[Path]:
    from app.app import KBApp
    from kb.config import Settings

    written: list[Path] = []
    with tempfile.TemporaryDirectory() as home:
        app = KBApp(Settings(home=Path(home), language=language, timezone="UTC"), watch=False)
        async with app.run_test(size=(120, 36)) as pilot:
            while app.kb is None:
                await pilot.pause(0.1)
            await pilot.pause(0.5)

            async def save(name: str) -> None:
                await pilot.pause(0.5)
                path = out / f"{name}-{language}.svg"
                app.save_screenshot(filename=path.name, path=str(out))
                written.append(path)

            await save("browse")
            app.open_concept("softmax")
            await save("concept")
            await pilot.press("escape")
            app.open_screen("quiz", 'concept:"softmax"')
            await pilot.pause(0.5)
            await pilot.press("space")
            await save("quiz")
            await pilot.press("escape")
            app.open_screen("cards", "concept:softmax")
            await save("cards")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--language", default="zh", choices=["en", "zh", "both"])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for svg in asyncio.run(shoot(args.language, args.out)):
        if shutil.which("rsvg-convert"):
            png = svg.with_suffix(".png")
            subprocess.run(["rsvg-convert", str(svg), "-o", str(png)], check=True)
            svg.unlink()
            print(png)
        else:
            print(svg)


if __name__ == "__main__":
    main()
