"""Display formulas as images: every bundled formula and `$$` block renders, the fallback says why,
and the cache serves what it rendered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kb.render.formula_image import (
    FormulaRenderError,
    cached_png,
    display_blocks,
    formula_problem,
    normalize,
    render_png,
    to_mathml,
)

CONTENT = Path(__file__).resolve().parents[2] / "content"


def bundled_display_formulas() -> list[tuple[str, str]]:
    """(where, LaTeX) of every formula and every `$$` block of a definition in the bundled deck."""
    found = []
    for path in sorted(CONTENT.glob("*/*.yaml")):
        entry = yaml.safe_load(path.read_text(encoding="utf-8"))
        for i, formula in enumerate(entry.get("formulas") or []):
            found.append((f"{path.stem}: formula {i + 1}", formula["latex"]))
        for key in ("definition", "definition_zh"):
            for _, _, tex in display_blocks(entry.get(key) or ""):
                found.append((f"{path.stem}: {key} $$ block", tex))
    return found


def test_at_least_98_percent_of_bundled_formulas_render_as_images(capsys):
    formulas = bundled_display_formulas()
    fallbacks = []
    for where, tex in formulas:
        try:
            image = render_png(tex, size_px=16)
        except FormulaRenderError as exc:
            fallbacks.append(f"{where}: {exc}")
            continue
        assert image.png.startswith(b"\x89PNG") and image.width > 4 and image.height > 4, where
    rendered = len(formulas) - len(fallbacks)
    with capsys.disabled():
        print(f"\nformula images: {rendered} of {len(formulas)} rendered, {len(fallbacks)} shown as text")
        for line in fallbacks:
            print(f"  text: {line}")
    assert len(formulas) > 500
    assert rendered >= 0.98 * len(formulas), fallbacks


@pytest.mark.parametrize(
    ("tex", "reason"),
    [
        (r"\frac{a}{b", "unbalanced braces"),
        (r"x + \notacommand{y}", r"unknown command \notacommand"),
        (r"\text{损失} = 1", "CJK"),
        ("", "empty"),
        (r"a & b", "MathML"),
    ],
)
def test_a_formula_that_would_not_render_faithfully_says_why(tex, reason):
    problem = formula_problem(tex)
    assert problem is not None and reason in problem
    with pytest.raises(FormulaRenderError):
        render_png(tex)


def test_equivalent_spellings_the_converter_lacks():
    assert normalize(r"\arg\min_x f") == r"\operatorname{arg}\min_x f"
    assert normalize(r"\lVert x \rVert") == r"\| x \|"
    aligned = normalize(r"\begin{aligned} a &= b && \text{note} \\ c &= d \end{aligned}")
    assert aligned.startswith(r"\begin{array}{rlrl}") and aligned.endswith(r"\end{array}")
    # A matrix with a script becomes one group (the renderer needs it so).
    assert normalize(r"\begin{pmatrix}1&0\\0&1\end{pmatrix}^{-1}").startswith(r"{\begin{pmatrix}")
    # Every rewrite renders.
    for tex in (r"\arg\min_x f", r"\lVert x \rVert", r"\begin{pmatrix}A&t\\0&1\end{pmatrix}^{-1}"):
        assert render_png(tex).width > 0


def test_colours_and_size_reach_the_image():
    from io import BytesIO

    from PIL import Image

    small = render_png(r"x^2 + y^2", color="#ff0000", background="#000000", size_px=12)
    large = render_png(r"x^2 + y^2", color="#ff0000", background="#000000", size_px=36)
    assert large.width > 2 * small.width and large.height > 2 * small.height
    pixels = Image.open(BytesIO(large.png)).convert("RGB")
    colours = {pixels.getpixel((x, y)) for x in range(pixels.width) for y in range(pixels.height)}
    assert (0, 0, 0) in colours  # the background
    assert any(r > 200 and g < 60 and b < 60 for r, g, b in colours)  # red glyphs
    assert not any(g > 100 for _, g, _ in colours)  # nothing of another colour


def test_the_cache_serves_a_rendered_image_and_survives_damage(tmp_path):
    tex = r"\sum_{i=1}^{n} i = \frac{n(n+1)}{2}"
    first = cached_png(tmp_path, tex, color="#111111", size_px=20)
    files = list(tmp_path.glob("*.png"))
    assert len(files) == 1 and files[0].read_bytes() == first.png
    assert cached_png(tmp_path, tex, color="#111111", size_px=20) == first
    # Another colour or size is another image.
    cached_png(tmp_path, tex, color="#eeeeee", size_px=20)
    cached_png(tmp_path, tex, color="#111111", size_px=24)
    assert len(list(tmp_path.glob("*.png"))) == 3
    # A damaged file is rendered again, not shown.
    files[0].write_bytes(b"not a png")
    assert cached_png(tmp_path, tex, color="#111111", size_px=20) == first
    # An unwritable cache only costs a render.
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    assert cached_png(blocked / "cache", tex).png.startswith(b"\x89PNG")


def test_mathml_for_the_site_has_no_leftover_latex():
    for _, tex in bundled_display_formulas()[:200]:
        mathml = to_mathml(tex)
        assert mathml.startswith("<math") and not re.search(r">[^<]*\\[A-Za-z]+[^<]*<", mathml)
