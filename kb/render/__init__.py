"""Rendering helpers for the terminal: `kb.render.latex.tex_to_text` turns a formula into Unicode text.

Importing this package is cheap: the converters (flatlatex, pylatexenc) are imported on first use.
"""

from __future__ import annotations

__all__ = ["tex_to_text"]


def tex_to_text(tex: str) -> str:
    """See `kb.render.latex.tex_to_text`."""
    from kb.render.latex import tex_to_text as convert

    return convert(tex)
