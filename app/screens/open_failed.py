"""The screen shown when the knowledge base could not be opened: the reason, and what to do."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from app.i18n import _, translate_bindings
from app.text import plain


class OpenFailedScreen(ModalScreen[str]):
    """The reason in full; `r` tries again, `esc` browses what is cached, `ctrl+q` quits."""

    BINDINGS = [
        Binding("r", "retry", "Try again", id="open-retry", tooltip="Open the knowledge base again"),
        Binding(
            "escape",
            "dismiss('browse')",
            "Browse anyway",
            id="open-dismiss",
            tooltip="Browse the cached concept list; nothing that needs the database works",
        ),
    ]
    DEFAULT_CSS = """
    OpenFailedScreen { align: center middle; }
    OpenFailedScreen > Vertical { width: 90%; max-width: 110; height: auto; border: thick $error; padding: 1 2;
                                  background: $surface; }
    OpenFailedScreen #open-error { margin: 1 0; }
    """

    def __init__(self, error: str) -> None:
        super().__init__()
        translate_bindings(self)
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(plain(_("The knowledge base could not be opened"), "bold"))
            yield Static(plain(self.error), id="open-error")
            yield Static(
                plain(_("r: try again   esc: browse anyway   ctrl+q: quit   (`kb doctor` in a shell says more)"), "dim")
            )
        yield Footer()

    def action_retry(self) -> None:
        self.dismiss("retry")
