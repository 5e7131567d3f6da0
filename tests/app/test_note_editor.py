"""The in-app note editor: esc leaves (asking first when the text changed); errors name the file being
edited, every error of a note at once; a cloze card without a deletion is an error."""

from __future__ import annotations

from textual.widgets import TextArea

from app.screens.note import DiscardChangesScreen, NoteEditorScreen
from helpers import settle, write_concept


async def _open_editor(app, pilot, path=None):
    from app.screens.note import edit_note

    edit_note(app, str(path) if path else None)
    await settle(app, pilot)
    assert isinstance(app.screen, NoteEditorScreen)


async def test_escape_leaves_an_unchanged_editor(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await _open_editor(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, NoteEditorScreen)


async def test_escape_with_changes_asks_and_keeps_or_discards(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await _open_editor(app, pilot)
        await pilot.press("x", "y")
        await pilot.press("escape")
        await settle(app, pilot)
        assert isinstance(app.screen, DiscardChangesScreen)
        await pilot.press("escape")  # keep editing: the text is still there
        await settle(app, pilot)
        assert isinstance(app.screen, NoteEditorScreen) and "xy" in app.screen.query_one("#editor", TextArea).text
        await pilot.press("escape", "d")
        await settle(app, pilot)
        assert not isinstance(app.screen, (NoteEditorScreen, DiscardChangesScreen))


async def test_errors_name_the_file_being_edited_and_come_all_at_once(make_app, app_settings):
    note = write_concept(app_settings.notes_dir, "my-edit")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await _open_editor(app, pilot, note)
        editor = app.screen.query_one("#editor", TextArea)
        broken = editor.text.replace("definition:", "defintion:") + (
            "related: [no-such-concept]\ncards:\n  - {type: cloze, id: c, text: 'No deletion here.'}\n"
        )
        editor.text = broken
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        shown = str(app.screen.query_one("#note-errors").render())
        assert ".drafts" not in shown and str(note) in shown
        for part in (
            "unknown field 'defintion'",
            "missing required field 'definition'",
            "unknown id 'no-such-concept' in related",
            "a cloze card needs at least one deletion",
        ):
            assert part in shown, (part, shown)
