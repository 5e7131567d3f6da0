"""The base of kb's screens: `self.app` typed as KBApp, so that a screen's use of the app checks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.screen import Screen

if TYPE_CHECKING:
    from app.app import KBApp


class KBScreen(Screen[Any]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from app.i18n import translate_bindings

        translate_bindings(self)  # the footer and help show the keys in the TUI's language

    if TYPE_CHECKING:
        # Textual types `app` as App[Any]; every kb screen runs in a KBApp. (Narrowing a writeable
        # attribute to a read-only property is what mypy objects to; it is for type checks only.)
        @property
        def app(self) -> KBApp: ...  # type: ignore[override]
