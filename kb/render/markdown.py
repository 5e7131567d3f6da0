"""Markdown with math, for a terminal: `$...$` and `$$...$$` become Unicode text.

Functions: markdown_with_math (for a Markdown widget), plain_with_math (for plain text: a label,
the CLI). Textual's Markdown widget shows math as literal dollars (and a dollarmath plugin without
token handlers silently drops it), so math is converted before the Markdown is rendered: display
math becomes an indented (literal) block, inline math text in the sentence. Code spans and fences
are left alone.

Math must never be read as Markdown: `D_{KL}(p\\|q)` becomes `D[KL](p‖q)`, a link to the parser,
and `a*b*c` emphasis. So for a Markdown widget every ASCII punctuation character of converted math
is escaped with a backslash (CommonMark allows it before any of them), and shows as itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kb.render.latex import tex_to_text

_FENCE = re.compile(r"(^```.*?^```[^\n]*$)", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE = re.compile(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)")
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def _escaped(text: str) -> str:
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


def markdown_with_math(markdown: str) -> str:
    """Markdown whose LaTeX math is readable Unicode that the Markdown parser shows as it is."""
    return _convert(markdown, inline=lambda tex: _escaped(tex_to_text(tex)))


def plain_with_math(text: str) -> str:
    """Text whose LaTeX math is readable Unicode (for plain output: no Markdown is parsed)."""
    return _convert(text, inline=tex_to_text)


def _display_as_text(tex: str) -> str:
    return "\n\n    " + tex_to_text(tex).replace("\n", "\n    ") + "\n\n"


def _convert(markdown: str, *, inline) -> str:
    """Replace LaTeX math by readable Unicode, outside code; never raises."""
    return convert_math(markdown, inline=inline, display=_display_as_text)


def convert_math(markdown: str, *, inline: Callable[[str], str], display: Callable[[str], str]) -> str:
    """`markdown` with each `$$...$$` block replaced by `display(tex)` and each inline `$...$` by
    `inline(tex)`, outside code fences and code spans (the one walk every math conversion uses)."""
    parts = _FENCE.split(markdown)
    out = []
    for i, part in enumerate(parts):
        out.append(part if i % 2 else _convert_prose(part, inline, display))
    return "".join(out)


def _convert_prose(text: str, inline: Callable[[str], str], display: Callable[[str], str]) -> str:
    spans: list[str] = []

    def keep(match: re.Match) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE_SPAN.sub(keep, text)
    text = DISPLAY_MATH.sub(lambda m: display(m.group(1).strip()), text)
    text = _INLINE.sub(lambda m: inline(m.group(1)), text)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], text)
