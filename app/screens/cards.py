"""The card browser: the search language in a box, the matching cards in a table, the selected
card as the quiz shows it with its history beside them, and keys that change cards.

The first screenful comes from one small read, so the list shows at once even with 100,000
cards; the rest is read in pages by a worker and appended while the user looks. Every change is
a "manual" row of the review log (`u` takes the last one back, as `kb cards --undo` does).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.worker import get_current_worker

from app.i18n import N_, _
from app.messages import WorkFailed
from app.screens.base import KBScreen
from app.text import plain
from app.work import reports_failure

if TYPE_CHECKING:
    from kb.service.cards import CardView, ChangeReport, HistoryRow
    from kb.service.study import QuizItem

# Rows read before the first paint: more than a tall terminal shows.
FIRST_PAGE = 80
# Rows put into the table at first, and again each time the cursor nears its end.
WINDOW = 200
CARD_ID_WIDTH = 32
PAGE = 2000
# (label, key): the label is shown in the TUI's language (R, S and D are FSRS's own letters).
COLUMNS = (
    (N_("card"), "card"),
    (N_("kind"), "kind"),
    (N_("state"), "state"),
    (N_("due"), "due"),
    (N_("flags"), "flags"),
    ("R", "r"),
    ("S", "s"),
    ("D", "d"),
    (N_("lapses"), "lapses"),
    (N_("reviews"), "reviews"),
)
SORT_KEYS: dict[str, Callable[[CardView], object]] = {
    "card": lambda c: c.card_id,
    "kind": lambda c: c.kind,
    "state": lambda c: c.state,
    "due": lambda c: c.due,
    "flags": lambda c: c.marks or None,
    "r": lambda c: c.retrievability,
    "s": lambda c: c.stability,
    "d": lambda c: c.difficulty,
    "lapses": lambda c: c.lapses,
    "reviews": lambda c: c.reviews,
}
FLAG_STYLES = ("", "red", "dark_orange", "green", "blue", "magenta", "cyan", "purple")


class CardBrowserScreen(KBScreen):
    """Find cards with the search language; suspend, bury, flag, reset them; quiz on the search."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="back", tooltip="Back (or leave the search box)"),
        Binding("slash", "focus_query", "Search", id="search", tooltip="Type a search, enter runs it"),
        Binding("s", "toggle_suspend", "Suspend", id="suspend", tooltip="Suspend or unsuspend this card"),
        Binding("b", "toggle_bury", "Bury", id="bury", tooltip="Bury this card until tomorrow, or unbury it"),
        Binding("f", "next_flag", "Flag", id="flag", tooltip="Flag this card: red, orange, ... purple, none"),
        Binding("r", "reset", "Reset", id="reset", show=False, tooltip="Make this card new again"),
        Binding("u", "undo", "Undo", id="undo", tooltip="Take back the last change"),
        Binding("enter", "open_concept", "Concept", id="open-concept", tooltip="Open this card's concept"),
        Binding("z", "study_search", "Quiz these", id="study-search", tooltip="A quiz on the cards this search finds"),
        Binding("t", "sort", "Sort", id="sort", show=False, tooltip="Sort by the next column (again: reverse)"),
        Binding("p", "toggle_panel", "Panel", id="panel", show=False, tooltip="Show or hide the card and its history"),
    ]

    DEFAULT_CSS = """
    #card-browser { height: 1fr; }
    #card-main { width: 1fr; }
    #card-query { margin: 0 0; }
    #card-count { height: 1; padding: 0 1; }
    #card-table { height: 1fr; }
    #card-side { width: 38%; min-width: 30; border-left: vkey $foreground 20%; padding: 0 1; }
    CardBrowserScreen.-narrow #card-side { display: none; }
    """
    # Below 100 columns the table needs the width: the card panel starts hidden (p shows it).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.query_text = query
        self.cards: dict[str, CardView] = {}  # every match by id
        self.matches: list[CardView] = []  # every match, in the order shown
        self.generation = 0
        self.complete = False
        self.sort_column: int | None = None
        self.sort_reverse = False
        self.shown_card: str | None = None
        self._changes: queue.SimpleQueue = queue.SimpleQueue()
        self._changes_lock = threading.Lock()
        self._draining = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="card-browser"):
            with Vertical(id="card-main"):
                yield Input(
                    value=self.query_text,
                    placeholder=_("search: concept:softmax  is:due  -kind:cloze  prop:r<0.8 ... (enter)"),
                    id="card-query",
                )
                yield Static("", id="card-count")
                yield DataTable(id="card-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="card-side"):
                yield Static("", id="card-face")
                yield Static("", id="card-history")
        yield Footer()

    def on_mount(self) -> None:
        self.title = _("Cards")
        table = self.query_one("#card-table", DataTable)
        for label, key in COLUMNS:
            # Card ids run to 50 characters; the rest of the row matters as much.
            table.add_column(_(label), key=key, width=CARD_ID_WIDTH if key == "card" else None)
        table.focus()
        self.search(self.query_text)

    # --- the search ----------------------------------------------------------------------------

    @on(Input.Submitted, "#card-query")
    def _submitted(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        self.search(self.query_text)
        self.query_one("#card-table", DataTable).focus()

    def search(self, query: str) -> None:
        """Show what `query` finds. The first read (FIRST_PAGE cards, a few milliseconds even with
        100,000 cards) is made here, so the screen's first paint has rows; a worker reads the rest."""
        from kb.errors import KbError

        self.generation += 1
        self.complete = False
        self.cards.clear()
        self.matches = []
        self.query_one("#card-table", DataTable).clear()
        try:
            pages = self.app.service.search_card_pages(query, page_size=PAGE, first_page=FIRST_PAGE)
            first = next(pages)
        except KbError as exc:  # a search that cannot be read: say where, keep the box as typed
            self._refused(self.generation, exc.user_message())
            return
        except Exception as exc:
            self.post_message(WorkFailed.of(exc))
            return
        self._add_page(self.generation, first)
        # The rest is read after the first paint: the worker holds the GIL while it reads.
        self.call_after_refresh(self.load, pages, self.generation)

    @work(thread=True, exclusive=True, group="card-search", exit_on_error=False)
    @reports_failure()
    def load(self, pages: Iterator[list[CardView]], generation: int) -> None:
        worker = get_current_worker()
        for page in pages:
            if worker.is_cancelled:
                return
            self.app.call_from_thread(self._add_page, generation, page)
        self.app.call_from_thread(self._finished, generation)

    def _add_page(self, generation: int, page: list[CardView]) -> None:
        if generation != self.generation:
            return
        for card in page:
            if card.card_id not in self.cards:
                self.cards[card.card_id] = card
                self.matches.append(card)
        self._show_more(WINDOW)
        self._count()
        if self.shown_card is None and self.query_one("#card-table", DataTable).row_count:
            self._show_selected()

    def _show_more(self, at_least: int) -> None:
        """Put matches into the table until it holds `at_least` rows (or all of them). The table
        measures every cell it is given, so it holds what has been scrolled to, not 100,000 rows."""
        table = self.query_one("#card-table", DataTable)
        start = table.row_count
        for card in self.matches[start : max(start, at_least)]:
            table.add_row(*self._cells(card), key=card.card_id)

    def _finished(self, generation: int) -> None:
        if generation != self.generation:
            return
        self.complete = True
        self._count()
        if self.sort_column is not None:
            self._apply_sort()

    def _refused(self, generation: int, reason: str) -> None:
        if generation == self.generation:
            self.query_one("#card-count", Static).update(plain(reason, "bold red"))

    def _count(self) -> None:
        n = len(self.cards)
        text = (_("{n:,} card(s)") if self.complete else _("{n:,} card(s) so far…")).format(n=n)
        if self.complete and not n:
            text = _("no card matches")
        self.query_one("#card-count", Static).update(plain(text, "dim"))

    def _cells(self, card: CardView) -> tuple:
        def number(x: float | None, fmt: str) -> Text:
            return Text("" if x is None else format(x, fmt), justify="right")

        flags = Text(card_marks(card), style=FLAG_STYLES[card.flag] if card.flag else "")
        due = "" if card.due_day is None else card.due_day.isoformat()
        return (
            plain(card.card_id),
            card.kind,  # the search's word (kind:cloze), as typed
            _(card.state),
            due,
            flags,
            number(card.retrievability, ".2f"),
            number(card.stability, ".1f"),
            number(card.difficulty, ".1f"),
            Text(str(card.lapses), justify="right"),
            Text(str(card.reviews), justify="right"),
        )

    # --- the selected card ---------------------------------------------------------------------

    @property
    def selected(self) -> str | None:
        table = self.query_one("#card-table", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return None if key.value is None else str(key.value)

    @on(DataTable.RowHighlighted, "#card-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        table = self.query_one("#card-table", DataTable)
        if event.cursor_row >= table.row_count - WINDOW // 4:  # near the end: bring the next rows
            self._show_more(table.row_count + WINDOW)
        self._show_selected()

    def _show_selected(self) -> None:
        card_id = self.selected
        if card_id is None or not self.query_one("#card-side").display:
            return
        self.shown_card = card_id
        self.describe(card_id)

    @work(thread=True, exclusive=True, group="card-side", exit_on_error=False)
    @reports_failure()
    def describe(self, card_id: str) -> None:
        item = self.app.service.quiz_item(card_id)
        history = self.app.service.card_history(card_id)
        self.app.call_from_thread(self._described, card_id, item, history)

    def _described(self, card_id: str, item: QuizItem | None, history: list[HistoryRow]) -> None:
        if card_id != self.shown_card:
            return
        face = Text()
        face.append(plain(card_id + "\n", "bold"))
        if item is None:
            face.append(_("(this card waits for its snippet to pass: r on its concept)"), style="dim")
        else:
            from kb.render.markdown import plain_with_math  # math as readable text, as the quiz shows it

            face.append(plain(plain_with_math(item.card.prompt) + "\n"))
            for i, option in enumerate(item.card.options, 1):
                face.append(plain(f"  {i}. {plain_with_math(option)}\n"))
            face.append(_("— answer —") + "\n", style="dim")
            face.append(plain(plain_with_math(item.card.answer)))
        self.query_one("#card-face", Static).update(face)
        lines = Text("\n" + _("history") + "\n", style="bold")
        if not history:
            lines.append(_("never answered"), style="dim")
        for row in history:
            interval = "" if row.interval_days is None else "  " + _("ivl {days}d").format(days=row.interval_days)
            stability = "" if row.stability is None else f"  S {row.stability:.1f}"
            custom = " " + _("(custom)") if row.custom else ""
            lines.append(f"{row.day.isoformat()}  {_(row.what)}{custom}{interval}{stability}\n", style="")
        self.query_one("#card-history", Static).update(lines)

    # --- changes -------------------------------------------------------------------------------

    def action_toggle_suspend(self) -> None:
        card = self._selected_view()
        if card is not None:
            suspended = not card.suspended
            self._request(card, "suspend" if suspended else "unsuspend", None, suspended=suspended)

    def action_toggle_bury(self) -> None:
        card = self._selected_view()
        if card is not None:
            buried = not card.buried
            self._request(card, "bury" if buried else "unbury", None, buried=buried)

    def action_next_flag(self) -> None:
        card = self._selected_view()
        if card is not None:
            flag = (card.flag + 1) % 8
            self._request(card, "flag", flag, flag=flag)

    def action_reset(self) -> None:
        card = self._selected_view()
        if card is not None:
            self._request(card, "reset", None)

    def action_undo(self) -> None:
        self._enqueue(None)

    def _selected_view(self) -> CardView | None:
        card_id = self.selected
        return None if card_id is None else self.cards.get(card_id)

    def _request(self, card: CardView, action: str, value: int | None, **expected: object) -> None:
        """Queue a change; the row shows the expected marks at once, so that keys pressed before the
        change is stored build on it (f f is orange), and the stored card replaces them after."""
        if expected:
            self.cards[card.card_id] = replace(card, **expected)  # type: ignore[arg-type]
        self._enqueue((card.card_id, action, value))

    def _enqueue(self, request: tuple[str, str, int | None] | None) -> None:
        with self._changes_lock:
            self._changes.put(request)
            if not self._draining:
                self._draining = True
                self.apply_changes()

    @work(thread=True, group="card-change", exit_on_error=False)
    def apply_changes(self) -> None:
        """The one writer of this screen, while changes wait: changes and undos in the order the keys
        were pressed (None is an undo). It ends when none is left; the next key starts another."""
        from kb.errors import KbError

        while True:
            with self._changes_lock:
                if self._changes.empty():
                    self._draining = False
                    return
                request = self._changes.get()
            try:
                if request is None:
                    report = self.app.service.undo_last_change()
                    self.app.call_from_thread(self._changed, report, report.changed)
                else:
                    card_id, action, value = request
                    report = self.app.service.change_cards([card_id], action, value)
                    self.app.call_from_thread(self._changed, report, [card_id])
            except KbError as exc:
                self.app.call_from_thread(self.notify, exc.user_message(), severity="warning", markup=False)
                if request is not None:
                    self.app.call_from_thread(self.refresh_cards, [request[0]])
            except Exception as exc:
                self.post_message(WorkFailed.of(exc, _("the card was not changed")))

    def _changed(self, report: ChangeReport, card_ids: list[str]) -> None:
        note = "" if report.action.startswith("undo") else _(" (u takes it back)")
        self.notify(change_line(report) + note, markup=False)
        self.refresh_cards(card_ids)

    @work(thread=True, group="card-refresh", exit_on_error=False)
    @reports_failure()
    def refresh_cards(self, card_ids: list[str]) -> None:
        views = [view for view in (self.app.service.card_view(card_id) for card_id in card_ids) if view]
        self.app.call_from_thread(self._refreshed, views)

    def _refreshed(self, views: list[CardView]) -> None:
        table = self.query_one("#card-table", DataTable)
        for view in views:
            if view.card_id not in self.cards:
                continue
            self.cards[view.card_id] = view
            self.matches = [view if c.card_id == view.card_id else c for c in self.matches]
            if view.card_id in table.rows:  # not yet scrolled to: its row is made from the new view
                for (_label, key), cell in zip(COLUMNS, self._cells(view)):
                    table.update_cell(view.card_id, key, cell)
        if self.shown_card in {v.card_id for v in views}:
            self._show_selected()

    # --- moving on -----------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#card-table")
    def _selected_row(self, event: DataTable.RowSelected) -> None:
        self.action_open_concept()  # enter on the table, or a click on a highlighted row

    def action_open_concept(self) -> None:
        card = self._selected_view()
        if card is None:
            return
        self.app.open_concept(card.concept_id)

    def action_study_search(self) -> None:
        self.app.open_screen("quiz", self.query_text or "")

    def action_focus_query(self) -> None:
        self.query_one("#card-query", Input).focus()

    def action_sort(self) -> None:
        if self.sort_column is None:
            self.sort_column, self.sort_reverse = 0, False
        elif not self.sort_reverse:
            self.sort_reverse = True
        else:
            self.sort_column, self.sort_reverse = (self.sort_column + 1) % len(COLUMNS), False
        self._apply_sort()

    @on(DataTable.HeaderSelected, "#card-table")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        column = event.column_index
        self.sort_reverse = self.sort_column == column and not self.sort_reverse
        self.sort_column = column
        self._apply_sort()

    def _apply_sort(self) -> None:
        if self.sort_column is None:
            return
        label, key = COLUMNS[self.sort_column]
        label = _(label)
        arrow = "↓" if self.sort_reverse else "↑"
        if not self.complete:  # sorted once every match is in
            self.notify(
                _("sorting by {column} {arrow} once the list is complete").format(column=label, arrow=arrow), timeout=2
            )
            return
        value = SORT_KEYS[key]
        present = [c for c in self.matches if value(c) is not None]
        missing = [c for c in self.matches if value(c) is None]  # empty cells last, either way
        present.sort(key=value, reverse=self.sort_reverse)  # type: ignore[arg-type]
        self.matches = present + missing
        table = self.query_one("#card-table", DataTable)
        shown = max(table.row_count, WINDOW)
        table.clear()
        self._show_more(shown)
        self.notify(_("sorted by {column} {arrow}").format(column=label, arrow=arrow), timeout=2)

    def action_toggle_panel(self) -> None:
        side = self.query_one("#card-side")
        side.styles.display = "none" if side.display else "block"
        if side.display:
            self._show_selected()

    def action_back(self) -> None:
        box = self.query_one("#card-query", Input)
        if box.has_focus:
            self.query_one("#card-table", DataTable).focus()
            return
        self.app.pop_screen()


def card_marks(card: CardView) -> str:
    """The card's flags as words in the TUI's language (CardView.marks says them in English)."""
    from kb.service.cards import FLAGS

    words = [
        word
        for word, on in ((_("suspended"), card.suspended), (_("leech"), card.leech), (_("buried"), card.buried))
        if on
    ]
    if card.flag:
        words.append(_("{color} flag").format(color=_(FLAGS[card.flag])))
    return ", ".join(words)


def change_line(report: ChangeReport) -> str:
    """What a change did, in the TUI's language (ChangeReport.line() says it in English, for `kb cards`)."""
    if report.action.startswith("undo "):
        text = _("took back the last change ({action}) of {n} card(s)").format(
            action=_(report.action[5:]), n=len(report.changed)
        )
        if report.unchanged:
            text += _("; {n} kept it ({why})").format(n=report.unchanged, why=report.note)
        return text
    verb = {
        "suspend": _("{n} card(s) suspended"),
        "unsuspend": _("{n} card(s) unsuspended"),
        "bury": _("{n} card(s) buried until tomorrow"),
        "unbury": _("{n} card(s) unburied"),
        "flag": _("{n} card(s) flagged"),
        "reset": _("{n} card(s) reset to new"),
        "due": _("{n} card(s) given the due date"),
    }.get(report.action)
    text = verb.format(n=len(report.changed)) if verb else f"{len(report.changed)} card(s) {report.action}"
    if report.unchanged:
        text += _("; {n} left as they were").format(n=report.unchanged) + (f" ({report.note})" if report.note else "")
    return text
