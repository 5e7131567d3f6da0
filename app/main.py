"""Entry point of the TUI: `kb` with no command."""

from __future__ import annotations


def run(settings=None) -> int:
    from app.app import KBApp

    KBApp(settings).run()
    return 0
