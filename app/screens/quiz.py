"""The daily quiz: space reveals, 1-4 grade (each showing its interval), u undoes.

Typed and computed cards take an answer in an Input (enter reveals and grades it); choice cards
are answered with their number keys. Every answer is stored as soon as it is graded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Header, Input, Markdown, Static

from app.i18n import _
from app.messages import (
    AnswerRecorded,
    AnswerUndone,
    QuizItemReady,
    QuizSummarized,
    WorkFailed,
)
from app.screens.base import KBScreen
from app.text import plain, safe
from app.work import reports_failure
from kb.render.markdown import markdown_with_math, plain_with_math
from kb.scheduler import rating_name
from kb.service.session import QuizSession

if TYPE_CHECKING:
    from kb.quiz import Grade
    from kb.service import KnowledgeBase, QuizItem


class QuizScreen(KBScreen):
    BINDINGS = [
        Binding("space", "reveal", "Show answer", id="reveal"),
        # Before a choice card's answer is shown the number keys pick an option; afterwards they
        # rate. check_action enables one binding of each key at a time, so the footer says which.
        Binding("1", "choose(1)", "Choose an option", id="choose", key_display="1-6"),
        *(Binding(str(n), f"choose({n})", str(n), show=False) for n in range(2, 7)),
        *(Binding(str(r), f"rate({r})", rating_name(r), id=rating_name(r).lower()) for r in (1, 2, 3, 4)),
        Binding("enter", "accept", "Accept proposed", id="accept", show=False),
        Binding("u", "undo", "Undo", id="undo"),
        Binding("escape", "leave", "Leave", id="leave"),
    ]

    def __init__(self, kb: KnowledgeBase, *, search: str | None = None) -> None:
        super().__init__()
        self.session = QuizSession(kb, search=search)
        self.busy = True  # a worker is loading or storing: keys that would answer wait for it
        self.finished = False

    @property
    def item(self) -> QuizItem | None:
        return None if self.busy else self.session.current

    @property
    def revealed(self) -> bool:
        return self.session.revealed

    @property
    def grade(self) -> Grade | None:
        return self.session.grade

    @property
    def answered(self) -> int:
        return self.session.answered

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="progress")
        yield Static("", id="buttons")
        with VerticalScroll(id="quiz"):
            yield Static("", id="prompt")
            yield Static("", id="options")
            yield Input(placeholder=_("type your answer, then enter"), id="answer-input")
            yield Static("", id="verdict")
            # A formula card's formula as an image, where the terminal shows graphics.
            yield Vertical(id="answer-image")
            yield Markdown("", id="answer")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#answer-input", Input).display = False
        self.next_card()

    # --- what is allowed when (the footer shows only what applies) ----------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if self.finished:
            return action in ("leave", "undo")
        if action == "reveal":
            return self.item is not None and not self.revealed
        if action == "rate":
            return self.item is not None and self.revealed
        if action == "choose":
            return self.item is not None and not self.revealed and parameters[0] <= len(self.item.card.options)
        if action == "accept":
            return self.item is not None and self.revealed and self.grade is not None
        return True

    # --- loading a card -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="quiz", exit_on_error=False)
    @reports_failure()
    def next_card(self) -> None:
        item = self.session.next()
        self.post_message(QuizItemReady(item, self.session.remaining))

    @on(QuizItemReady)
    def _ready(self, message: QuizItemReady) -> None:
        self.busy = False
        if message.item is None:
            self._summary()
            return
        card = message.item.card
        self.finished = False
        self.query_one("#progress", Static).update(
            plain(
                _("Card {n} of {total}").format(n=self.answered + 1, total=self.answered + message.remaining)
                + f"   ·   {_(message.item.state)}   ·   "
                f"{card.concept_id}",
                "dim",
            )
        )
        self.query_one("#prompt", Static).update(plain(plain_with_math(card.prompt), "bold"))
        options = "\n".join(f"  {i}. {option}" for i, option in enumerate(card.options, 1))
        self.query_one("#options", Static).update(plain(options))
        self.query_one("#options", Static).display = bool(card.options)
        self.query_one("#answer", Markdown).update("")
        self.query_one("#answer-image", Vertical).remove_children()
        self.query_one("#verdict", Static).update("")
        self.query_one("#verdict", Static).display = False
        typed = card.auto_graded and not card.options
        answer_input = self.query_one("#answer-input", Input)
        answer_input.value = ""
        answer_input.display = typed
        if typed:
            answer_input.focus()
        else:
            self.set_focus(None)
        hint = (
            _("type the answer, enter")
            if typed
            else _("1-{n} choose").format(n=len(card.options))
            if card.options
            else _("space shows the answer")
        )
        self.query_one("#buttons", Static).update(plain(hint, "dim"))
        self.refresh_bindings()

    # --- answering ----------------------------------------------------------------------------

    @on(Input.Submitted, "#answer-input")
    def _typed(self, event: Input.Submitted) -> None:
        if self.item is not None and not self.revealed:
            self._reveal(event.value)

    def action_reveal(self) -> None:
        if self.item is None or self.revealed:
            return
        card = self.item.card
        response = self.query_one("#answer-input", Input).value if card.auto_graded and not card.options else None
        self._reveal(response)

    def action_choose(self, number: int) -> None:
        if self.item is not None and not self.revealed:
            self._reveal(str(number))

    def _reveal(self, response: str | None) -> None:
        if self.item is None:
            return
        card = self.item.card
        grade = self.session.reveal(response)
        self.query_one("#answer-input", Input).display = False
        self.set_focus(None)
        note = "\n\n*" + _("Note:") + f"* {card.note}" if card.note else ""
        self.query_one("#answer", Markdown).update(markdown_with_math(safe(card.answer + note)))
        if card.latex:
            self._show_formula_image(card.card_id, card.latex)
        verdict = self.query_one("#verdict", Static)
        verdict.display = grade is not None
        if grade is not None:
            # "correct" is said in the TUI's language; the grader's longer lines stay as kb.quiz wrote them.
            verdict.update(plain(_(grade.feedback), "bold green" if grade.correct else "bold red"))
        buttons = self.session.buttons("   ", template="{r} {name} ({interval})", translate=_)
        proposed = (
            "   ·   " + _("enter = {rating}").format(rating=_(rating_name(grade.proposed_rating))) if grade else ""
        )
        self.query_one("#buttons", Static).update(plain(buttons + proposed, "bold"))
        self.refresh_bindings()

    def _show_formula_image(self, card_id: str, tex: str) -> None:
        from app import formulas

        if formulas.protocol() is None:
            return
        _base_background, _base_color, _background, color = self.query_one("#answer", Markdown).colors
        self._render_formula(card_id, tex, color.hex)

    @work(thread=True, exclusive=True, group="formula-image", exit_on_error=False)
    def _render_formula(self, card_id: str, tex: str, color: str) -> None:
        from app import formulas

        cache = self.app.service.settings.home / "cache" / "formulas"
        rendered = formulas.render(tex, color=color, background=None, cache_dir=cache)
        self.app.call_from_thread(self._mount_formula, card_id, rendered)

    def _mount_formula(self, card_id: str, rendered) -> None:
        from app import formulas

        if self.item is None or self.item.card.card_id != card_id or not self.revealed or rendered.png is None:
            return  # another card by now, or the formula stays text
        box = self.query_one("#answer-image", Vertical)
        box.remove_children()
        width = max(20, self.query_one("#quiz").size.width - 6)
        box.mount(formulas.image_widget(rendered, max_width=width, classes="formula-image display"))

    def action_rate(self, rating: int) -> None:
        if self.item is not None and self.revealed:
            self._record(rating)

    def action_accept(self) -> None:
        if self.item is not None and self.revealed and self.grade is not None:
            self._record(self.grade.proposed_rating)

    def _record(self, rating: int) -> None:
        self.busy = True  # no second answer while the worker writes this one
        self.refresh_bindings()
        self.answer(rating)

    @work(thread=True, exclusive=False, group="quiz-answer", exit_on_error=False)
    @reports_failure("the answer was not saved")
    def answer(self, rating: int) -> None:
        from kb.service import AnsweredElsewhere

        try:
            outcome = self.session.answer(rating)
        except AnsweredElsewhere as exc:
            self.post_message(AnswerRecorded(None, exc.user_message()))
            return
        self.post_message(AnswerRecorded(outcome))

    @on(AnswerRecorded)
    def _recorded(self, message: AnswerRecorded) -> None:
        if message.outcome is None:
            self.notify(message.refused, severity="warning", markup=False)
        elif message.outcome.leech:
            self.notify(message.outcome.leech_message.capitalize() + ".", severity="warning", markup=False)
        self.app.refresh_due()
        self.next_card()

    def action_undo(self) -> None:
        self.busy = True
        self.refresh_bindings()
        self.undo()

    @work(thread=True, exclusive=True, group="quiz", exit_on_error=False)
    @reports_failure()
    def undo(self) -> None:
        card_id = self.session.undo()
        self.post_message(AnswerUndone(card_id))

    @on(AnswerUndone)
    def _undone(self, message: AnswerUndone) -> None:
        if message.card_id is None:
            self.notify(_("Nothing to undo in this session."))
        else:
            self.notify(_("Took back the answer to {card}.").format(card=message.card_id), markup=False)
            self.app.refresh_due()
        self.next_card()  # the card taken back is due again, first

    @on(WorkFailed)
    def _work_failed(self, message: WorkFailed) -> None:
        self.busy = False  # the app shows the error; the keys work again
        self.refresh_bindings()

    def action_leave(self) -> None:
        self.app.pop_screen()

    # --- the end ------------------------------------------------------------------------------

    def _summary(self) -> None:
        self.finished = True
        self.query_one("#answer-input", Input).display = False
        self.query_one("#progress", Static).update(plain(_("Nothing more to answer now"), "bold"))
        self.query_one("#prompt", Static).update(
            plain(
                _("{n} reviewed.").format(n=self.answered)
                if self.answered
                else _("Nothing is due right now. Come back tomorrow, or add a note (a)."),
                "bold",
            )
        )
        self.query_one("#options", Static).update("")
        self.query_one("#answer", Markdown).update("")
        self.query_one("#answer-image", Vertical).remove_children()
        self.query_one("#verdict", Static).update("")
        self.query_one("#verdict", Static).display = False
        self.query_one("#buttons", Static).update(
            plain(_("escape: back to browsing   ·   u: undo the last answer"), "dim")
        )
        self.summarize()
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="quiz-summary", exit_on_error=False)
    @reports_failure()
    def summarize(self) -> None:
        summary = self.session.summary()
        self.post_message(QuizSummarized(summary))

    @on(QuizSummarized)
    def _summarized(self, message: QuizSummarized) -> None:
        """Nothing more can be shown now: what was done, what comes, and why cards still wait."""
        summary = message.summary
        if summary.answered:
            self.query_one("#prompt", Static).update(
                plain(
                    _("{answered} reviewed, {recalled} recalled, {minutes:.1f} min.").format(
                        answered=summary.answered, recalled=summary.recalled, minutes=summary.minutes
                    ),
                    "bold",
                )
            )
        forecast = " · ".join(str(n) for n in summary.forecast_7d)
        self.query_one("#answer", Markdown).update(
            _("Next 7 days: {forecast} cards due (today first).").format(forecast=forecast)
        )
        if summary.waiting_line:
            verdict = self.query_one("#verdict", Static)
            verdict.update(plain(summary.waiting_line, "yellow"))
            verdict.display = True
