"""Concept: titles, summary, definition with math as text, formulas, pitfalls, links, the snippet.

`r` runs the snippet on a warm worker (in another process) and streams its output here.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Header, OptionList, RichLog, Static
from textual.widgets.option_list import Option

from app.i18n import _
from app.messages import ConceptLoaded, FormulasRendered, SnippetFinished, SnippetOutput
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
            raise KbError(_("no concept is shown"))
        return self.concept_id

    def action_copy_snippet(self) -> None:
        snippet = (self.concept or {}).get("snippet") or {}
        if not snippet.get("code"):
            self.notify(_("This concept has no snippet to copy"), markup=False)
            return
        self.app.copy_to_clipboard(snippet["code"])
        self.notify(_("Copied the snippet ({n} lines)").format(n=len(snippet["code"].splitlines())), markup=False)

    def action_copy_latex(self) -> None:
        """Every formula's LaTeX, each after a `%` comment with its name: pastes into a paper as is."""
        formulas = (self.concept or {}).get("formulas") or []
        if not formulas:
            self.notify(_("This concept has no formula to copy"), markup=False)
            return
        text = "\n".join(f"% {f.get('name') or 'formula'}\n{f['latex']}" for f in formulas)
        self.app.copy_to_clipboard(text)
        self.notify(_("Copied the LaTeX of {n} formula(s)").format(n=len(formulas)), markup=False)

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
            # Where the terminal shows graphics: the definitions again, cut at their $$ blocks,
            # with each block an image (mounted once the images are ready; the text shows till then).
            yield Vertical(id="definition-images")
            yield Static("", id="formulas")
            yield Vertical(id="formula-images")
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
        self.query_one("#definition-images").display = False
        self.query_one("#formula-images").display = False
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._show_formula_images())
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
            self.notify(_("No concept {concept!r}").format(concept=self.concept_id), severity="error", markup=False)
            self.app.pop_screen()
            return
        self.concept = concept = message.concept

        deck = concept.get("deck")
        self.sub_title = (
            concept["id"]
            if deck in (None, "bundled")
            else _("{concept}  ·  deck {deck}").format(concept=concept["id"], deck=deck)
        )
        retired = (
            "   " + _("(retired: its file is gone; its cards and reviews are kept)") if concept.get("retired") else ""
        )
        unverified = "   " + _("[unverified]") if concept.get("status") == "unverified" else ""
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
        # After the text has painted: rendering holds the GIL for a while on a cold cache.
        self.call_after_refresh(self._show_formula_images)
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
        for kind, label in (("prerequisites", _("prerequisite: {concept}")), ("related", _("related: {concept}"))):
            for target in concept.get(kind) or []:
                if target not in shown:  # a concept may be listed as both (or twice)
                    shown.add(target)
                    title = titles.get(target)
                    name = (
                        f"{title['en']} · {title['zh']}"
                        if title
                        else _("{concept} (not loaded)").format(concept=target)
                    )
                    links.add_option(Option(plain(label.format(concept=name)), id=target))
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

    def _show_formulas(self, *, heading_only: bool = False) -> None:
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
        if heading_only:  # the formulas themselves are images below
            self.query_one("#formulas", Static).update(Group(*parts))
            return
        language = self.app.service.settings.content_language
        for formula in formulas:
            shown = formula["latex"] if self.raw_latex else tex_to_text(formula["latex"])
            parts.append(plain("  " + _("{name}:").format(name=localized(formula["name"], language)), "underline"))
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
            text = _(
                "Last run: {status} on {device}, {when}, of an earlier version of this snippet; press r to run this one."
            ).format(status=_(run["status"]), device=run["device"], when=run["created_at"][:19])
            style = "dim"
        elif run:
            versions = f"torch {run.get('torch_version')}, numpy {run.get('numpy_version')}, Python {run.get('python_version')}"
            text = _("Last run: {status} on {device} in {seconds:.2f} s, {versions}, {when}").format(
                status=_(run["status"]),
                device=run["device"],
                seconds=run["duration_s"],
                versions=versions,
                when=run["created_at"][:19],
            )
            if run["status"] != "passed":
                text += f"\n  {run.get('message') or ''}" + (
                    _(" (line {line})").format(line=run["line"]) if run.get("line") else ""
                )
            style = "green" if run["status"] == "passed" else "bold red"
        else:
            text, style = _("Not run yet: press r."), "dim"
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
        self._show_images(self._images_ready)

    # --- formulas as images ---------------------------------------------------------------------

    _images_ready: bool = False

    def _formula_colours(self) -> tuple[str, str | None]:
        """The colours the images are drawn in: the formulas section's text on a transparent
        background (textual-image lays the image on the widget's own background)."""
        _base_background, _base_color, _background, color = self.query_one("#formulas", Static).colors
        return color.hex, None

    def _show_formula_images(self) -> None:
        """Render this concept's display formulas and $$ blocks as images (in a worker), where the
        terminal shows graphics; the text stays until they are mounted."""
        from app import formulas

        self._images_ready = False
        self._show_images(False)
        concept = self.concept
        if concept is None or formulas.protocol() is None:
            return
        language = self.app.service.settings.content_language
        texts = [f["latex"] for f in concept.get("formulas") or []]
        texts += [tex for _, markdown in self._definitions(concept, language) for *_, tex in _blocks(markdown)]
        if texts:
            color, background = self._formula_colours()
            self._render_images(concept["id"], texts, color, background)

    @work(thread=True, exclusive=True, group="formula-images", exit_on_error=False)
    def _render_images(self, concept_id: str, texts: list[str], color: str, background: str | None) -> None:
        from app import formulas

        cache = self.app.service.settings.home / "cache" / "formulas"
        rendered = {tex: formulas.render(tex, color=color, background=background, cache_dir=cache) for tex in texts}
        self.post_message(FormulasRendered(concept_id, rendered))

    @on(FormulasRendered)
    async def _images_rendered(self, message: FormulasRendered) -> None:
        concept = self.concept
        if concept is None or message.concept_id != concept["id"]:
            return  # another concept was opened meanwhile
        from app import formulas

        language = self.app.service.settings.content_language
        width = max(20, self.query_one("#concept", VerticalScroll).size.width - 6)
        images = message.rendered

        def picture(tex: str, classes: str):
            found = images.get(tex)
            if found is None or found.png is None:
                return None
            return formulas.image_widget(found, max_width=width, classes=classes)

        definition_parts = []
        for _language, markdown in self._definitions(concept, language):
            start = 0
            for begin, end, tex in _blocks(markdown):
                definition_parts.append(Static(self._markdown(markdown[start:begin]), classes="definition-part"))
                definition_parts.append(
                    picture(tex, "formula-image display")
                    or Static(plain(self._text_of_block(tex)), classes="definition-part")
                )
                start = end
            definition_parts.append(Static(self._markdown(markdown[start:]), classes="definition-part"))
        formula_parts = []
        for formula in concept.get("formulas") or []:
            formula_parts.append(
                Static(plain("  " + _("{name}:").format(name=localized(formula["name"], language)), "underline"))
            )
            image = picture(formula["latex"], "formula-image")
            if image is None:
                from kb.render.latex import tex_to_text

                problem = images[formula["latex"]].problem if formula["latex"] in images else None
                shown = Static(plain(f"    {tex_to_text(formula['latex'])}"))
                shown.tooltip = _("shown as text: {reason}").format(reason=problem) if problem else None
                formula_parts.append(shown)
            else:
                formula_parts.append(image)
            where = [
                plain(f"      {symbol_text(symbol)}: {localized(meaning, language)}", "dim")
                for symbol, meaning in (formula.get("where") or {}).items()
            ]
            if where:
                from rich.console import Group

                formula_parts.append(Static(Group(*where)))
        definition_box = self.query_one("#definition-images", Vertical)
        formula_box = self.query_one("#formula-images", Vertical)
        await definition_box.remove_children()
        await formula_box.remove_children()
        if any(images[tex].png for tex in images):
            await definition_box.mount_all(definition_parts)
            await formula_box.mount_all(formula_parts)
            self._images_ready = True
        self._show_images(self._images_ready)

    def _show_images(self, images: bool) -> None:
        """Images or text: images when they are ready and raw LaTeX is not asked for."""
        on = images and not self.raw_latex and self.concept is not None
        language = self.app.service.settings.content_language if self.concept else "both"
        definitions = self._definitions(self.concept or {}, language)
        has_blocks = any(_blocks(markdown) for _, markdown in definitions)
        self.query_one("#definition-images").display = on and has_blocks
        self.query_one("#definition", Static).display = not (on and has_blocks) and any(
            which == "en" for which, _ in definitions
        )
        self.query_one("#definition-zh", Static).display = not (on and has_blocks) and any(
            which == "zh" for which, _ in definitions
        )
        has_formulas = bool((self.concept or {}).get("formulas"))
        self.query_one("#formula-images").display = on and has_formulas
        if has_formulas:
            self._show_formulas(heading_only=on)

    @staticmethod
    def _definitions(concept: dict, language: str) -> list[tuple[str, str]]:
        """The definitions on show: (language, Markdown) for each, in order."""
        zh = concept.get("definition_zh")
        english = concept.get("definition") or ""
        if language == "en" or not zh:
            return [("en", english)] if english else []
        if language == "zh":
            return [("zh", zh)]
        return [("en", english), ("zh", zh)]

    @staticmethod
    def _text_of_block(tex: str) -> str:
        from kb.render.latex import tex_to_text

        return "    " + tex_to_text(tex).replace("\n", "\n    ")

    def action_run_confined(self) -> None:
        self.action_run(sandbox=True)

    def action_run(self, sandbox: bool = False) -> None:
        if not self.concept or not self.concept.get("snippet"):
            self.notify(_("This concept has no snippet."))
            return
        if self.running:
            return
        self.running = True
        log = self.query_one("#output", RichLog)
        log.clear()
        log.display = True
        status = self.query_one("#run-status", Static)
        status.update(plain(_("running confined…") if sandbox else _("running…"), "dim"))  # replaced when it ends
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
            status.update(plain(_("the run could not be started (see the message)"), "bold red"))
            return
        level = self.app.service.isolation_level()  # shown with every run: how it was confined
        if outcome.passed:
            status.update(
                plain(
                    _("passed on {device} in {seconds:.2f} s (isolation: {level})").format(
                        device=outcome.device, seconds=outcome.duration_s, level=level
                    ),
                    "bold green",
                )
            )
        elif outcome.status == "untrusted":
            hint = (
                "\n" + _("press R (shift+r) to run it confined: no writes outside its temporary folder, no network")
                if "no sandbox" not in (outcome.message or "")
                else ""
            )
            status.update(plain(_("not run: {reason}").format(reason=outcome.message or "") + hint, "bold yellow"))
        else:
            where = f"{outcome.source_path}:{outcome.line}: " if outcome.line else ""
            status.update(plain(f"{_(outcome.status)}: {where}{outcome.message or ''}", "bold red"))
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


def _blocks(markdown: str) -> list[tuple[int, int, str]]:
    from kb.render.formula_image import display_blocks

    return display_blocks(markdown)


def symbol_text(symbol: str) -> str:
    from kb.render.latex import tex_to_text

    return tex_to_text(symbol)
