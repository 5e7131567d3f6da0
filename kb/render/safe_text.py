"""Deck text and snippet output made safe for a terminal: nothing in it can act as a control sequence.

Function: safe. Used by every output of the CLI and the TUI that shows text from a deck or a run.
"""

from __future__ import annotations

import re

# Everything that could move the cursor, clear the screen, set the title or the clipboard, or
# reorder text: C0 (but \n and \t), DEL, C1, and bidi overrides and isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: str) -> str:
    """`text` with every control character shown as a visible escape (\\x1b, \\u202e)."""
    return _UNSAFE.sub(_visible, text)
