"""Concept: titles, summary, definition with math as text, formulas, pitfalls, links, the snippet.

`r` runs the snippet on a warm worker (in another process) and streams its output here.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from app.i18n import _
from app.messages import ConceptLoaded, SnippetFinished, SnippetOutput
from app.screens.base import KBScreen
from app.text import plain, safe
from app.work import reports_failure
from kb.bilingual import localized
from kb.errors import KbError


class ConceptScreen(KBScreen):
    """One concept. The app keeps a single instance installed and shows each concept in it (a new
    screen costs Textual 0.2-0.3 s to compose and style); links keep a back/forward history."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="back", tooltip="The previous concept, or the list"),
        Binding(
            "left_square_bracket,alt+left",
            "history(-1)",
            "Back",
            id="history-back",
            show=False,
            tooltip="The previous concept of this history",
        ),
        Binding(
            "right_square_bracket,alt+right",
            "history(1)",
            "Forward",
            id="history-forward",
            show=False,
            tooltip="The next concept of this history",
        ),
        Binding("r", "run", "Run snippet", id="run", tooltip="Run the snippet in an isolated worker"),
        Binding(
            "R",
            "run_confined",
            "Run confined",
            id="run-confined",
            show=False,
            tooltip="Run an untrusted deck's snippet confined (kb verify --sandbox)",
        ),
        Binding("l", "toggle_latex", "LaTeX", id="latex", tooltip="Formulas as raw LaTeX or as text"),
        Binding("e", "edit", "Edit", id="edit", tooltip="Edit this note (notes deck only)"),
        Binding("q", "quiz", "Quiz", id="quiz", show=False),
        Binding("z", "study_this", "Quiz me on this", id="study-this", tooltip="A quiz on this concept's cards only"),
        Binding("y", "copy_snippet", "Copy code", id="copy-snippet", show=False, tooltip="Copy the snippet's code"),
        Binding(
            "Y", "copy_latex", "Copy LaTeX", id="copy-latex", show=False, tooltip="Copy every formula's LaTeX source"
        ),
    ]

    def __init__(self, concept_id: str | None = None) -> None:
        super().__init__()
        self.concept_id = concept_id
        self.concept: dict | None = None
        self.raw_latex = False
        self.running = False
        self.back_stack: list[str] = []  # concepts visited before this one, through links
        self.forward_stack: list[str] = []

    def _shown(self) -> str:
        """The id of the concept on show (the screen is opened for one, so there always is one)."""
        if self.concept_id is None:
            raise KbError("no concept is shown")
        return self.concept_id

    def action_copy_snippet(self) -> None:
        snippet = (self.concept or {}).get("snippet") or {}
        if not snippet.get("code"):
            self.notify("This concept has no snippet to copy", markup=False)
            return
        self.app.copy_to_clipboard(snippet["code"])
        self.notify(f"Copied the snippet ({len(snippet['code'].splitlines())} lines)", markup=False)

    def action_copy_latex(self) -> None:
        """Every formula's LaTeX, each after a `%` comment with its name: pastes into a paper as is."""
        formulas = (self.concept or {}).get("formulas") or []
        if not formulas:
            self.notify("This concept has no formula to copy", markup=False)
            return
        text = "\n".join(f"% {f.get('name') or 'formula'}\n{f['latex']}" for f in formulas)
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied the LaTeX of {len(formulas)} formula(s)", markup=False)

    def show_concept(self, concept_id: str, *, history: bool = False) -> None:
        """Show another concept here; with `history`, the current one can be gone back to."""
        if history and self.concept_id and concept_id != self.concept_id:
            self.back_stack.append(self.concept_id)
            self.forward_stack.clear()
        elif not history:
            self.back_stack.clear()
            self.forward_stack.clear()
        self.concept_id = concept_id
        self.concept = None
        self.query_one("#output", RichLog).display = False
        self.query_one("#run-status", Static).update("")
        self.query_one("#concept", VerticalScroll).scroll_home(animate=False)
        self.load()

    def action_history(self, step: int) -> None:
        source, target = (self.back_stack, self.forward_stack) if step < 0 else (self.forward_stack, self.back_stack)
        if not source:
            return
        target.append(self._shown())
        concept_id = source.pop()
        self.concept_id = concept_id
        self.concept = None
        self.query_one("#concept", VerticalScroll).scroll_home(animate=False)
        self.load()

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="concept"):
            yield Static("", id="titles")
            yield Static("", id="summary")
            # A Static holding rich's Markdown: one widget per definition. Textual's Markdown widget
            # mounts one per block (and parses their CSS on first use): 0.3-0.9 s for an entry.
            yield Static("", id="definition")
            yield Static("", id="definition-zh")
            yield Static("", id="formulas")
            yield Static("", id="pitfalls")
            yield Static(_("Related and prerequisite concepts (enter opens):"), id="links-label", classes="label")
            yield OptionList(id="links")
            yield Static("", id="sources")
            yield Static("", id="snippet")
            yield Static("", id="verdict")
            yield Static("", id="run-status")
            yield RichLog(id="output", markup=False, highlight=False, wrap=True, max_lines=2000)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#output", RichLog).display = False
        if self.concept_id:
            self.load()

    def decks_changed(self, report) -> None:
        if self.concept_id in report.updated or self.concept_id in report.retired:
            self.load()

    @work(thread=True, exclusive=True, group="concept-load", exit_on_error=False)
    @reports_failure()
    def load(self) -> None:
        concept = self.app.service.show(self._shown())
        self.post_message(ConceptLoaded(concept, self._shown()))

    @on(ConceptLoaded)
    def _loaded(self, message: ConceptLoaded) -> None:
        if message.concept_id != self.concept_id:
            return
        if message.concept is None:
            self.notify(f"No concept {self.concept_id!r}", severity="error", markup=False)
            self.app.pop_screen()
            return
        self.concept = concept = message.concept

        deck = concept.get("deck")
        self.sub_title = concept["id"] if deck in (None, "bundled") else f"{concept['id']}  ·  deck {deck}"
        retired = "   (retired: its file is gone; its cards and reviews are kept)" if concept.get("retired") else ""
        unverified = "   [unverified]" if concept.get("status") == "unverified" else ""
        # The language setting: en, zh (the English definition stays where the entry has no
        # Chinese one), or both.
        language = self.app.service.settings.content_language
        title, summary_text = concept["title"], concept["summary"]
        zh = concept.get("definition_zh")
        if language == "en":
            titles, summary, zh = title["en"], summary_text["en"], None
        elif language == "zh":
            titles, summary = f"{title['zh']}  ·  {title['en']}", summary_text["zh"]
        else:
            titles, summary = f"{title['en']}  ·  {title['zh']}", f"{summary_text['en']}\n{summary_text['zh']}"
        self.query_one("#titles", Static).update(plain(f"{titles}{unverified}{retired}", "bold"))
        self.query_one("#summary", Static).update(plain(summary, "italic"))
        english = self.query_one("#definition", Static)
        english.update(self._markdown(concept["definition"]))
        english.display = not (language == "zh" and zh)
        self.query_one("#definition-zh", Static).update(self._markdown(zh) if zh else "")
        self.query_one("#definition-zh", Static).display = bool(zh)
        # The first screenful (titles, summary, definitions) paints now; what lies below the fold
        # (formulas, pitfalls, links, sources, the snippet) right after, so the key feels instant.
        for section in ("#formulas", "#pitfalls", "#links-label", "#links", "#sources", "#snippet", "#verdict"):
            self.query_one(section).display = False
        self.call_after_refresh(self._fill_the_rest, concept["id"])

    def _fill_the_rest(self, concept_id: str) -> None:
        concept = self.concept
        if concept is None or concept["id"] != concept_id:
            return  # another concept was opened meanwhile
        for section in ("#formulas", "#pitfalls", "#snippet", "#verdict"):
            self.query_one(section).display = True
        self._show_formulas()
        pitfalls = concept.get("pitfalls") or []
        language = self.app.service.settings.content_language
        self.query_one("#pitfalls", Static).update(
            plain(_("Pitfalls") + "\n" + "\n".join(f"  • {localized(p, language, chr(10) + '    ')}" for p in pitfalls))
            if pitfalls
            else ""
        )
        links = self.query_one("#links", OptionList)
        links.clear_options()
        shown: set[str] = set()
        titles = concept.get("link_titles") or {}
        for kind, label in (("prerequisites", "prerequisite"), ("related", "related")):
            for target in concept.get(kind) or []:
                if target not in shown:  # a concept may be listed as both (or twice)
                    shown.add(target)
                    title = titles.get(target)
                    name = f"{title['en']} · {title['zh']}" if title else f"{target} (not loaded)"
                    links.add_option(Option(plain(f"{label}: {name}"), id=target))
        sources = concept.get("sources") or []
        box = self.query_one("#sources", Static)
        box.update(
            plain(_("Sources") + "\n" + "\n".join(f"  • {s['title']}\n    {s['url']}" for s in sources))
            if sources
            else ""
        )
        box.display = bool(sources)
        has_links = links.option_count > 0
        links.display = has_links
        self.query_one("#links-label").display = has_links
        self._show_snippet()

    def _markdown(self, text: str):
        """Deck Markdown with math as text, rendered by rich (control characters escaped first)."""
        from rich.markdown import Markdown as RichMarkdown

        from kb.render.markdown import markdown_with_math

        theme = "ansi_dark" if self.app.current_theme.dark else "ansi_light"
        return RichMarkdown(markdown_with_math(safe(text)), code_theme=theme, hyperlinks=False)

    def _show_formulas(self) -> None:
        from rich.console import Group

        from kb.render.latex import tex_to_text

        formulas = (self.concept or {}).get("formulas") or []
        if not formulas:
            self.query_one("#formulas", Static).update("")
            return
        parts = [
            plain(
                _("Formulas") + "  " + (_("(raw LaTeX; l: as text)") if self.raw_latex else _("(l: raw LaTeX)")), "bold"
            )
        ]
        language = self.app.service.settings.content_language
        for formula in formulas:
            shown = formula["latex"] if self.raw_latex else tex_to_text(formula["latex"])
            parts.append(plain(f"  {localized(formula['name'], language)}:", "underline"))
            parts.append(plain(f"    {shown}"))
            for symbol, meaning in (formula.get("where") or {}).items():
                sym = symbol if self.raw_latex else tex_to_text(symbol)
                parts.append(plain(f"      {sym}: {localized(meaning, language)}", "dim"))
        self.query_one("#formulas", Static).update(Group(*parts))

    def _show_snippet(self) -> None:
        concept = self.concept or {}
        snippet = concept.get("snippet")
        if not snippet:
            self.query_one("#snippet", Static).update(plain(_("No snippet."), "dim"))
            self.query_one("#verdict", Static).update("")
            return
        # Line numbers are the YAML file's, so a failure's line can be found in the editor.
        start = concept.get("snippet_line_offset", 0) + 1
        self.query_one("#snippet", Static).update(
            _numbered_python(snippet["code"].rstrip(), start, dark=self.app.current_theme.dark)
        )
        run = concept.get("last_run")
        if run and not run.get("current", True):
            text = (
                f"Last run: {run['status']} on {run['device']}, {run['created_at'][:19]}, of an earlier version "
                "of this snippet; press r to run this one."
            )
            style = "dim"
        elif run:
            versions = f"torch {run.get('torch_version')}, numpy {run.get('numpy_version')}, Python {run.get('python_version')}"
            text = f"Last run: {run['status']} on {run['device']} in {run['duration_s']:.2f} s, {versions}, {run['created_at'][:19]}"
            if run["status"] != "passed":
                text += f"\n  {run.get('message') or ''}" + (f" (line {run['line']})" if run.get("line") else "")
            style = "green" if run["status"] == "passed" else "bold red"
        else:
            text, style = "Not run yet: press r.", "dim"
        self.query_one("#verdict", Static).update(plain(text, style))

    # --- actions ------------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.back_stack:
            self.action_history(-1)
            return
        self.app.pop_screen()

    def action_toggle_latex(self) -> None:
        self.raw_latex = not self.raw_latex
        self._show_formulas()

    def action_run_confined(self) -> None:
        self.action_run(sandbox=True)

    def action_run(self, sandbox: bool = False) -> None:
        if not self.concept or not self.concept.get("snippet"):
            self.notify("This concept has no snippet.")
            return
        if self.running:
            return
        self.running = True
        log = self.query_one("#output", RichLog)
        log.clear()
        log.display = True
        status = self.query_one("#run-status", Static)
        status.update(plain("running confined…" if sandbox else "running…", "dim"))  # replaced when it ends
        status.scroll_visible()
        self.run_snippet(sandbox)

    @work(thread=True, exclusive=True, group="concept-run", exit_on_error=False)
    @reports_failure()
    def run_snippet(self, sandbox: bool = False) -> None:
        outcome = None
        try:
            outcome = self.app.service.run_snippet(self._shown(), sandbox=sandbox, on_output=self._stream_output)
        finally:
            self.post_message(SnippetFinished(outcome))  # None when it failed: the error follows

    def _stream_output(self, text: str) -> None:
        self.post_message(SnippetOutput(text))

    @on(SnippetOutput)
    def _output(self, message: SnippetOutput) -> None:
        log = self.query_one("#output", RichLog)
        for line in message.text.splitlines():
            log.write(plain(line))
        log.scroll_visible()  # the output as it comes, not below the fold

    @on(SnippetFinished)
    def _finished(self, message: SnippetFinished) -> None:
        self.running = False
        outcome = message.outcome
        status = self.query_one("#run-status", Static)
        if outcome is None:
            status.update(plain("the run could not be started (see the message)", "bold red"))
            return
        level = self.app.service.isolation_level()  # shown with every run: how it was confined
        if outcome.passed:
            status.update(
                plain(f"passed on {outcome.device} in {outcome.duration_s:.2f} s (isolation: {level})", "bold green")
            )
        elif outcome.status == "untrusted":
            hint = (
                "\npress R (shift+r) to run it confined: no writes outside its temporary folder, no network"
                if "no sandbox" not in (outcome.message or "")
                else ""
            )
            status.update(plain(f"not run: {outcome.message or ''}{hint}", "bold yellow"))
        else:
            where = f"{outcome.source_path}:{outcome.line}: " if outcome.line else ""
            status.update(plain(f"{outcome.status}: {where}{outcome.message or ''}", "bold red"))
        self.query_one("#output", RichLog).scroll_visible()
        self.load()  # the new run record

    @on(OptionList.OptionSelected, "#links")
    def _link(self, event: OptionList.OptionSelected) -> None:
        if event.option_id:
            self.show_concept(event.option_id, history=True)

    def action_edit(self) -> None:
        if not self.concept:
            return
        from app.screens.note import edit_note
        from kb.service import NoteError

        try:
            path = self.app.service.note_source(self._shown())
        except NoteError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        edit_note(self.app, str(path))

    def action_quiz(self) -> None:
        from app.screens.quiz import QuizScreen

        self.app.push_screen(QuizScreen(self.app.service))

    def action_study_this(self) -> None:
        """Custom study of the concept on show: its cards, new ones included, no daily limits."""
        from app.screens.quiz import QuizScreen

        self.app.push_screen(QuizScreen(self.app.service, search=f'concept:"{self._shown()}"'))


def _numbered_python(code: str, start: int, *, dark: bool):
    """The snippet highlighted once, as Text with the YAML file's line numbers.

    rich's Syntax renderable would run Pygments again on every layout pass of the screen (18 times
    on opening one concept); a Text is only wrapped.
    """
    from rich.syntax import Syntax
    from rich.text import Text

    highlighted = Syntax(code, "python", theme="ansi_dark" if dark else "ansi_light").highlight(code)
    highlighted.rstrip()  # Pygments ends the text with a newline: no empty numbered line after the code
    lines = highlighted.split("\n", allow_blank=True)
    width = len(str(start + len(lines) - 1))
    out = Text(no_wrap=False)
    for number, line in enumerate(lines, start):
        out.append(f"{number:>{width}} ", style="dim")
        out.append_text(line)
        out.append("\n")
    out.rstrip()
    return out
