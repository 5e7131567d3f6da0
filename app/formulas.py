"""Formulas as images in terminals that show graphics (Sixel, or Kitty's graphics protocol).

Whether the terminal shows graphics is asked once, before the app starts (the terminal answers on
stdin, which Textual reads once it runs): `detect` is called by `app.main.run`. The `formulas`
setting decides: `text` never asks and shows Unicode text; `auto` shows images where the terminal
answers that it can; `images` also draws them with coloured half-blocks where it cannot.
KB_GRAPHICS=sixel|tgp|halfcell|none overrides the answer (for a terminal that answers wrongly, and
for tests).

Images are rendered by kb.render.formula_image (no TeX installation) in the theme's colours at the
terminal's cell size, in a worker thread, and cached under $KB_HOME/cache/formulas/; the text stays
on screen until they are ready, and stays for good where a formula cannot be rendered faithfully.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

PROTOCOLS = ("sixel", "tgp", "halfcell")
_protocol: str | None = None
_cell: tuple[int, int] = (10, 20)  # pixels per cell, width and height


def detect(setting: str) -> str | None:
    """Decide, before the app starts, how formulas are drawn: a protocol name, or None for text."""
    global _protocol, _cell
    forced = os.environ.get("KB_GRAPHICS", "").strip().lower()
    _protocol = None
    if setting == "text" or forced in ("none", "text", "0", "off"):
        return None
    if forced in PROTOCOLS or forced == "kitty":
        _protocol = "tgp" if forced == "kitty" else forced
    elif sys.__stdout__ is not None and sys.__stdout__.isatty() and sys.__stdin__ is not None:
        try:
            from textual_image import renderable

            found = {renderable.SixelImage: "sixel", renderable.TGPImage: "tgp"}.get(renderable.Image)
        except Exception:  # a terminal that answers nonsense: text, never an error
            found = None
        _protocol = found or ("halfcell" if setting == "images" else None)
    if _protocol is not None:
        _cell = _cell_size()
    return _protocol


def use(protocol: str | None, cell: tuple[int, int] = (10, 20)) -> None:
    """Set the drawing protocol directly (tests; a terminal profile chosen by hand)."""
    global _protocol, _cell
    _protocol, _cell = protocol, cell


def protocol() -> str | None:
    return _protocol


def _cell_size() -> tuple[int, int]:
    try:
        from textual_image._terminal import get_cell_size

        size = get_cell_size()
        if size.width > 0 and size.height > 0:
            return int(size.width), int(size.height)
    except Exception:
        pass
    return 10, 20


@dataclass(frozen=True)
class Rendered:
    """One formula ready to mount: the PNG and its size in cells, or the reason it stays text."""

    tex: str
    png: bytes | None
    width_cells: int = 0
    height_cells: int = 0
    problem: str | None = None


def render(tex: str, *, color: str, background: str | None, cache_dir: Path) -> Rendered:
    """Render (or load from the cache) one display formula at the terminal's cell size. Runs in a
    worker thread; never raises."""
    from kb.render.formula_image import FormulaRenderError, cached_png

    cell_w, cell_h = _cell
    try:
        image = cached_png(cache_dir, tex, color=color, background=background, size_px=round(cell_h * 0.85, 1))
    except FormulaRenderError as exc:
        return Rendered(tex, None, problem=str(exc))
    except Exception as exc:  # a renderer bug must not cost the concept screen
        return Rendered(tex, None, problem=f"{type(exc).__name__}: {exc}")
    return Rendered(tex, image.png, math.ceil(image.width / cell_w), math.ceil(image.height / cell_h))


def image_widget(rendered: Rendered, *, max_width: int, classes: str = "formula-image"):
    """The textual-image widget of a rendered formula, sized in cells (narrowed to `max_width`,
    keeping its proportions)."""
    from PIL import Image as PILImage
    from textual_image.widget import HalfcellImage, SixelImage, TGPImage

    kind = {"sixel": SixelImage, "tgp": TGPImage, "halfcell": HalfcellImage}[_protocol or "halfcell"]
    assert rendered.png is not None
    widget = kind(PILImage.open(BytesIO(rendered.png)), classes=classes)
    width = max(1, min(rendered.width_cells, max_width))
    height = max(1, round(rendered.height_cells * width / max(1, rendered.width_cells)))
    widget.styles.width = width
    widget.styles.height = height
    widget.tooltip = rendered.tex
    return widget
