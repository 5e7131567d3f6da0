"""Turning deck text and snippet output into safe terminal text (markup never interpreted)."""

from __future__ import annotations

import re

from rich.text import Text

# Everything that could move the cursor, clear the screen or reorder text: C0 (but \n and \t),
# DEL, C1, and bidi overrides. Shown as visible escapes instead.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def safe(text: str) -> str:
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)


def plain(text: str, style: str = "") -> Text:
    """Deck text as a rich Text: `a[i]` and `[/x]` stay literal (no markup parsing)."""
    return Text(safe(text), style=style)
