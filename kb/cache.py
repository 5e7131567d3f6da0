"""Derived data kept for speed only: the concept list as last shown.

Light on purpose (json and paths): the TUI reads it before importing the store, so the list is
on screen at the first frame; the real list replaces it once the knowledge base is open.
"""

from __future__ import annotations

import json
from pathlib import Path

from kb.config import Settings


def list_cache_path(settings: Settings) -> Path:
    return settings.home / "cache" / "concepts.json"


def read_list_cache(settings: Settings) -> list[dict] | None:
    """The cached concept list, or None when missing or unreadable (the real list follows anyway)."""
    try:
        data = json.loads(list_cache_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, list) else None
