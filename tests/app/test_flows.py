"""Pilot tests of each flow: browse, search in Chinese, open, run, quiz to its summary, add a note."""

from __future__ import annotations

import sqlite3

import pytest
from textual.widgets import Input, OptionList, RichLog, Static, TextArea

from helpers import settle, text_of, write_concept
from kb.categories import CATEGORIES

SIZE = (100, 30)


async def test_browse_lists_concepts_and_previews(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        options = app.screen.query_one("#concepts", OptionList)
        assert options.option_count == 3
        assert app.sub_title.endswith("due today")
        assert "Convolution" in text_of(app.screen.query_one("#preview-text", Static)) or options.highlighted == 0


async def test_search_as_you_type_in_chinese(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press("注", "意")
        await settle(app, pilot)
        options = app.screen.query_one("#concepts", OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["self-attention"]
        await pilot.press("backspace", "backspace", "卷", "积")
        await settle(app, pilot)
        assert options.get_option_at_index(0).id == "convolution"


async def test_open_concept_render_math_and_run_snippet(make_app):
    from app.screens.concept import ConceptScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"attention", "enter", "enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ConceptScreen) and screen.concept_id == "self-attention"
        formulas = text_of(screen.query_one("#formulas", Static))
        assert "softmax((QKᵀ)" in formulas or "softmax(QKᵀ" in formulas
        assert "\\mathrm" not in formulas
        await pilot.press("l")
        assert "\\mathrm{softmax}" in text_of(screen.query_one("#formulas", Static))
        await pilot.press("r")
        await settle(app, pilot)
        log = screen.query_one("#output", RichLog)
        logged = "\n".join(line.text for line in log.lines)
        status = text_of(screen.query_one("#run-status", Static))
        assert "shape (2, 3)" in logged and "passed on cpu" in status and "running" not in status
        assert f"(isolation: {app.kb.isolation_level()})" in status
        assert "Last run: passed on cpu" in text_of(screen.query_one("#verdict", Static))
        await pilot.press("escape")
        assert type(app.screen).__name__ == "BrowseScreen"


async def test_quiz_session_ends_in_summary_matching_review_log(make_app, app_settings):
    from app.screens.quiz import QuizScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QuizScreen)
        for _ in range(40):
            if screen.finished:
                break
            card = screen.item.card
            if card.auto_graded and not card.options:
                await pilot.press(*"cross-correlation", "enter")
                assert "correct" in text_of(screen.query_one("#verdict", Static))
                await pilot.press("enter")  # accept the proposed rating
            else:
                await pilot.press("space")
                assert "Good (" in text_of(screen.query_one("#buttons", Static))
                await pilot.press("4")  # easy: out of today's queue
            await settle(app, pilot)
        assert screen.finished
        summary = text_of(screen.query_one("#prompt", Static))
        conn = sqlite3.connect(app_settings.db_path)
        reviews = conn.execute("SELECT count(*), sum(rating > 1) FROM review_log").fetchone()
        conn.close()
        assert reviews[0] == screen.answered >= 3
        assert summary.startswith(f"{reviews[0]} reviewed, {reviews[1]} recalled")


async def test_quiz_undo_takes_back_the_answer(make_app, app_settings):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await settle(app, pilot)
        first = app.screen.item.card.card_id
        if app.screen.item.card.auto_graded:
            await pilot.press("enter")
        await pilot.press("space", "3")
        await settle(app, pilot)
        await pilot.press("u")
        await settle(app, pilot)
        conn = sqlite3.connect(app_settings.db_path)
        assert conn.execute("SELECT count(*) FROM review_log").fetchone()[0] == 0
        conn.close()
        assert app.screen.item.card.card_id == first


async def test_add_note_with_an_error_then_fix_it(make_app, app_settings):
    from app.screens.concept import ConceptScreen
    from app.screens.note import NoteEditorScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        editor_screen = app.screen
        assert isinstance(editor_screen, NoteEditorScreen)
        area = editor_screen.query_one("#editor", TextArea)
        area.text = area.text.replace("id: my-concept", "id: my-note").replace("definition:", "defintion:")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        errors = text_of(editor_screen.query_one("#note-errors", Static))
        assert "unknown field 'defintion' (did you mean 'definition'?)" in errors
        # Named as the file it will be saved as, never as the hidden draft kb checks.
        assert f"{app_settings.notes_dir / 'fundamentals' / 'my-note.yaml'}:" in errors and ".drafts" not in errors
        assert app.screen is editor_screen  # still editing, text kept
        area.text = area.text.replace("defintion:", "definition:")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, ConceptScreen) and app.screen.concept_id == "my-note"
        assert (app_settings.notes_dir / "fundamentals" / "my-note.yaml").exists()


async def test_deck_text_is_shown_literally(make_app):
    """Markup in deck text is displayed as typed, and no action fires."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"标记", "enter", "enter")
        await settle(app, pilot)
        titles = text_of(app.screen.query_one("#titles", Static))
        assert "a[i] and [/x] [@click=app.quit]" in titles
        assert app.is_running


async def test_help_lists_the_screen_keys(make_app):
    from app.screens.help import HelpScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = "\n".join(text_of(s) for s in app.screen.query(Static))
        for words in ("Search", "Quiz", "Stats", "Add note", "Help"):
            assert words in shown
        await pilot.press("escape")
        assert type(app.screen).__name__ == "BrowseScreen"


async def test_stats_screen_shows_numbers(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
        numbers = text_of(app.screen.query_one("#numbers", Static))
        assert "Cards" in numbers and "Retention" in numbers and "next 7 days" in numbers


async def test_live_reload_shows_a_new_note(make_app, app_settings):
    from helpers import write_concept

    app = make_app(watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        write_concept(app_settings.bundled_content, "fresh-note", title_en="Fresh Note", title_zh="新笔记")
        options = app.screen.query_one("#concepts", OptionList)
        for _ in range(100):
            await pilot.pause(0.1)
            await settle(app, pilot)
            if options.option_count == 4:
                break
        assert options.option_count == 4


async def test_command_palette_finds_a_concept_in_chinese(make_app):
    from app.screens.concept import ConceptScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press("卷", "积")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, ConceptScreen) and app.screen.concept_id == "convolution"


async def test_snippet_output_control_characters_are_escaped(make_app, app_settings):
    """ANSI and bidi characters in a snippet's output are shown escaped, not sent raw."""
    from helpers import write_concept

    write_concept(
        app_settings.bundled_content,
        "noisy-output",
        title_en="Noisy Output",
        title_zh="噪声输出",
        extra="snippet:\n  requires: [numpy]\n  code: |\n    print('\\x1b[2Jcleared\\u202eevil')\n",
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"Noisy", "enter", "enter")
        await settle(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        logged = "\n".join(line.text for line in app.screen.query_one("#output", RichLog).lines)
        assert "\\x1b[2Jcleared\\u202eevil" in logged
        assert "\x1b" not in logged and "\u202e" not in logged


async def test_untrusted_snippet_is_not_run_until_confined(make_app, app_settings, tmp_path):
    """In the TUI, `r` on an untrusted deck's snippet says why it did not run; `R` runs it confined."""
    import dataclasses

    from app.app import KBApp
    from helpers import FIXED_NOW, write_concept
    from kb.runner.sandbox import sandbox_level

    lab = tmp_path / "lab"
    write_concept(
        lab,
        "lab-snippet",
        title_en="Lab Snippet",
        title_zh="实验片段",
        extra="snippet:\n  code: |\n    print('lab code ran')\n",
    )
    app = KBApp(dataclasses.replace(app_settings, extra_content=(lab,)), clock=lambda: FIXED_NOW, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"Lab Snippet", "enter", "enter")
        await settle(app, pilot)
        assert app.screen.concept_id == "lab-snippet" and app.screen.sub_title == "lab-snippet  ·  deck lab"
        await pilot.press("r")
        await settle(app, pilot)
        logged = "\n".join(line.text for line in app.screen.query_one("#output", RichLog).lines)
        status = text_of(app.screen.query_one("#run-status", Static))
        assert "not run: the deck lab is not trusted" in status and "lab code ran" not in logged
        if sandbox_level() == "rlimits-only":
            return  # no sandbox here: R is refused the same way (tests/kb/service/test_decks.py covers it)
        assert "press R" in status
        await pilot.press("R")
        await settle(app, pilot)
        logged = "\n".join(line.text for line in app.screen.query_one("#output", RichLog).lines)
        assert "lab code ran" in logged and "passed on cpu" in text_of(app.screen.query_one("#run-status", Static))


async def test_live_reload_shows_a_deck_imported_in_another_terminal(make_app, app_settings, tmp_path):
    """`kb import` renames a finished deck into $KB_HOME/decks/: the open app lists it without a restart."""
    from helpers import write_concept
    from kb.service import KnowledgeBase, import_deck

    lab = tmp_path / "lab-src"
    write_concept(lab, "lab-imported", title_en="Lab Imported", title_zh="导入")
    app = make_app(watch=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        options = app.screen.query_one("#concepts", OptionList)
        before = options.option_count
        with KnowledgeBase(app_settings) as other_terminal:
            import_deck(other_terminal, lab, name="lab")
        for _ in range(100):
            await pilot.pause(0.1)
            await settle(app, pilot)
            if options.option_count == before + 1:
                break
        assert options.option_count == before + 1


async def test_a_card_answered_in_another_terminal_meanwhile_is_skipped(make_app, app_settings):
    """Two quizzes at once: the second answer of one card is not recorded, the session goes on."""
    from helpers import FIXED_NOW
    from kb.service import KnowledgeBase

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await settle(app, pilot)
        shown = app.screen.item
        with KnowledgeBase(app_settings, clock=lambda: FIXED_NOW) as other:  # another terminal
            other.answer(shown.card.card_id, 3)
        if shown.card.auto_graded and not shown.card.options:
            await pilot.press("enter")
        await pilot.press("space", "1")
        await settle(app, pilot)
        assert any("answered in another session" in n.message for n in app._notifications)
        assert app.screen.item is None or app.screen.item.card.card_id != shown.card.card_id
        assert app.screen.answered == 0
        conn = sqlite3.connect(app_settings.db_path)
        try:
            assert conn.execute("SELECT count(*), min(rating) FROM review_log").fetchone() == (1, 3)
        finally:
            conn.close()


async def test_a_new_quiz_session_has_nothing_to_undo(make_app, app_settings):
    """u takes back this session's answers only: a second session cannot erase the first one's."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await settle(app, pilot)
        if app.screen.item.card.auto_graded:
            await pilot.press("enter")
        await pilot.press("space", "3")
        await settle(app, pilot)
        await pilot.press("escape")  # leave: the session ends
        await settle(app, pilot)
        await pilot.press("q")  # a new session
        await settle(app, pilot)
        for _ in range(3):
            await pilot.press("u")
            await settle(app, pilot)
        assert [n.message for n in app._notifications][-1] == "Nothing to undo in this session."
        conn = sqlite3.connect(app_settings.db_path)
        try:
            assert conn.execute("SELECT count(*) FROM review_log").fetchone()[0] == 1
        finally:
            conn.close()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_concept_list_keeps_every_wrapped_line(make_app, deck, size):
    """Long English and Chinese titles wrap; with a scrollbar shown no line of them may be dropped."""
    from rich.text import Text

    for i in range(60):
        write_concept(
            deck,
            f"long-title-{i:02d}",
            title_en=f"A rather long concept title number {i} that wraps",
            title_zh="一个相当长的概念标题，在窄的终端里会折成好几行" + "字" * (i % 7),
        )
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        options = app.screen.query_one("#concepts", OptionList)
        width = options.scrollable_content_region.width
        needed = sum(
            len(Text(str(options.get_option_at_index(i).prompt)).wrap(app.console, width))
            for i in range(options.option_count)
        )
        assert options.show_vertical_scrollbar
        assert options.virtual_size.height == needed


async def test_the_footer_of_a_choice_card_says_choose_then_rate(make_app, deck):
    from textual.widgets._footer import FooterKey

    from app.messages import QuizItemReady
    from app.screens.quiz import QuizScreen

    write_concept(
        deck,
        "choice-note",
        extra="cards:\n  - {type: choice, id: c, question: 'Pick one?', answer: Right, "
        "distractors: [Wrong, Worse, Worst]}\n",
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, QuizScreen)
        screen.session.current = app.kb.quiz_item("choice-note/c")  # a choice card now
        screen.post_message(QuizItemReady(screen.session.current, 1))
        await settle(app, pilot)

        def footer() -> list[str]:
            return [key.description for key in screen.query(FooterKey)]

        assert "Choose an option" in footer() and not {"Again", "Good"} & set(footer())
        await pilot.press("2")  # picks option 2 and shows the answer
        await settle(app, pilot)
        assert screen.revealed and {"Again", "Hard", "Good", "Easy"} <= set(footer())
        assert "Choose an option" not in footer()


async def test_the_concept_screen_shows_sources_and_links_by_title(make_app, deck):
    from app.screens.concept import ConceptScreen

    write_concept(
        deck,
        "sourced",
        extra="related: [convolution]\nsources:\n  - {title: The paper, url: 'https://example.org/paper'}\n",
    )
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.push_screen(ConceptScreen("sourced"))
        await settle(app, pilot)
        sources = text_of(app.screen.query_one("#sources", Static))
        assert "The paper" in sources and "https://example.org/paper" in sources
        links = app.screen.query_one("#links", OptionList)
        assert str(links.get_option_at_index(0).prompt) == "related: Convolution · 卷积"


async def test_the_theme_is_kept_across_restarts(make_app, app_settings, deck):
    from app.app import KBApp
    from kb.config import load_settings

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = app.theme
        await pilot.press("f2")
        await settle(app, pilot)
        chosen = app.theme
        assert chosen != before
    assert f'theme = "{chosen}"' in (app_settings.home / "settings.toml").read_text()
    settings = load_settings({"KB_HOME": str(app_settings.home), "KB_BUNDLED_CONTENT": str(deck)})
    restarted = KBApp(settings, watch=False, keep_running_on_error=False)
    async with restarted.run_test(size=SIZE) as pilot:
        await settle(restarted, pilot)
        assert restarted.theme == chosen


async def test_a_selected_category_is_a_visible_filter_that_x_clears(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        screen = app.screen
        categories = screen.query_one("#categories")
        categories.focus()
        await pilot.press(*["down"] * (1 + CATEGORIES.index("layers")), "enter")
        await settle(app, pilot)
        await pilot.press("slash", *"attention")
        await settle(app, pilot)
        options = screen.query_one("#concepts", OptionList)
        shown = text_of(screen.query_one("#filter", Static))
        assert options.option_count == 0  # Self-Attention is not in layers ...
        assert (
            screen.query_one("#filter").display and "only layers; 1 more in other categories" in shown
        )  # ... and it says so
        await pilot.press("enter", "x")
        await settle(app, pilot)
        assert not screen.query_one("#filter").display and categories.chosen == 0
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["self-attention"]


async def test_links_open_on_the_same_screen_with_back_and_forward(make_app):
    from app.screens.concept import ConceptScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"attention", "enter", "enter")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, ConceptScreen) and screen.concept_id == "self-attention"
        links = screen.query_one("#links", OptionList)
        links.focus()
        links.highlighted = 0  # prerequisite: Convolution
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is screen and screen.concept_id == "convolution"
        assert "Convolution" in text_of(screen.query_one("#titles", Static))
        assert "Self-Attention" not in text_of(screen.query_one("#titles", Static))
        assert not screen.query_one("#formulas", Static).display or "softmax" not in text_of(
            screen.query_one("#formulas", Static)
        )  # nothing of the previous concept is left behind
        await pilot.press("left_square_bracket")
        await settle(app, pilot)
        assert screen.concept_id == "self-attention" and "Self-Attention" in text_of(
            screen.query_one("#titles", Static)
        )
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert screen.concept_id == "convolution"
        await pilot.press("escape")  # back through the links first ...
        await settle(app, pilot)
        assert app.screen is screen and screen.concept_id == "self-attention"
        await pilot.press("escape")  # ... then to the list
        await settle(app, pilot)
        assert type(app.screen).__name__ == "BrowseScreen"
        await pilot.press("down", "enter")  # another concept from the list starts a new history
        await settle(app, pilot)
        assert app.screen is screen and not screen.back_stack


async def test_a_click_on_a_category_filters_the_list(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.click("#categories", offset=(4, 1 + CATEGORIES.index("attention")))
        await settle(app, pilot)
        options = app.screen.query_one("#concepts", OptionList)
        assert [options.get_option_at_index(i).id for i in range(options.option_count)] == ["self-attention"]
        assert "only attention" in text_of(app.screen.query_one("#filter", Static))
