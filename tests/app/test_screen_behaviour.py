"""What each screen shows, read from its widgets after real key presses.

The SVG snapshots notice a changed picture, but not what it should say; these tests assert on text
that only the feature under test can produce: the browse preview follows the highlight, a search
narrows the list, the concept screen shows the entry's own definition, formulas, links and snippet,
the stats screen shows the numbers of reviews stored through the service, the help screen lists the
keys of the screen under it, and the note editor opens on the template or on the note's file.
"""

from __future__ import annotations

import re
from datetime import timedelta

from textual.widgets import OptionList, Static, TextArea

from helpers import FIXED_NOW, Clock, settle, text_of, write_concept
from kb.categories import CATEGORIES

SIZE = (100, 30)


def listed(screen) -> list[str]:
    """The concept ids the browse list shows, in order."""
    options = screen.query_one("#concepts", OptionList)
    return [options.get_option_at_index(i).id for i in range(options.option_count)]


def preview(screen) -> str:
    return text_of(screen.query_one("#preview-text", Static))


# --- browse -------------------------------------------------------------------------------------


async def test_moving_the_highlight_previews_that_concept(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        ids = listed(screen)
        assert sorted(ids) == ["convolution", "markup-test", "self-attention"]
        titles = {concept["id"]: concept["title"] for concept in app.kb.list_concepts(None)}
        options = screen.query_one("#concepts", OptionList)
        assert app.focused is options and options.highlighted == 0

        seen = []
        for index, concept_id in enumerate(ids):
            if index:
                await pilot.press("down")
                await settle(app, pilot)
            assert options.highlighted == index
            shown = preview(screen)
            en, zh = titles[concept_id]["en"], titles[concept_id]["zh"]
            # Titles and both summaries of the highlighted concept, and of no other.
            assert en in shown and zh in shown, (concept_id, shown)
            assert f"Summary of {en}." in shown and f"{zh}的摘要。" in shown
            for other in ids:
                if other != concept_id:
                    assert f"Summary of {titles[other]['en']}." not in shown
            seen.append(shown)
        assert len(set(seen)) == len(ids)

        # The detail line: category, tags, cards and whether the snippet has run.
        await pilot.press("home")
        await settle(app, pilot)
        for _ in range(ids.index("self-attention")):
            await pilot.press("down")
        await settle(app, pilot)
        shown = preview(screen)
        assert "attention · transformer" in shown
        assert "snippet: not run yet (press enter, then r)" in shown


async def test_search_narrows_the_list_and_escape_brings_it_back(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert text_of(screen.query_one("#count", Static)) == "3 concepts"
        await pilot.press("slash", *"convolution")
        await settle(app, pilot)
        assert listed(screen) == ["convolution"]
        assert text_of(screen.query_one("#count", Static)) == "1 concept matching 'convolution'"
        assert "Summary of Convolution." in preview(screen)

        await pilot.press("backspace", *"xyzzy")
        await settle(app, pilot)
        assert listed(screen) == []
        assert "No concept matches" in preview(screen)

        await pilot.press("escape")  # clears the search
        await settle(app, pilot)
        assert sorted(listed(screen)) == ["convolution", "markup-test", "self-attention"]
        assert text_of(screen.query_one("#count", Static)) == "3 concepts"


async def test_choosing_a_category_filters_the_list_and_x_clears_it(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        screen.query_one("#categories").focus()
        await pilot.press(*["down"] * (CATEGORIES.index("layers") + 1), "enter")
        await settle(app, pilot)
        assert listed(screen) == ["convolution"]
        filter_line = screen.query_one("#filter", Static)
        assert filter_line.display and text_of(filter_line).startswith("only layers")
        await pilot.press("x")
        await settle(app, pilot)
        assert sorted(listed(screen)) == ["convolution", "markup-test", "self-attention"]
        assert not filter_line.display


# --- concept ------------------------------------------------------------------------------------


async def _open(app, pilot, words: str):
    from app.screens.concept import ConceptScreen

    await pilot.press("slash", *words, "enter", "enter")
    await settle(app, pilot)
    assert isinstance(app.screen, ConceptScreen)
    return app.screen


async def test_concept_screen_shows_the_entry(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await _open(app, pilot, "attention")
        assert screen.concept_id == "self-attention"
        assert "Self-Attention  ·  自注意力" in text_of(screen.query_one("#titles", Static))
        assert "Summary of Self-Attention." in text_of(screen.query_one("#summary", Static))
        definition = text_of(screen.query_one("#definition", Static))
        assert "Each token mixes the values of all tokens with softmax weights" in definition
        assert "√" in definition and "\\sqrt" not in definition  # its math as text

        formulas = text_of(screen.query_one("#formulas", Static))
        assert "Formulas" in formulas and "attention:" in formulas and "Q: queries" in formulas
        assert "softmax(" in formulas and "\\mathrm" not in formulas

        snippet = text_of(screen.query_one("#snippet", Static))
        assert "x = np.arange(6).reshape(2, 3)" in snippet and 'print("shape", x.shape)' in snippet
        # Numbered as lines of the YAML file, not from 1.
        numbers = [int(m) for m in re.findall(r"^\s*(\d+) ", snippet, re.M)]
        assert len(numbers) == 4 and numbers == list(range(numbers[0], numbers[0] + 4)) and numbers[0] > 1
        assert text_of(screen.query_one("#verdict", Static)) == "Not run yet: press r."

        links = screen.query_one("#links", OptionList)
        labels = [str(links.get_option_at_index(i).prompt) for i in range(links.option_count)]
        assert labels == [
            "prerequisite: Convolution · 卷积",
            "related: Index a[i] and [/x] [@click=app.quit] · 标记",
        ]  # each concept once


async def test_concept_links_open_and_escape_goes_back_through_them(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = await _open(app, pilot, "attention")
        links = screen.query_one("#links", OptionList)
        links.focus()
        await pilot.press("home", "enter")  # the first link: the prerequisite
        await settle(app, pilot)
        assert app.screen is screen and screen.concept_id == "convolution"
        assert "Convolution  ·  卷积" in text_of(screen.query_one("#titles", Static))
        assert text_of(screen.query_one("#snippet", Static)) == "No snippet."
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is screen and screen.concept_id == "self-attention"
        assert "Self-Attention" in text_of(screen.query_one("#titles", Static))
        await pilot.press("escape")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "BrowseScreen"


# --- stats --------------------------------------------------------------------------------------


async def test_stats_screen_shows_the_reviews_made(make_app, app_settings):
    from kb.service import KnowledgeBase

    # Two cards answered ten days ago, then again today (the app's clock is FIXED_NOW): one recalled,
    # one forgotten. That is 4 reviews, 2 of them today, and a true retention of 1 of 2 this week.
    clock = Clock(FIXED_NOW - timedelta(days=10))
    with KnowledgeBase(app_settings, clock=clock) as kb:
        kb.sync()
        cards = [entry.card_id for entry in kb.due_queue()][:2]
        assert len(cards) == 2
        for card in cards:
            kb.answer(card, 3)
        clock.now = FIXED_NOW - timedelta(hours=1)
        kb.answer(cards[0], 3)
        kb.answer(cards[1], 1)
        expected = kb.stats()
        cards_total = expected["cards_total"]
    assert expected["reviews_total"] == 4 and expected["reviews_today"] == 2

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "StatsScreen"
        numbers = text_of(app.screen.query_one("#numbers", Static))
        assert re.search(r"^Reviews\s+4\s+today 2, streak 1 day\(s\)$", numbers, re.M), numbers
        assert re.search(rf"^Cards\s+{cards_total}\s", numbers, re.M) and cards_total > 2
        per_day = re.search(r"^Reviews per day \(last 30\): (.*)$", numbers, re.M).group(1).split()
        assert len(per_day) == 30 and per_day[-1] == "2" and per_day[-11] == "2"
        assert sum(map(int, per_day)) == 4
        # The True retention table, with this week's row: 1 passed of 2 reviews.
        assert "True retention (recalled / reviews on a later day" in numbers
        assert "by week" in numbers and "by month" in numbers
        week = FIXED_NOW.date()
        row = re.search(rf"^\s+{week - timedelta(days=6)}\.\.{week}\s+(\d+)\s+(\d+)\s+(\S+)$", numbers, re.M)
        assert row and row.groups() == ("1", "2", "50.0%"), numbers
        await pilot.press("escape")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "BrowseScreen"


async def test_stats_screen_without_reviews_says_so(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
        numbers = text_of(app.screen.query_one("#numbers", Static))
        assert re.search(r"^Reviews\s+0\s+today 0, streak 0 day\(s\)$", numbers, re.M), numbers
        assert re.search(r"^Retention\s+n/a\s", numbers, re.M)


# --- help ---------------------------------------------------------------------------------------


def _help_text(screen) -> str:
    return "\n".join(text_of(widget) for widget in screen.query(Static))


async def test_help_lists_the_keys_of_the_screen_under_it(make_app):
    from app.screens.help import HelpScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        await settle(app, pilot)
        assert isinstance(app.screen, HelpScreen)
        shown = _help_text(app.screen)
        assert "Keys: Browse" in shown
        for key, description in (
            ("/", "Search"),
            ("q", "Quiz"),
            ("s", "Stats"),
            ("a", "Add note"),
            ("?", "Help"),
            ("ctrl+q", "Quit"),
        ):
            assert re.search(rf"^\s+{re.escape(key)}\s+{description}\b", shown, re.M), (key, shown)
        assert "Search as you type (English or 中文)" in shown  # the tooltip beside the key
        await pilot.press("escape")
        await settle(app, pilot)
        assert type(app.screen).__name__ == "BrowseScreen"

        await _open(app, pilot, "attention")
        await pilot.press("question_mark")
        await settle(app, pilot)
        shown = _help_text(app.screen)
        assert "Keys: Concept" in shown
        assert re.search(r"^\s+r\s+Run snippet\s+Run the snippet in an isolated worker", shown, re.M), shown
        assert re.search(r"^\s+l\s+LaTeX\b", shown, re.M) and not re.search(r"^\s+/\s+Search", shown, re.M)


# --- note editor --------------------------------------------------------------------------------


async def test_a_opens_the_note_editor_on_the_template(make_app):
    from app.screens.note import NoteEditorScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        assert isinstance(app.screen, NoteEditorScreen)
        editor = app.screen.query_one("#editor", TextArea)
        assert app.focused is editor
        assert editor.text == app.kb.note_template() and "id: my-concept" in editor.text
        assert text_of(app.screen.query_one("#note-title", Static)).startswith("New note: edit the YAML")


async def test_e_on_a_note_opens_its_file_and_on_a_bundled_concept_says_why_not(make_app, app_settings):
    from app.screens.concept import ConceptScreen
    from app.screens.note import NoteEditorScreen

    note = write_concept(app_settings.notes_dir, "my-edit", title_en="My Edit Note")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await _open(app, pilot, "convolution")
        await pilot.press("e")
        await settle(app, pilot)
        assert isinstance(app.screen, ConceptScreen)  # a bundled concept is not edited here...
        told = [n.message for n in app._notifications if n.severity == "warning"]  # ... and the user is told why
        assert any("only notes in your notes deck can be edited here" in m for m in told), told
        await pilot.press("escape")
        await settle(app, pilot)

        await _open(app, pilot, "My Edit Note")
        assert app.screen.concept_id == "my-edit"
        await pilot.press("e")
        await settle(app, pilot)
        assert isinstance(app.screen, NoteEditorScreen)
        assert app.screen.query_one("#editor", TextArea).text == note.read_text(encoding="utf-8")
        assert text_of(app.screen.query_one("#note-title", Static)) == f"Editing {note}"


async def test_z_on_a_concept_quizzes_that_concept_only(make_app, app_settings):
    """Custom study from the concept screen: only this concept's cards, both of them today (the daily
    quiz would bury the second), answered as real reviews."""
    import sqlite3

    from app.screens.quiz import QuizScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await _open(app, pilot, "convolution")
        await pilot.press("z")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QuizScreen)
        seen = []
        for _ in range(6):
            if screen.finished:
                break
            card = screen.item.card
            seen.append(card.card_id)
            if card.auto_graded and not card.options:
                await pilot.press(*"cross-correlation", "enter")
            else:
                await pilot.press("space")
            await pilot.press("4")
            await settle(app, pilot)
        assert screen.finished
        assert seen and all(card_id.startswith("convolution/") for card_id in seen)
        assert len(seen) == 3  # definition, reverse and the typed card
    conn = sqlite3.connect(app_settings.db_path)
    logged = conn.execute("SELECT c.card_id FROM review_log r JOIN card c ON c.pk = r.card_pk ORDER BY r.id").fetchall()
    conn.close()
    assert [row[0] for row in logged] == seen


async def test_the_palette_offers_kb_actions(make_app):
    """ctrl+p finds actions as well as concepts: stats from the list, and a quiz on the concept shown."""
    from app.screens.quiz import QuizScreen
    from app.screens.stats import StatsScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p", *"Stats")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, StatsScreen)
        await pilot.press("escape")
        await settle(app, pilot)
        await _open(app, pilot, "convolution")
        await pilot.press("ctrl+p", *"Quiz me on this")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, QuizScreen)
        assert app.screen.session.search == 'concept:"convolution"'
        assert app.screen.item is not None and app.screen.item.card.concept_id == "convolution"


async def test_settings_screen_changes_a_setting_and_refuses_a_bad_value(make_app, app_settings):
    from textual.widgets import Input

    from app.screens.settings import SettingsScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("o")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        options = screen.query_one("#setting-list", OptionList)
        keys = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert "new_per_day" in keys and "desired_retention" in keys and "learning_steps" in keys
        options.highlighted = keys.index("new_per_day")
        await pilot.press("enter")
        box = screen.query_one("#setting-value", Input)
        assert box.display and box.value == "20"
        box.value = "lots"
        await pilot.press("enter")
        await settle(app, pilot)
        assert "new_per_day: 'lots' is not a whole number" in text_of(screen.query_one("#setting-message", Static))
        assert not (app_settings.home / "settings.toml").exists()  # nothing stored
        box.value = "7"
        await pilot.press("enter")
        await settle(app, pilot)
        assert "new_per_day = 7" in (app_settings.home / "settings.toml").read_text()
        assert app.kb.settings.new_per_day == 7  # used from now on
        row = str(options.get_option_at_index(keys.index("new_per_day")).prompt)
        assert "7" in row and "settings.toml" in row
