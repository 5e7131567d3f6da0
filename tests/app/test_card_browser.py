"""The card browser, driven by keys: a search, the table, the side panel, changes and undo,
opening the concept, custom study of the search, and copying from the concept screen."""

from __future__ import annotations

import sqlite3

from textual.widgets import DataTable, Input, Static

from helpers import settle, text_of

WIDE = (120, 34)


def rows(screen) -> list[str]:
    table = screen.query_one("#card-table", DataTable)
    return [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]


def cell(screen, card_id: str, column: str) -> str:
    value = screen.query_one("#card-table", DataTable).get_cell(card_id, column)
    return getattr(value, "plain", str(value))


async def open_browser(app, pilot, query: str = ""):
    from app.screens.cards import CardBrowserScreen

    await settle(app, pilot)
    await pilot.press("c")
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, CardBrowserScreen)
    if query:
        await pilot.press("slash", *query, "enter")
        await settle(app, pilot)
    return screen


async def test_c_lists_every_card_and_a_search_narrows_it(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_browser(app, pilot)
        everything = rows(screen)
        assert "convolution/t" in everything and "self-attention/definition" in everything
        assert text_of(screen.query_one("#card-count", Static)) == f"{len(everything)} card(s)"
        await pilot.press("slash", *"concept:convolution -kind:reverse", "enter")
        await settle(app, pilot)
        assert rows(screen) == ["convolution/definition", "convolution/t"]
        # The side panel shows the highlighted card as the quiz would, and its history.
        side = text_of(screen.query_one("#card-face", Static))
        assert "convolution/definition" in side and "— answer —" in side
        assert "never answered" in text_of(screen.query_one("#card-history", Static))
        await pilot.press("down")
        await settle(app, pilot)
        assert "What does conv2d compute?" in text_of(screen.query_one("#card-face", Static))


async def test_a_bad_search_says_where_and_keeps_what_was_typed(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_browser(app, pilot, "kind:cloze (is:new")
        assert text_of(screen.query_one("#card-count", Static)) == "search, column 12: '(' is never closed"
        assert screen.query_one("#card-query", Input).value == "kind:cloze (is:new"


async def test_keys_suspend_bury_flag_and_undo_change_the_stored_card(make_app, app_settings):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_browser(app, pilot, "concept:convolution")
        assert rows(screen)[0] == "convolution/definition"
        await pilot.press("s")
        await settle(app, pilot)
        assert cell(screen, "convolution/definition", "flags") == "suspended"
        await pilot.press("b", "f", "f")
        await settle(app, pilot)
        assert cell(screen, "convolution/definition", "flags") == "suspended, buried, orange flag"
        assert [c.card_id for c in app.kb.search_cards("is:suspended is:buried flag:2")] == ["convolution/definition"]
        await pilot.press("u")  # the last change only: orange back to red
        await settle(app, pilot)
        assert cell(screen, "convolution/definition", "flags") == "suspended, buried, red flag"
        await pilot.press("s")  # unsuspend
        await settle(app, pilot)
        assert cell(screen, "convolution/definition", "flags") == "buried, red flag"
        history = text_of(screen.query_one("#card-history", Static))
        assert "suspend" in history and "bury" in history and "flag" in history
    conn = sqlite3.connect(app_settings.db_path)
    logged = conn.execute("SELECT kind, rating FROM review_log").fetchall()
    conn.close()
    assert logged == [("manual", 0)] * 4  # suspend, bury, flag, (a flag taken back: gone), unsuspend


async def test_enter_opens_the_concept_and_z_quizzes_the_search(make_app):
    from app.screens.concept import ConceptScreen
    from app.screens.quiz import QuizScreen

    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_browser(app, pilot, "concept:convolution kind:typed")
        assert rows(screen) == ["convolution/t"]
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConceptScreen) and app.screen.concept_id == "convolution"
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is screen
        await pilot.press("z")
        await settle(app, pilot)
        assert isinstance(app.screen, QuizScreen)
        assert app.screen.session.search == "concept:convolution kind:typed"
        assert app.screen.item.card.card_id == "convolution/t"


async def test_sorting_by_a_column_and_back(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_browser(app, pilot)
        in_order = rows(screen)
        await pilot.press("t")  # by card id, ascending
        await settle(app, pilot)
        assert rows(screen) == sorted(in_order)
        await pilot.press("t")  # descending
        await settle(app, pilot)
        assert rows(screen) == sorted(in_order, reverse=True)


async def test_usable_at_80x24_with_the_panel_on_p(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(app, pilot, "concept:convolution")
        side = screen.query_one("#card-side")
        assert not side.display  # the table gets the width
        assert screen.query_one("#card-table", DataTable).size.width >= 78
        await pilot.press("p")
        await settle(app, pilot)
        assert side.display and "convolution/definition" in text_of(screen.query_one("#card-face", Static))


async def test_the_palette_opens_the_browser_on_the_concept_shown(make_app):
    from app.screens.cards import CardBrowserScreen

    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        app.open_concept("convolution")
        await settle(app, pilot)
        await pilot.press("ctrl+p", *"Cards of this concept")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, CardBrowserScreen)
        assert rows(app.screen) == ["convolution/definition", "convolution/reverse", "convolution/t"]


async def test_y_and_shift_y_copy_the_snippet_and_the_formulas_latex(make_app):
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        app.open_concept("self-attention")
        await settle(app, pilot)
        await pilot.press("y")
        assert app.clipboard.startswith("import numpy as np\n") and "assert x.sum() == 15" in app.clipboard
        await pilot.press("Y")
        assert app.clipboard == "% attention\n\\mathrm{softmax}(QK^\\top/\\sqrt{d_k})V"
        app.open_concept("convolution")
        await settle(app, pilot)
        await pilot.press("y")
        assert app.clipboard.startswith("% attention")  # nothing to copy: the clipboard is left alone


async def test_the_palette_exports_to_anki_and_runs_the_snippet_shown(make_app, app_settings):
    import zipfile

    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p", *"Export to Anki")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        (package,) = (app_settings.home / "exports").glob("kb-*.apkg")
        assert "collection.anki2" in zipfile.ZipFile(package).namelist() or any(
            name.startswith("collection.anki") for name in zipfile.ZipFile(package).namelist()
        )
        app.open_concept("self-attention")
        await settle(app, pilot)
        await pilot.press("ctrl+p", *"Run this snippet")
        await settle(app, pilot)
        await pilot.press("enter")
        for _ in range(100):
            await settle(app, pilot)
            if not app.screen.running:
                break
        assert "passed" in text_of(app.screen.query_one("#run-status", Static))
