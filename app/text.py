"""Turning deck text and snippet output into safe terminal text (markup never interpreted)."""

from __future__ import annotations

from rich.text import Text

from kb.render.safe_text import safe

__all__ = ["pad", "plain", "safe"]


def plain(text: str, style: str = "") -> Text:
    """Deck text as a rich Text: `a[i]` and `[/x]` stay literal (no markup parsing)."""
    return Text(safe(text), style=style)


def pad(text: str, width: int, *, right: bool = False) -> str:
    """`text` padded with spaces to `width` terminal cells (a Chinese character takes two); after
    it, or before it with `right`."""
    from rich.cells import cell_len

    gap = " " * max(0, width - cell_len(text))
    return gap + text if right else text + gap
