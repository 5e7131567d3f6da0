"""Markdown with math, for a terminal: `$...$` and `$$...$$` become Unicode text.

Textual's Markdown widget shows math as literal dollars (and a dollarmath plugin without token
handlers silently drops it), so math is converted before the Markdown is rendered: display math
becomes an indented text block, inline math plain text in the sentence. Code spans and fences are
left alone.
"""

from __future__ import annotations

import re

from kb.render.latex import tex_to_text

_FENCE = re.compile(r"(^```.*?^```[^\n]*$)", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE = re.compile(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)")


def math_to_text(markdown: str) -> str:
    """Replace LaTeX math in Markdown by readable Unicode; never raises."""
    parts = _FENCE.split(markdown)
    out = []
    for i, part in enumerate(parts):
        out.append(part if i % 2 else _convert_prose(part))
    return "".join(out)


def _convert_prose(text: str) -> str:
    spans: list[str] = []

    def keep(match: re.Match) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE_SPAN.sub(keep, text)
    text = _DISPLAY.sub(lambda m: "\n\n    " + tex_to_text(m.group(1).strip()).replace("\n", "\n    ") + "\n\n", text)
    text = _INLINE.sub(lambda m: tex_to_text(m.group(1)), text)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], text)
