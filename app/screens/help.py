"""Help: every key of the screen underneath, and the app's own."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from app.i18n import _
from app.text import plain

KEY_NAMES = {"slash": "/", "escape": "esc", "space": "space", "enter": "enter", "question_mark": "?"}


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
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
                rows.append(f"  {keys:<12} {binding.description or binding.action:<16} {text}")
        title = type(self.under).__name__.replace("Screen", "")
        with VerticalScroll(id="help"):
            yield Static(plain(f"{_('Keys')}: {title}", "bold"))
            yield Static(plain("\n".join(rows)))
            yield Static(plain(_("ctrl+p finds any concept by title, alias or tag.  esc closes this."), "dim"))
