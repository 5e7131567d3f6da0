"""Turning deck text and snippet output into safe terminal text (markup never interpreted)."""

from __future__ import annotations

from rich.text import Text

from kb.render.safe_text import safe

__all__ = ["plain", "safe"]


def plain(text: str, style: str = "") -> Text:
    """Deck text as a rich Text: `a[i]` and `[/x]` stay literal (no markup parsing)."""
    return Text(safe(text), style=style)
