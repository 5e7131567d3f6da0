"""The TUI's own words in the user's language, through gettext catalogues.

`app/locale/zh_CN/LC_MESSAGES/kb.po` holds the Simplified Chinese words; `kb.mo` is compiled from
it (`msgfmt -o kb.mo kb.po`; a test checks that the two agree). English is the source language.
The language follows the `language` setting: `zh` shows the Chinese words; `en` and `both` show
the English ones (a key can only say one thing).
"""

from __future__ import annotations

import gettext
from dataclasses import replace
from pathlib import Path
from typing import Any

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_translation: gettext.NullTranslations = gettext.NullTranslations()


def set_language(language: str) -> None:
    """Use the catalogue of `language` (en, zh or both) from now on."""
    global _translation
    if language == "zh":
        _translation = gettext.translation("kb", LOCALE_DIR, languages=["zh_CN"], fallback=True)
    else:
        _translation = gettext.NullTranslations()


def _(message: str) -> str:
    """`message` in the TUI's language (itself when the catalogue does not have it)."""
    return _translation.gettext(message) if message else message


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
