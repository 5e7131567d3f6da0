"""Settings: every setting with its value and where it comes from; enter changes one.

A value is checked before it is stored in $KB_HOME/settings.toml (the same checks as `kb config
set`), used from then on, and an empty value puts the default back. A setting that an environment
variable overrides says so.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from app.i18n import _
from app.messages import SettingsListed, WorkFailed
from app.screens.base import KBScreen
from app.text import pad, plain
from app.work import reports_failure
from kb.errors import KbError


class SettingsScreen(KBScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="back", tooltip="Back (or cancel the change being typed)"),
        Binding("enter", "edit", "Change", id="edit", tooltip="Type a new value; empty puts the default back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, object]] = []
        self.editing: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="settings"):
            yield OptionList(id="setting-list")
            yield Static("", id="setting-help")
            yield Input(id="setting-value")
            yield Static("", id="setting-message")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#setting-value", Input).display = False
        self.load()

    @work(thread=True, exclusive=True, group="settings", exit_on_error=False)
    @reports_failure()
    def load(self) -> None:
        self.post_message(SettingsListed(self.app.service.setting_rows()))

    @on(SettingsListed)
    def _listed(self, message: SettingsListed) -> None:
        self.rows = message.rows
        options = self.query_one("#setting-list", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        width = max(len(str(r["key"])) for r in self.rows)
        for row in self.rows:
            value = _("(system)") if row["value"] is None else row["value"]
            # The key and an environment variable's name stay as they are typed; "default" is translated.
            source = _(str(row["source"])) if row["source"] == "default" else row["source"]
            line = f"{row['key']!s:<{width}}  {pad(str(value), 20)} {source}"
            options.add_option(Option(plain(line), id=str(row["key"])))
        options.highlighted = highlighted if highlighted is not None else 0
        options.focus()

    @on(OptionList.OptionHighlighted, "#setting-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        row = next((r for r in self.rows if r["key"] == event.option.id), None)
        if row is not None:
            # A setting's help is kb.config's (`kb config list` shows it too), translated where the catalogue has it.
            self.query_one("#setting-help", Static).update(plain(_(str(row["help"])), "dim"))

    @on(OptionList.OptionSelected, "#setting-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_edit()

    def action_edit(self) -> None:
        options = self.query_one("#setting-list", OptionList)
        if self.editing is not None or options.highlighted is None:
            return
        row = self.rows[options.highlighted]
        self.editing = str(row["key"])
        box = self.query_one("#setting-value", Input)
        box.value = "" if row["value"] is None else str(row["value"])
        box.placeholder = _("{key} (empty: the default)").format(key=self.editing)
        box.display = True
        box.focus()
        message = (
            _("{variable} overrides settings.toml for this one").format(variable=row["source"])
            if str(row["source"]).startswith("KB_")
            else ""
        )
        self.query_one("#setting-message", Static).update(plain(message, "yellow"))

    @on(Input.Submitted, "#setting-value")
    def _submitted(self, event: Input.Submitted) -> None:
        if self.editing is not None:
            self.save(self.editing, event.value.strip() or None)

    @work(thread=True, exclusive=True, group="settings", exit_on_error=False)
    def save(self, key: str, value: str | None) -> None:
        try:
            path = self.app.service.change_setting(key, value)
        except KbError as exc:  # a refused value: say why beside the box, keep what was typed
            self.app.call_from_thread(self._refused, exc.user_message())
            return
        except Exception as exc:
            self.post_message(WorkFailed.of(exc))
            return
        self.app.call_from_thread(self._saved, key, str(path))

    def _refused(self, reason: str) -> None:
        self.query_one("#setting-message", Static).update(plain(reason, "bold red"))

    def _saved(self, key: str, path: str) -> None:
        self.editing = None
        self.query_one("#setting-value", Input).display = False
        self.query_one("#setting-message", Static).update(
            plain(_("{key} saved in {path}").format(key=key, path=path), "green")
        )
        self.load()

    def action_back(self) -> None:
        if self.editing is not None:  # cancel the change being typed
            self.editing = None
            self.query_one("#setting-value", Input).display = False
            self.query_one("#setting-message", Static).update("")
            self.query_one("#setting-list", OptionList).focus()
            return
        self.app.pop_screen()
