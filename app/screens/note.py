"""Add or edit a note: $EDITOR (or an in-app YAML editor) on a template, validated on save.

Errors are shown with path:line:col and the user goes back to fix them; nothing typed is lost.
On success the note is saved in the notes deck, synced and opened.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Header, Static, TextArea

from app.i18n import _, translate_bindings
from app.screens.base import KBScreen
from app.text import plain
from kb.errors import KbError

if TYPE_CHECKING:
    from app.app import KBApp


def edit_note(app: KBApp, source_path: str | None) -> None:
    """Open the note flow: in the user's $EDITOR when set, else in the in-app editor."""
    kb = app.service
    path = Path(source_path) if source_path else None
    try:
        text = path.read_text(encoding="utf-8") if path else kb.note_template()
    except OSError as exc:  # deleted or unreadable between the check and the read
        app.notify(
            _("cannot open {path}: {error}").format(path=path, error=exc.strerror or exc),
            severity="warning",
            markup=False,
        )
        return
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if editor:
        _external_loop(app, text, path, editor)
    else:
        app.push_screen(NoteEditorScreen(text, path))


def _external_loop(app: KBApp, text: str, path: Path | None, editor: str) -> None:
    kb = app.service
    drafts = kb.settings.notes_dir / ".drafts"
    drafts.mkdir(parents=True, exist_ok=True)
    draft = drafts / "editing.yaml"
    draft.write_text(text, encoding="utf-8")
    with app.suspend():
        subprocess.call([*shlex.split(editor), str(draft)])
    edited = draft.read_text(encoding="utf-8")
    # Validation problems go to the in-app editor, which shows them and keeps the text.
    app.push_screen(NoteEditorScreen(edited, path, validate_now=True))


class NoteEditorScreen(KBScreen):
    """An in-app YAML editor: ctrl+s validates and saves; errors stay on screen with path:line:col."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="save", priority=True),
        # Priority: the text area would otherwise take escape (to leave its own focus).
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="cancel",
            priority=True,
            tooltip="Leave the editor (asks first when the text was changed)",
        ),
    ]

    def __init__(self, text: str, path: Path | None, *, validate_now: bool = False) -> None:
        super().__init__()
        self.initial_text = text
        self.path = path
        self.validate_now = validate_now
        self.saving = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="note"):
            yield Static(
                plain(
                    _("Editing {path}").format(path=self.path)
                    if self.path
                    else _("New note: edit the YAML, then ctrl+s to validate and save (esc cancels)"),
                    "bold",
                ),
                id="note-title",
            )
            try:
                area = TextArea.code_editor(self.initial_text, language="yaml", id="editor")
            except Exception:  # no tree-sitter grammar for YAML installed: plain text
                area = TextArea.code_editor(self.initial_text, id="editor")
            yield area
            yield Static("", id="note-errors")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#editor", TextArea).focus()
        if self.validate_now:
            self.action_save()

    def action_save(self) -> None:
        if self.saving:
            return
        self.saving = True
        self.save(self.query_one("#editor", TextArea).text)

    @work(thread=True, exclusive=True, group="note-save", exit_on_error=False)
    def save(self, text: str) -> None:
        try:
            path, concept_id, errors = self.app.service.save_note(text, replace=self.path)
        except (KbError, OSError) as exc:  # shown in the editor, beside the text it is about
            path, concept_id, errors = None, None, [exc.user_message() if isinstance(exc, KbError) else str(exc)]
        self.app.call_from_thread(self._saved, path, concept_id, errors)

    def _saved(self, path: Path | None, concept_id: str | None, errors: list) -> None:
        self.saving = False
        box = self.query_one("#note-errors", Static)
        if errors:
            box.update(
                plain(
                    _("Not saved; fix these and press ctrl+s again:") + "\n" + "\n".join(str(e) for e in errors),
                    "bold red",
                )
            )
            first = errors[0]
            line = getattr(first, "line", None)
            if line:
                self.query_one("#editor", TextArea).cursor_location = (max(0, line - 1), max(0, first.col - 1))
            return
        box.update("")
        self.notify(_("Saved {path}").format(path=path), markup=False)
        self.app.pop_screen()
        if concept_id is not None:
            self.app.open_concept(concept_id)
        self.app.refresh_due()

    def action_cancel(self) -> None:
        if self.query_one("#editor", TextArea).text == self.initial_text:
            self.app.pop_screen()
            return

        def decided(choice: str | None) -> None:
            if choice == "discard":
                self.app.pop_screen()
            elif choice == "save":
                self.action_save()

        self.app.push_screen(DiscardChangesScreen(), decided)


class DiscardChangesScreen(ModalScreen[str]):
    """Leaving the editor with changed text: save, discard, or go back to editing."""

    BINDINGS = [
        Binding("s", "dismiss('save')", "Save", id="discard-save"),
        Binding("d", "dismiss('discard')", "Discard", id="discard-discard"),
        Binding("escape", "dismiss('edit')", "Keep editing", id="discard-back"),
    ]
    DEFAULT_CSS = """
    DiscardChangesScreen { align: center middle; }
    DiscardChangesScreen > Static { width: auto; max-width: 80; border: thick $warning; padding: 1 2; background: $surface; }
    """

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)

    def compose(self) -> ComposeResult:
        yield Static(
            plain(
                _("The note has changes that are not saved.")
                + "\n\n"
                + _("s: save them   d: discard them   esc: keep editing")
            )
        )
