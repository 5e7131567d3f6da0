"""Help: every key of the screen underneath, and the app's own."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from app.i18n import N_, _, translate_bindings
from app.text import pad, plain

KEY_NAMES = {
    "slash": "/",
    "escape": "esc",
    "space": "space",
    "enter": "enter",
    "question_mark": "?",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
}
# The screen's name in the help's title.
SCREEN_NAMES = {
    "Browse": N_("Browse"),
    "Concept": N_("Concept"),
    "Quiz": N_("Quiz"),
    "CardBrowser": N_("Card browser"),
    "Settings": N_("Settings"),
    "Stats": N_("Stats"),
    "NoteEditor": N_("Note editor"),
}


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        translate_bindings(self)
        self.under = under

    def compose(self) -> ComposeResult:
        rows = []
        seen = set()
        for owner in (self.under, self.app):
            # The owner's own (translated) bindings, in the order its class lists them.
            own = {b.key: b for items in owner._bindings.key_to_bindings.values() for b in items}
            for listed in getattr(owner, "BINDINGS", []):
                if not isinstance(listed, Binding) or listed.key in seen:
                    continue
                binding = own.get(listed.key.split(",")[0], listed)
                seen.add(listed.key)
                keys = ", ".join(KEY_NAMES.get(k, k) for k in listed.key.split(","))
                text = binding.tooltip or ""  # the description is already in its own column
                rows.append(f"  {pad(keys, 12)} {pad(binding.description or binding.action, 16)} {text}")
        name = type(self.under).__name__.replace("Screen", "")
        title = _(SCREEN_NAMES.get(name, name))
        with VerticalScroll(id="help"):
            yield Static(plain(_("Keys: {screen}").format(screen=title), "bold"))
            yield Static(plain("\n".join(rows)))
            yield Static(plain(_("ctrl+p finds any concept by title, alias or tag.  esc closes this."), "dim"))
