"""Display formulas as typeset images, for terminals that show graphics.

LaTeX becomes MathML (latex2mathml), MathML becomes an SVG of glyph outlines in the STIX Two Math
font (ziamath, which needs no TeX installation), and the SVG becomes a PNG (resvg). Of the bundled
formulas this renders all but a handful faithfully, where matplotlib's mathtext managed about six in
ten (it lacks \\big, \\left...\\right with \\!, cases and \\tfrac); `bench/formula_images.py`
measures both.

`formula_problem` says why a formula would not render faithfully (an unknown command, unbalanced
braces, characters the math font lacks, such as Chinese in a `\\text{}`); the caller then shows the
Unicode text instead. MathML for a browser (`to_mathml`) keeps such characters: browsers have
fonts for them. Rendered images are cached under `$KB_HOME/cache/formulas/`, keyed by a hash of
the LaTeX, the colours and the size, so a concept opens from files after its first view.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

# Bumped when the rendering changes, so that old cached images are not shown.
RENDER_VERSION = "2"
_MATHML_TEXT_TAGS = ("mi", "mo", "mn", "mtext", "ms")
# CJK ideographs, kana and full-width forms: STIX Two Math has no glyphs for them.
_MISSING_GLYPHS = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


class FormulaRenderError(ValueError):
    """The formula cannot be rendered faithfully; the message says why."""


@dataclass(frozen=True)
class FormulaImage:
    png: bytes
    width: int  # pixels
    height: int


# Commands latex2mathml does not know, spelled the way it does; each prints the same in LaTeX.
_EQUIVALENTS = (
    (re.compile(r"\\(arg|deg|hom|ker|Pr)(?![A-Za-z])"), r"\\operatorname{\1}"),
    (re.compile(r"\\[lr]Vert(?![A-Za-z])"), r"\\|"),
    (re.compile(r"\\[lr]vert(?![A-Za-z])"), "|"),
)


_ALIGNED = re.compile(r"\\begin\{(aligned|align\*?|split)\}(.*?)\\end\{\1\}", re.S)


def _aligned_as_array(m: re.Match) -> str:
    # aligned's columns alternate right- and left-aligned; array says so with a column spec.
    body = m.group(2)
    columns = max(row.count("&") for row in re.split(r"\\\\", body)) + 1
    return "\\begin{array}{" + ("rl" * columns)[:columns] + "}" + body + "\\end{array}"


# A script on a whole environment (a matrix's inverse) needs the environment as one group, or the
# converter hands the renderer a script element with too many children.
_SCRIPTED_ENVIRONMENT = re.compile(r"(\\begin\{([a-zA-Z]*matrix|array)\}.*?\\end\{\2\})(?=\s*[_^])", re.S)


def normalize(tex: str) -> str:
    """`tex` with the commands the converter lacks replaced by equivalents it has."""
    for pattern, replacement in _EQUIVALENTS:
        tex = pattern.sub(replacement, tex)
    tex = _SCRIPTED_ENVIRONMENT.sub(r"{\1}", tex)
    return _ALIGNED.sub(_aligned_as_array, tex)


def to_mathml(tex: str, *, display: bool = True) -> str:
    """The MathML of `tex`, or FormulaRenderError when it would not be faithful."""
    import latex2mathml.converter

    if not tex.strip():
        raise FormulaRenderError("empty formula")
    from kb.render.latex import braces_balanced

    if not braces_balanced(tex):
        raise FormulaRenderError("unbalanced braces")
    try:
        mathml = latex2mathml.converter.convert(normalize(tex), display="block" if display else "inline")
    except Exception as exc:  # the converter raises many kinds for LaTeX it cannot read
        raise FormulaRenderError(f"latex2mathml: {type(exc).__name__}: {exc}".strip().rstrip(":")) from None
    problem = _mathml_problem(mathml)
    if problem:
        raise FormulaRenderError(problem)
    return mathml


def _mathml_problem(mathml: str) -> str | None:
    try:
        root = ElementTree.fromstring(mathml)
    except ElementTree.ParseError as exc:
        return f"malformed MathML ({exc})"
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "merror":
            return "the converter marked an error"
        if tag in _MATHML_TEXT_TAGS and element.text:
            text = element.text
            command = re.search(r"\\[A-Za-z]+", text)
            if command:
                return f"unknown command {command.group(0)}"
            if tag == "mi" and text == "&":
                return "an alignment & outside a table (an environment the converter lacks)"
    return None


def _missing_glyphs(mathml: str) -> str | None:
    """Why an image of `mathml` would miss glyphs (a browser has fonts for them; the math font not)."""
    root = ElementTree.fromstring(mathml)
    for element in root.iter():
        if (
            element.tag.rsplit("}", 1)[-1] in _MATHML_TEXT_TAGS
            and element.text
            and _MISSING_GLYPHS.search(element.text)
        ):
            return "characters the math font lacks (CJK)"
    return None


def formula_problem(tex: str) -> str | None:
    """Why `tex` would not render faithfully as an image, or None when it would."""
    try:
        return _missing_glyphs(to_mathml(tex))
    except FormulaRenderError as exc:
        return str(exc)


def render_png(
    tex: str, *, color: str = "#e0e0e0", background: str | None = None, size_px: float = 20.0
) -> FormulaImage:
    """`tex` as a PNG: glyphs in `color` on `background` (transparent when None), with the math
    font's em at `size_px` pixels. Raises FormulaRenderError when it would not be faithful."""
    import resvg_py

    ziamath = _ziamath()
    mathml = to_mathml(tex)
    missing = _missing_glyphs(mathml)
    if missing:
        raise FormulaRenderError(missing)
    root = ElementTree.fromstring(mathml)
    root.attrib["mathcolor"] = color
    try:
        # A margin of a third of an em: terminals place an image on whole cells, and the glyphs
        # must not touch the cell edges.
        math = ziamath.Math(root, size=size_px, margin=size_px / 3)
        svg = math.svg()
    except Exception as exc:
        raise FormulaRenderError(f"ziamath: {type(exc).__name__}: {exc}") from None
    try:
        png = bytes(resvg_py.svg_to_bytes(svg_string=svg, background=background))
    except ValueError as exc:
        raise FormulaRenderError(f"resvg: {exc}") from None
    width, height = _png_size(png)
    return FormulaImage(png, width, height)


