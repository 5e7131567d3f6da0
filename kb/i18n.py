"""kb's own words in the user's language, through gettext catalogues (pure: no store, no Textual).

`kb/locale/zh_CN/LC_MESSAGES/kb.po` holds the Simplified Chinese words of the TUI and of
`kb quiz --plain`; `kb.mo` is compiled from it (`msgfmt -o kb.mo kb.po` in that folder; a test
checks that the two agree and that every entry is used). English is the source language.
The language follows the `language` setting: `zh` shows the Chinese words; `en` and `both` show
the English ones (a key or a prompt can only say one thing).

A text with a value in it is one entry with a named placeholder, filled after translation:
`_("Saved {path}").format(path=path)`, never an f-string inside `_()`.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "kb"
_translation: gettext.NullTranslations = gettext.NullTranslations()


def translation(language: str) -> gettext.NullTranslations:
    """The catalogue of `language` (en, zh or both); English needs none."""
    if language == "zh":
        return gettext.translation(DOMAIN, LOCALE_DIR, languages=["zh_CN"], fallback=True)
    return gettext.NullTranslations()


def set_language(language: str) -> None:
    """Use the catalogue of `language` (en, zh or both) from now on (the TUI: one language a process)."""
    global _translation
    _translation = translation(language)


def _(message: str) -> str:
    """`message` in the current language (itself when the catalogue does not have it)."""
    return _translation.gettext(message) if message else message


def translator(language: str) -> Callable[[str], str]:
    """A `_` for `language` alone, leaving the current language as it is (a CLI command)."""
    found = translation(language)
    return lambda message: found.gettext(message) if message else message


def N_(message: str) -> str:
    """Marks a word that reaches `_()` through a variable, so that the catalogue's check finds it."""
    return message


# Words that reach `_()` only through a variable and are written nowhere else: the ratings' button
# names (kb.scheduler.rating_name capitalizes the vocabulary's "again", "hard", ...).
VARIABLE_WORDS = (N_("Again"), N_("Hard"), N_("Good"), N_("Easy"))
