"""The language setting on the concept screen: English only, Chinese first, or both."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.widgets import Static

from helpers import settle, text_of


@pytest.mark.parametrize(
    "language, titles, summary_has, summary_lacks",
    [
        ("en", "Convolution", "Summary of Convolution.", "卷积的摘要"),
        ("zh", "卷积  ·  Convolution", "卷积的摘要", "Summary of"),
        ("both", "Convolution  ·  卷积", "卷积的摘要", "nothing-missing"),
    ],
)
async def test_the_concept_screen_shows_the_chosen_language(
    make_app, app_settings, monkeypatch, language, titles, summary_has, summary_lacks
):
    from app.app import KBApp
    from helpers import FIXED_NOW

    app = KBApp(replace(app_settings, language=language), clock=lambda: FIXED_NOW, watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.open_concept("convolution")
        await settle(app, pilot)
        screen = app.screen
        assert text_of(screen.query_one("#titles", Static)).startswith(titles)
        summary = text_of(screen.query_one("#summary", Static))
        assert summary_has in summary and summary_lacks not in summary
