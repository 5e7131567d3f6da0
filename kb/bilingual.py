"""Texts in English and Chinese: a plain string, or `{en: ..., zh: ...}` (a dict or a model of one).

Pure and light (no pydantic): the TUI, the CLI, the quiz and the exports all pick a language here.
"""

from __future__ import annotations

LANGUAGES = ("en", "zh", "both")


def _as_dict(value: object) -> object:
    dump = getattr(value, "model_dump", None)
    return dump() if callable(dump) else value


def localized(value: object, language: str = "en", sep: str = " / ") -> str:
    """A text in `language` (en, zh, or both joined by `sep`); a plain string is itself, and a
    missing side falls back to the other."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    value = _as_dict(value)
    if not isinstance(value, dict):
        return str(value)
    en, zh = str(value.get("en") or "").strip(), str(value.get("zh") or "").strip()
    if not zh or zh == en:
        return en
    if not en:
        return zh
    if language == "en":
        return en
    if language == "zh":
        return zh
    return f"{en}{sep}{zh}"


def both_languages(value: object) -> list[str]:
    """The texts of a field in every language it has: [en, zh], or [the string]."""
    if value is None:
        return []
    value = _as_dict(value)
    if isinstance(value, dict):
        return [str(value[k]) for k in ("en", "zh") if value.get(k)]
    return [str(value)]
