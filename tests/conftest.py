"""Shared fixtures: a fresh KB_HOME, tiny decks written on the fly, a fixed clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import FIXED_NOW
from kb.config import Settings


@pytest.fixture(autouse=True)
def _private_kb_home(tmp_path_factory, monkeypatch) -> None:
    """No test reaches the user's own knowledge base: KB_HOME points at a fresh directory unless a
    test sets its own."""
    monkeypatch.setenv("KB_HOME", str(tmp_path_factory.mktemp("kb-home")))


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    d = tmp_path / "deck"
    d.mkdir()
    return d


@pytest.fixture
def settings(tmp_path: Path, deck: Path) -> Settings:
    """A KB_HOME in tmp_path whose bundled deck is the test's own `deck` directory."""
    return Settings(home=tmp_path / "home", bundled_content=deck)


@pytest.fixture
def kb(settings: Settings):
    from kb.service import KnowledgeBase

    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as instance:
        yield instance
