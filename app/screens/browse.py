"""Browse: categories beside the concept list and a preview; `/` searches as you type."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from app.i18n import _
from app.messages import ConceptLoaded, ConceptsListed
from app.screens.base import KBScreen
from app.text import plain
from app.widgets import ChoiceList
from app.work import reports_failure
from kb.categories import CATEGORIES

ALL = "all"
FIRST_PAGE = 200


def _option(concept: dict) -> Option:
    return Option(plain(f"{concept['title']['en']} · {concept['title']['zh']}"), id=concept["id"])


class BrowseScreen(KBScreen):
    """Categories | concepts (an OptionList, fine with 10,000) | a preview."""

    BINDINGS = [
        Binding("slash", "search", "Search", id="search", tooltip="Search as you type (English or 中文)"),
        Binding("enter", "open", "Open", id="open", show=False),
        Binding("q", "quiz", "Quiz", id="quiz", tooltip="Today's quiz"),
        Binding("s", "stats", "Stats", id="stats", tooltip="Reviews, retention, forecast"),
        Binding("c", "cards", "Cards", id="cards", tooltip="Browse and search every card"),
        Binding("a", "add_note", "Add note", id="add-note", tooltip="Write a new concept in YAML"),
        Binding("o", "settings", "Settings", id="settings", show=False, tooltip="Daily limits, retention, steps, ..."),
        Binding("ctrl+p", "command_palette", "Find", id="find", tooltip="Find a concept by title, alias or tag"),
        Binding("escape", "clear_search", "Clear", id="clear", show=False),
        Binding(
            "x", "clear_filter", "All categories", id="clear-filter", tooltip="Stop filtering by the selected category"
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.category = ALL
        self.query_text = ""
        self.concepts: list[dict] = []
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="browse"):
            # A category's name in the TUI's language; its id (the search's `category:`) stays as it is.
            yield ChoiceList([(ALL, _("All categories")), *((name, _(name)) for name in CATEGORIES)], id="categories")
            with Vertical(id="middle"):
                yield Input(placeholder=_("/ search: softmax, 注意力, 卷积 …"), id="search")
                yield Static("", id="filter")
                yield OptionList(id="concepts")
                yield Static("", id="count")
            with VerticalScroll(id="preview"):
                yield Static(_("Opening the knowledge base…"), id="preview-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#concepts", OptionList).focus()
        self.query_one("#filter", Static).display = False
        if getattr(self.app, "kb", None) is not None:
            self.knowledge_base_ready()
            return
        # Until the store is open (its imports take most of a second), show the list as last seen.
        from kb.cache import read_list_cache
        from kb.config import load_settings

        try:
            cached = read_list_cache(self.app.settings or load_settings())
        except ValueError:
            cached = None
        if cached:
            self.call_after_refresh(self._listed, ConceptsListed(cached, ""))

    # --- called by the app --------------------------------------------------------------------

    def knowledge_base_ready(self) -> None:
        self.load_concepts()
        options = self.query_one("#concepts", OptionList)
        if options.highlighted is not None:
            self.preview(options.get_option_at_index(options.highlighted).id)

    def decks_changed(self, report) -> None:
        self.load_concepts()

    # --- loading ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="browse-list", exit_on_error=False)
    @reports_failure()
    def load_concepts(self) -> None:
        kb = self.app.kb
        if kb is None:
            return  # the cached list is showing until the store is open
        query, category = self.query_text.strip(), self.category
        everywhere = None
        if query:
            hits = kb.search(query, limit=500)
            concepts = [
                {
                    "id": h.id,
                    "title": {"en": h.title_en, "zh": h.title_zh},
                    "category": h.category,
                    "snippet": h.snippet_text,
                }
                for h in hits
                if category == ALL or h.category == category
            ]
            everywhere = len(hits) if category != ALL else None
        else:
            concepts = kb.list_concepts(None if category == ALL else category)
        self.post_message(ConceptsListed(concepts, query, everywhere))

    @on(ConceptsListed)
    def _listed(self, message: ConceptsListed) -> None:
        if message.query != self.query_text.strip():
            return  # an older search; a newer one is on its way
        self.concepts = message.concepts
        self._generation += 1
        options = self.query_one("#concepts", OptionList)
        options.clear_options()
        # A screenful now, the rest after the next paint: 10,000 options take most of a second.
        first, rest = message.concepts[:FIRST_PAGE], message.concepts[FIRST_PAGE:]
        options.add_options(_option(c) for c in first)
        if rest:
            self.call_after_refresh(self._add_rest, self._generation, rest)
        count = len(message.concepts)
        label = (_("{n} concept") if count == 1 else _("{n} concepts")).format(n=count)
        if message.query:
            label += _(" matching {query!r}").format(query=message.query)
        self.query_one("#count", Static).update(plain(label))
        # The category is a filter the user can see, and clear: never a silent limit on a search.
        shown = self.query_one("#filter", Static)
        shown.display = self.category != ALL
        self.refresh_bindings()
        if self.category != ALL:
            elsewhere = (message.everywhere or 0) - len(message.concepts) if message.query else 0
            more = _("; {n} more in other categories").format(n=elsewhere) if elsewhere > 0 else ""
            shown.update(
                plain(_("only {category}{more} · x: every category").format(category=_(self.category), more=more))
            )
        if message.concepts:
            options.highlighted = 0
        else:
            self.query_one("#preview-text", Static).update(
                plain(_("Nothing here.") if not message.query else _("No concept matches. Try fewer or other words."))
            )

    def _add_rest(self, generation: int, rest: list[dict]) -> None:
        if generation == self._generation:  # not replaced by a newer list meanwhile
            self.query_one("#concepts", OptionList).add_options(_option(c) for c in rest)

    @on(OptionList.OptionHighlighted, "#concepts")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_id:
            self.preview(event.option_id)

    @work(thread=True, exclusive=True, group="browse-preview", exit_on_error=False)
    @reports_failure()
    def preview(self, concept_id: str) -> None:
        if self.app.kb is None:
            return  # the cached list is showing; the preview comes once the store is open
        concept = self.app.service.show(concept_id)
        self.post_message(ConceptLoaded(concept, concept_id))

    @on(ConceptLoaded)
    def _preview_loaded(self, message: ConceptLoaded) -> None:
        concept = message.concept
        if concept is None:
            return
        from rich.console import Group

        run = concept.get("last_run")
        if run:
            verdict = _("snippet: {status} on {device}").format(status=_(run["status"]), device=run["device"])
            if not run.get("current", True):
                verdict += _(" (an earlier version of it)")
        elif concept.get("snippet"):
            verdict = _("snippet: not run yet (press enter, then r)")
        else:
            verdict = _("no snippet")
        parts = [
            plain(concept["title"]["en"], "bold"),
            plain(concept["title"]["zh"], "bold"),
            plain(f"{_(concept['category'])} · {', '.join(concept['tags'])}", "dim"),
            plain(""),
            plain(concept["summary"]["en"]),
            plain(""),
            plain(concept["summary"]["zh"]),
            plain(""),
            plain(_("{n} cards · {verdict}").format(n=len(concept["cards"]), verdict=verdict), "dim"),
        ]
        self.query_one("#preview-text", Static).update(Group(*parts))

    # --- actions ------------------------------------------------------------------------------

    @on(ChoiceList.Chosen, "#categories")
    def _category(self, event: ChoiceList.Chosen) -> None:
        self.category = event.choice_id
        self.load_concepts()

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self.load_concepts()

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self.query_one("#concepts", OptionList).focus()

    @on(OptionList.OptionSelected, "#concepts")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.open_concept(event.option_id)

    def open_concept(self, concept_id: str | None) -> None:
        if self.app.kb is None:
            self.notify(self.app.not_ready_message(), markup=False)
            return
        if concept_id:
            self.app.open_concept(concept_id)

    def action_open(self) -> None:
        options = self.query_one("#concepts", OptionList)
        if options.highlighted is not None:
            self.open_concept(options.get_option_at_index(options.highlighted).id)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "clear_filter":
            return self.category != ALL  # shown only while a category filters the list
        return True

    def action_clear_filter(self) -> None:
        if self.category == ALL:
            return
        self.category = ALL
        categories = self.query_one("#categories", ChoiceList)
        categories.highlighted = categories.chosen = 0
        self.load_concepts()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
        self.query_one("#concepts", OptionList).focus()

    def action_quiz(self) -> None:
        if self.app.kb is None:
            self.notify(self.app.not_ready_message(), markup=False)
            return
        from app.screens.quiz import QuizScreen

        self.app.push_screen(QuizScreen(self.app.service))

    def action_settings(self) -> None:
        self.app.open_screen("settings")

    def action_cards(self) -> None:
        """The card browser; on the cards of the selected category when one filters the list."""
        self.app.open_screen("cards", "" if self.category == ALL else f'category:"{self.category}"')

    def action_stats(self) -> None:
        if self.app.kb is None:
            self.notify(self.app.not_ready_message(), markup=False)
            return
        from app.screens.stats import StatsScreen

        self.app.push_screen(StatsScreen())

    def action_add_note(self) -> None:
        if self.app.kb is None:
            self.notify(self.app.not_ready_message(), markup=False)
            return
        from app.screens.note import edit_note

        edit_note(self.app, None)
