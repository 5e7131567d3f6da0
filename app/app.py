"""KBApp: the main window. Opens the knowledge base in a worker after the first frame."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from app import textual_fixes
from app.i18n import _
from app.messages import (
    DecksChanged,
    KnowledgeBaseFailed,
    KnowledgeBaseOpened,
    WorkFailed,
)
from app.screens.browse import BrowseScreen
from app.work import reports_failure
from kb.errors import KbError

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

textual_fixes.apply()


def _concept_provider():
    from app.commands import ConceptProvider

    return ConceptProvider


# After ctrl+q, how long the process may take to end. A worker thread stuck in a system call (a
# deck on a hung network mount) would otherwise keep asyncio's executor, and so the process, alive.
EXIT_GRACE_S = 3.0
# More unexpected errors than this within ERROR_STORM_S: something is broken in a loop (a render
# that fails on every frame); then Textual's own handling (show the traceback and exit) takes over.
ERROR_STORM_COUNT, ERROR_STORM_S = 10, 10.0


class KBApp(App):
    """Browse concepts, read and run them, take the daily quiz, see stats, add notes."""

    CSS_PATH = "app.tcss"
    TITLE = "kb"
    SUB_TITLE = "opening…"  # translated in __init__, once the language is known
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help", tooltip="Every key of this screen"),
        Binding("f2", "toggle_dark", "Theme", id="theme", show=False, tooltip="Dark or light theme"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
    ]

    def __init__(
        self, settings: Any = None, *, clock: Any = None, watch: bool = True, keep_running_on_error: bool = True
    ) -> None:
        super().__init__()
        self.settings = settings
        from app.i18n import language_of, set_language, translate_bindings

        set_language(language_of(settings))
        translate_bindings(self)
        self.sub_title = _("opening…")
        # An unexpected exception is logged and shown, and the app goes on (tests of other things
        # turn this off, so that a bug fails them loudly).
        self.keep_running_on_error = keep_running_on_error
        self._error_times: list[float] = []
        self.clock = clock
        self.watch_decks = watch
        self.kb: KnowledgeBase | None = None  # set once the worker opened it
        self.open_error: str | None = None  # why it could not be opened, while that is so
        self.warmed_up = threading.Event()  # set once the first-use imports are done (bench/startup.py)
        self._known_errors: set[str] = set()

    @property
    def service(self) -> KnowledgeBase:
        """The open knowledge base; a KbError (shown like any other) while it is not open yet."""
        if self.kb is None:
            raise KbError(self.open_error or _("the knowledge base is still opening"))
        return self.kb

    # The palette (ctrl+p) finds concepts by title, alias or tag; imported when first opened.
    COMMANDS = App.COMMANDS | {lambda: _concept_provider()}

    def on_mount(self) -> None:
        saved = getattr(self.settings, "theme", None)
        if saved:
            if saved in self.available_themes:
                self.theme = saved
            else:
                self.notify(
                    _("The saved theme {saved!r} is not available; using {theme}.").format(
                        saved=saved, theme=self.theme
                    ),
                    severity="warning",
                    markup=False,
                )
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.push_screen(BrowseScreen())
        # Paint the first frame before the heavy imports (sqlmodel ~0.4 s) start in the worker.
        self.call_after_refresh(self.open_knowledge_base)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def open_knowledge_base(self) -> None:
        # Imported here, off the first frame: sqlmodel alone costs about 0.4 s.
        from kb.service import KnowledgeBase

        kb = None
        try:
            kb = KnowledgeBase(self.settings, **({"clock": self.clock} if self.clock else {}))
            report = kb.sync()
            notices = list(kb.notices)
            moved = kb.moved_aside_notice()
        except Exception as exc:  # anything at all: a damaged or newer database, a broken deck, a bug
            if kb is not None:
                kb.close()
            self.post_message(KnowledgeBaseFailed(str(exc) or type(exc).__name__))
            return
        self.post_message(KnowledgeBaseOpened(kb, report, notices + ([moved] if moved else [])))
        _warm_up()
        self.warmed_up.set()

    @on(KnowledgeBaseFailed)
    def _open_failed(self, message: KnowledgeBaseFailed) -> None:
        from app.screens.open_failed import OpenFailedScreen

        self.open_error = message.error
        self.sub_title = _("could not open the knowledge base")

        def chosen(choice: str | None) -> None:
            if choice == "retry":
                self.sub_title = _("opening…")
                self.open_knowledge_base()

        self.push_screen(OpenFailedScreen(message.error), chosen)

    def open_concept(self, concept_id: str) -> None:
        """Show a concept on the one concept screen, installed on first use and reused after."""
        from app.screens.concept import ConceptScreen

        if not self.is_screen_installed("concept"):
            self.install_screen(ConceptScreen(), name="concept")
        screen = cast(ConceptScreen, self.get_screen("concept"))
        if self.screen is screen:
            screen.show_concept(concept_id, history=True)
            return
        if screen in self.screen_stack:  # under another screen (a note opened from it): start afresh
            while self.screen is not screen:
                self.pop_screen()
            screen.show_concept(concept_id)
            return
        self.push_screen(screen)
        if screen.is_mounted:
            screen.show_concept(concept_id)
        else:
            screen.concept_id = concept_id  # loaded on mount

    def not_ready_message(self) -> str:
        """What a key that needs the knowledge base says before it is open."""
        if self.open_error is not None:
            return _("The knowledge base could not be opened: {error}").format(error=self.open_error)
        return _("Still opening the knowledge base…")

    @on(KnowledgeBaseOpened)
    def _opened(self, message: KnowledgeBaseOpened) -> None:
        self.kb = message.kb
        self.open_error = None
        for notice in message.notices or ():
            self.notify(notice, title=_("The database"), severity="warning", timeout=30, markup=False)
        self.report_sync(message.report)
        self.refresh_due()
        for screen in self.screen_stack:
            if hasattr(screen, "knowledge_base_ready"):
                screen.knowledge_base_ready()
        if self.watch_decks:
            self.watch_for_changes()

    def report_sync(self, report: Any) -> None:
        # Say it once: a broken file is reported again by every sync until it is fixed.
        errors = {str(e) for e in report.errors} if report is not None else set()
        new, self._known_errors = errors - self._known_errors, errors
        if new:
            first = sorted(new)[0]
            more = _(" (and {n} more; run `kb check`)").format(n=len(new) - 1) if len(new) > 1 else ""
            self.notify(
                f"{first}{more}",
                title=_("A deck file has errors; its last good version is used"),
                severity="warning",
                timeout=10,
                markup=False,
            )

    @work(thread=True, exclusive=True, group="due", exit_on_error=False)
    @reports_failure()
    def refresh_due(self) -> None:
        if self.kb is None:
            return
        due = self.kb.due_overview().showable  # what the quiz can show, never more
        line = _("{n} card due today") if due == 1 else _("{n} cards due today")
        self.call_from_thread(setattr, self, "sub_title", line.format(n=due))

    @work(exclusive=True, group="watch", exit_on_error=False)
    async def watch_for_changes(self) -> None:
        """Re-sync when a YAML file of a deck changes (a note saved in another editor)."""
        try:
            from watchfiles import awatch
        except ImportError:
            return
        settings = self.service.settings
        # $KB_HOME/decks/ is watched as a whole, so a deck that `kb import` adds in another terminal
        # (it appears in one rename: no .yaml event of its own) shows up too.
        imported = settings.imported_decks_dir
        try:
            imported.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        paths = {str(d.path) for d in settings.decks() if d.path.is_dir() and d.path.parent != imported}
        if imported.is_dir():
            paths.add(str(imported))
        if not paths:
            return
        async for changes in awatch(*paths, debounce=300, step=100):
            if any(path.endswith((".yaml", ".yml")) or Path(path).parent == imported for _change, path in changes):
                self.resync()

    @work(thread=True, exclusive=True, group="sync", exit_on_error=False)
    @reports_failure()
    def resync(self) -> None:
        report = self.service.sync()
        self.post_message(DecksChanged(report))

    @on(DecksChanged)
    def _decks_changed(self, message: DecksChanged) -> None:
        self.report_sync(message.report)
        if message.report.changed:
            self.notify(
                _("decks reloaded: {added} added, {updated} updated, {retired} retired").format(
                    added=len(message.report.added),
                    updated=len(message.report.updated),
                    retired=len(message.report.retired),
                ),
                timeout=4,
            )
        for screen in self.screen_stack:
            if hasattr(screen, "decks_changed"):
                screen.decks_changed(message.report)
        self.refresh_due()

    @on(WorkFailed)
    def _failed(self, message: WorkFailed) -> None:
        from kb.service import is_damaged_database

        if self.kb is not None and is_damaged_database(message.exception):
            self.recover_database()
            return
        error = message.error
        if message.exception is not None and not isinstance(message.exception, KbError):
            where = self._log_exception(message.exception)  # not an error kb expects: a bug to report
            error += _(" (the details are in {where})").format(where=where) if where else ""
        self.notify(error, title=_("Error"), severity="error", timeout=10, markup=False)

    @work(thread=True, exclusive=True, group="recover", exit_on_error=False)
    @reports_failure()
    def recover_database(self) -> None:
        """The database was found damaged in use: rebuilt if only the search index is hurt, else moved
        aside (the next use opens a new one, and says so)."""
        line = self.service.recover_damaged()
        self.call_from_thread(
            self.notify, line, title=_("The database was damaged"), severity="error", timeout=30, markup=False
        )
        self.call_from_thread(self.refresh_due)

    def recover_from(self, error: Exception) -> bool:
        """An exception escaped a handler: log it, show it, and go on (True), unless errors come in a
        storm or the app was made to fail loudly (False: Textual shows the traceback and exits)."""
        import time

        now = time.monotonic()
        self._error_times = [t for t in self._error_times if now - t < ERROR_STORM_S] + [now]
        if not self.keep_running_on_error or len(self._error_times) > ERROR_STORM_COUNT or not self.is_running:
            return False
        where = self._log_exception(error)
        self.notify(
            f"{type(error).__name__}: {error}"
            + (_(" (the details are in {where})").format(where=where) if where else "")
            + _("; kb goes on"),
            title=_("Unexpected error"),
            severity="error",
            timeout=20,
            markup=False,
        )
        return True

    def _handle_exception(self, error: Exception) -> None:
        # Errors outside a message handler (while rendering, in a callback of Textual's own) come here.
        if not self.recover_from(error):
            super()._handle_exception(error)

    def _log_exception(self, error: BaseException) -> Path | None:
        """Append the traceback to $KB_HOME/logs/kb-YYYY-MM-DD.log; returns the file (None if unwritable)."""
        import traceback
        from datetime import datetime

        try:
            from kb.config import load_settings

            home = self.settings.home if self.settings is not None else load_settings().home
            logs = Path(home) / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            path = logs / f"kb-{datetime.now():%Y-%m-%d}.log"
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"--- {datetime.now().isoformat(timespec='seconds')} unexpected error in the TUI\n")
                f.write("".join(traceback.format_exception(error)))
            return path
        except Exception:  # a full disk must not turn one error into two
            return None

    def _theme_changed(self, theme) -> None:
        """Remember the theme (f2, or the palette's theme picker) in $KB_HOME/settings.toml."""
        if self.settings is None or getattr(self.settings, "theme", None) == theme.name:
            return
        from dataclasses import replace

        from kb.service import save_user_setting

        try:
            save_user_setting(self.settings, "theme", theme.name)
            self.settings = replace(self.settings, theme=theme.name)
        except (OSError, ValueError) as exc:
            self.notify(_("The theme could not be saved: {error}").format(error=exc), severity="warning", markup=False)

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    def action_help(self) -> None:
        from app.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette's actions (ctrl+p): kb's own first, then Textual's (themes, keys, quit)."""
        from app.screens.concept import ConceptScreen

        yield SystemCommand(_("Quiz"), _("Today's cards"), partial(self.open_screen, "quiz"))
        if isinstance(screen, ConceptScreen) and screen.concept_id:
            concept_id = screen.concept_id
            yield SystemCommand(
                _("Quiz me on this concept"),
                _("Custom study of {concept}: its cards only, new ones too").format(concept=concept_id),
                partial(self.open_screen, "quiz", f'concept:"{concept_id}"'),
            )
        yield SystemCommand(
            _("Cards"),
            _("Browse and search every card; suspend, bury, flag, reset"),
            partial(self.open_screen, "cards"),
        )
        if isinstance(screen, ConceptScreen) and screen.concept_id:
            yield SystemCommand(
                _("Cards of this concept"),
                _("The card browser on {concept}'s cards").format(concept=screen.concept_id),
                partial(self.open_screen, "cards", f'concept:"{screen.concept_id}"'),
            )
        if isinstance(screen, ConceptScreen) and (screen.concept or {}).get("snippet"):
            yield SystemCommand(_("Run this snippet"), _("Verify it in an isolated worker (r)"), screen.action_run)
        yield SystemCommand(_("Stats"), _("Reviews, retention, the forecast"), partial(self.open_screen, "stats"))
        yield SystemCommand(
            _("Settings"), _("Daily limits, retention, steps, time zone, ..."), partial(self.open_screen, "settings")
        )
        yield SystemCommand(
            _("Export to Anki"),
            _("Every card as an Anki package in $KB_HOME/exports (kb export anki does the same)"),
            self.export_to_anki,
        )
        yield SystemCommand(
            _("Toggle dark and light"), _("Switch between the dark and light themes"), self.action_toggle_dark
        )
        yield SystemCommand(_("Keys"), _("What each key does on this screen"), self.action_help)
        # Textual's own (themes, keys, quit), in the TUI's language too (their words: app.i18n.TEXTUAL_WORDS).
        for command in super().get_system_commands(screen):
            yield command._replace(title=_(command.title), help=_(command.help))

    def action_command_palette(self) -> None:
        """Textual's command palette, with its placeholder in the TUI's language."""
        from textual.command import CommandPalette

        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(CommandPalette(placeholder=_("Search for commands…"), id="--command-palette"))

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def export_to_anki(self) -> None:
        """An Anki package of every card, named by the time, in $KB_HOME/exports."""
        from datetime import datetime

        from kb.service import export_anki

        if self.kb is None:
            self.call_from_thread(self.notify, self.not_ready_message(), markup=False)
            return
        out = self.kb.settings.home / "exports" / f"kb-{datetime.now():%Y%m%d-%H%M%S}.apkg"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            result = export_anki(self.kb, out)
        except Exception as exc:
            self.post_message(WorkFailed.of(exc, _("the export was not written")))
            return
        skipped = (
            _("; {n} computed card(s) wait for a passing run").format(n=len(result.skipped)) if result.skipped else ""
        )
        done = _("Exported {notes} notes ({cards} Anki cards) to {path}").format(
            notes=result.notes, cards=result.cards, path=out
        )
        self.call_from_thread(self.notify, done + skipped, markup=False)

    def open_screen(self, name: str, search: str | None = None) -> None:
        if self.kb is None:
            self.notify(self.not_ready_message(), markup=False)
            return
        if name == "quiz":
            from app.screens.quiz import QuizScreen

            self.push_screen(QuizScreen(self.kb, search=search))
        elif name == "settings":
            from app.screens.settings import SettingsScreen

            self.push_screen(SettingsScreen())
        elif name == "cards":
            from app.screens.cards import CardBrowserScreen

            self.push_screen(CardBrowserScreen(search or ""))
        else:
            from app.screens.stats import StatsScreen

            self.push_screen(StatsScreen())

    def on_unmount(self) -> None:
        if self.kb is not None:
            self.kb.close()
        if not self.is_headless:
            # The terminal is restored by now; if a worker thread never returns, end anyway.
            watchdog = threading.Timer(EXIT_GRACE_S, os._exit, args=(0,))
            watchdog.daemon = True
            watchdog.start()


def _warm_up() -> None:
    """Import, off the UI thread and while the user reads the list, what opening a concept and the
    quiz need the first time (the concept screen, Pygments' Python lexer, flatlatex, the Markdown
    parser): the first concept then opens as fast as the tenth."""
    try:
        from rich.syntax import Syntax
        from textual.widgets import Markdown  # noqa: F401

        import app.screens.concept  # noqa: F401
        import app.screens.quiz  # noqa: F401
        from kb.render.markdown import markdown_with_math

        Syntax("import torch\nx = 1\n", "python").highlight("x = 1")
        markdown_with_math("$\\frac{a}{b} + \\sqrt{x_i}$")
    except Exception:  # a warm-up only saves time; it must never cost anything else
        pass