def _ziamath():
    import warnings

    with warnings.catch_warnings():
        # Its font is found through importlib.resources' deprecated path(); harmless.
        warnings.simplefilter("ignore", DeprecationWarning)
        import ziamath
    return ziamath


def _png_size(png: bytes) -> tuple[int, int]:
    # The IHDR chunk follows the 8-byte signature: length, type, then width and height.
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def cache_key(tex: str, color: str, background: str | None, size_px: float) -> str:
    text = "\x00".join((RENDER_VERSION, tex, color, background or "", f"{size_px:.2f}"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cached_png(
    cache_dir: Path, tex: str, *, color: str = "#e0e0e0", background: str | None = None, size_px: float = 20.0
) -> FormulaImage:
    """`render_png`, through a cache of files in `cache_dir` (a damaged or unwritable cache only
    costs a render). Failures are not cached: they are cheap to find again and the renderer may
    learn the formula."""
    path = cache_dir / f"{cache_key(tex, color, background, size_px)}.png"
    try:
        png = path.read_bytes()
        if png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 24:
            width, height = _png_size(png)
            return FormulaImage(png, width, height)
    except OSError:
        pass
    image = render_png(tex, color=color, background=background, size_px=size_px)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(image.png)
        temporary.replace(path)  # readers never see half a file
    except OSError:
        pass
    return image


def display_blocks(markdown: str) -> list[tuple[int, int, str]]:
    """The `$$...$$` display blocks of a definition: (start, end, LaTeX) for each, in order."""
    from kb.render.markdown import DISPLAY_MATH

    return [(m.start(), m.end(), m.group(1).strip()) for m in DISPLAY_MATH.finditer(markdown)]
