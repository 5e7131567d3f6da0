"""The TUI's own words in the user's language: kb.i18n's gettext catalogue, and the keys' words.

The catalogue and its functions live in kb.i18n (`kb quiz --plain` speaks the same language); this
module adds what only the TUI needs: the keys of a screen translated, and the language the settings
ask for. English is the source language; `zh` shows the Chinese words, `en` and `both` the English.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kb.i18n import LOCALE_DIR, N_, _, set_language, translator

__all__ = ["LOCALE_DIR", "N_", "_", "language_of", "set_language", "translate_bindings", "translator"]

# Textual's own words that kb's screens show and translate: the command palette's key in the footer,
# its placeholder, and the palette's system commands (see KBApp.get_system_commands).
TEXTUAL_WORDS = (
    N_("palette"),
    N_("Open the command palette"),
    N_("Search for commands…"),
    N_("Theme"),
    N_("Change the current theme"),
    N_("Quit the application as soon as possible"),
    N_("Keys"),
    N_("Hide the keys and widget help panel"),
    N_("Show help for the focused widget and a summary of available keys"),
    N_("Minimize"),
    N_("Minimize the widget and restore to normal size"),
    N_("Maximize"),
    N_("Maximize the focused widget"),
    N_("Screenshot"),
    N_("Save an SVG 'screenshot' of the current screen"),
)


def language_of(settings: Any) -> str:
    """The language the settings ask for; with no settings yet, the ones kb would load."""
    if settings is None:
        try:
            from kb.config import load_settings

            settings = load_settings()
        except Exception:  # a broken settings file is reported when kb opens; the words stay English
            return "en"
    return str(settings.content_language)


def translate_bindings(node: Any) -> None:
    """Put the descriptions and tooltips of a screen's (or the app's) keys into the TUI's language."""
    bindings = node._bindings.key_to_bindings
    for key, items in bindings.items():
        bindings[key] = [
            replace(b, description=_(b.description), tooltip=_(b.tooltip) if b.tooltip else b.tooltip) for b in items
        ]
