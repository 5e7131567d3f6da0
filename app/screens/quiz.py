"""The daily quiz: space reveals, 1-4 grade (each showing its interval), u undoes.

Typed and computed cards take an answer in an Input (enter reveals and grades it); choice cards
are answered with their number keys. Every answer is stored as soon as it is graded.
"""

from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Markdown, Static

from app.messages import AnswerRecorded, AnswerUndone, QuizItemReady, WorkFailed
from app.text import plain, safe
from kb.render.markdown import markdown_with_math, plain_with_math

RATING_NAMES = {1: "Again", 2: "Hard", 3: "Good", 4: "Easy"}


class QuizScreen(Screen):
    BINDINGS = [
        Binding("space", "reveal", "Show answer", id="reveal"),
        # Before a choice card's answer is shown the number keys pick an option; afterwards they
        # rate. check_action enables one binding of each key at a time, so the footer says which.
        Binding("1", "choose(1)", "Choose an option", id="choose", key_display="1-6"),
        *(Binding(str(n), f"choose({n})", str(n), show=False) for n in range(2, 7)),
        Binding("1", "rate(1)", "Again", id="again"),
        Binding("2", "rate(2)", "Hard", id="hard"),
        Binding("3", "rate(3)", "Good", id="good"),
        Binding("4", "rate(4)", "Easy", id="easy"),
        Binding("enter", "accept", "Accept proposed", id="accept", show=False),
        Binding("u", "undo", "Undo", id="undo"),
        Binding("escape", "leave", "Leave", id="leave"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.item = None
        self.revealed = False
        self.grade = None
        self.answered = 0
        self.recalled = 0
        self.session_reviews: list[int] = []  # review ids of this session's answers: all that undo may take back
        self.started = time.monotonic()
        self.shown_at = time.monotonic()
        self.remaining = 0
        self.finished = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="progress")
        yield Static("", id="buttons")
        with VerticalScroll(id="quiz"):
            yield Static("", id="prompt")
            yield Static("", id="options")
            yield Input(placeholder="type your answer, then enter", id="answer-input")
            yield Static("", id="verdict")
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
            return self.revealed and self.grade is not None
        return True

    # --- loading a card -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="quiz", exit_on_error=False)
    def next_card(self) -> None:
        kb = self.app.kb
        try:
            item = kb.next_quiz_item()
            remaining = len(kb.due_queue())
        except Exception as exc:
            self.post_message(WorkFailed(str(exc), exc))
            return
        self.post_message(QuizItemReady(item, remaining))

    @on(QuizItemReady)
    def _ready(self, message: QuizItemReady) -> None:
        self.item, self.remaining = message.item, message.remaining
        self.revealed, self.grade = False, None
        if self.item is None:
            self._summary()
            return
        card = self.item.card
        self.finished = False
        self.shown_at = time.monotonic()
        self.query_one("#progress", Static).update(plain(
            f"Card {self.answered + 1} of {self.answered + self.remaining}   ·   {self.item.state}   ·   "
            f"{card.concept_id}", "dim"))
        self.query_one("#prompt", Static).update(plain(plain_with_math(card.prompt), "bold"))
        options = "\n".join(f"  {i}. {option}" for i, option in enumerate(card.options, 1))
        self.query_one("#options", Static).update(plain(options))
        self.query_one("#options", Static).display = bool(card.options)
        self.query_one("#answer", Markdown).update("")
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
        hint = ("type the answer, enter" if typed else "1-%d choose" % len(card.options) if card.options
                else "space shows the answer")
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
        self._reveal(str(number))

    def _reveal(self, response: str | None) -> None:
        card = self.item.card
        self.revealed = True
        self.grade = self.app.kb.grade(card, response) if response is not None and card.auto_graded else None
        self.query_one("#answer-input", Input).display = False
        self.set_focus(None)
        note = f"\n\n*Note:* {card.note}" if card.note else ""
        self.query_one("#answer", Markdown).update(markdown_with_math(safe(card.answer + note)))
        verdict = self.query_one("#verdict", Static)
        verdict.display = self.grade is not None
        if self.grade is not None:
            style = "bold green" if self.grade.correct else "bold red"
            verdict.update(plain(self.grade.feedback, style))
        buttons = "   ".join(f"{r} {RATING_NAMES[r]} ({self.item.intervals[r]})" for r in (1, 2, 3, 4))
        proposed = f"   ·   enter = {RATING_NAMES[self.grade.proposed_rating]}" if self.grade else ""
        self.query_one("#buttons", Static).update(plain(buttons + proposed, "bold"))
        self.refresh_bindings()

    def action_rate(self, rating: int) -> None:
        if self.item is not None and self.revealed:
            self._record(rating)

    def action_accept(self) -> None:
        if self.revealed and self.grade is not None:
            self._record(self.grade.proposed_rating)

    def _record(self, rating: int) -> None:
        item, self.item = self.item, None  # no double answers while the worker writes
        self.refresh_bindings()
        self.answer(item, rating, int((time.monotonic() - self.shown_at) * 1000))

    @work(thread=True, exclusive=False, group="quiz-answer", exit_on_error=False)
    def answer(self, item, rating: int, duration_ms: int) -> None:
        from kb.service import AnsweredElsewhere

        try:
            outcome = self.app.kb.answer(item.card.card_id, rating, duration_ms=duration_ms, shown_state=item.shown_state)
        except AnsweredElsewhere as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", markup=False)
            self.app.call_from_thread(self.next_card)
            return
        except Exception as exc:
            self.post_message(WorkFailed(f"the answer was not saved: {exc}", exc))
            return
        self.post_message(AnswerRecorded(outcome))

    @on(AnswerRecorded)
    def _recorded(self, message: AnswerRecorded) -> None:
        self.answered += 1
        self.session_reviews.append(message.outcome.review_id)
        self.recalled += message.outcome.rating > 1
        if message.outcome.leech:
            self.notify(message.outcome.leech_message.capitalize() + ".", severity="warning", markup=False)
        self.app.refresh_due()
        self.next_card()

    def action_undo(self) -> None:
        self.undo()

    @work(thread=True, exclusive=True, group="quiz", exit_on_error=False)
    def undo(self) -> None:
        # Only this session's answers: earlier days and other sessions are never taken back.
        if not self.session_reviews:
            self.post_message(AnswerUndone(None))
            return
        try:
            card_id = self.app.kb.undo(self.session_reviews.pop())
        except Exception as exc:
            self.post_message(WorkFailed(str(exc), exc))
            return
        self.post_message(AnswerUndone(card_id))

    @on(AnswerUndone)
    def _undone(self, message: AnswerUndone) -> None:
        if message.card_id is None:
            self.notify("Nothing to undo in this session.")
            return
        self.answered = max(0, self.answered - 1)
        self.notify(f"Took back the answer to {message.card_id}.", markup=False)
        self.app.refresh_due()
        self.next_card()

    def action_leave(self) -> None:
        self.app.pop_screen()

    # --- the end ------------------------------------------------------------------------------

    def _summary(self) -> None:
        self.finished = True
        self.query_one("#answer-input", Input).display = False
        minutes = (time.monotonic() - self.started) / 60
        self.query_one("#progress", Static).update(plain("Nothing more to answer now", "bold"))
        self.query_one("#prompt", Static).update(plain(
            f"{self.answered} reviewed, {self.recalled} recalled, {minutes:.1f} min."
            if self.answered else "Nothing is due right now. Come back tomorrow, or add a note (a).", "bold"))
        self.query_one("#options", Static).update("")
        self.query_one("#answer", Markdown).update("")
        self.query_one("#verdict", Static).update("")
        self.query_one("#buttons", Static).update(plain("escape: back to browsing   ·   u: undo the last answer", "dim"))
        self.load_forecast()
        self.load_waiting()
        self.refresh_bindings()

    @work(thread=True, exclusive=True, group="quiz-waiting", exit_on_error=False)
    def load_waiting(self) -> None:
        """Nothing more can be shown now: say so, and why cards still wait (never a silent count)."""
        try:
            line = self.app.kb.due_overview().waiting_line()
        except Exception as exc:
            self.post_message(WorkFailed(str(exc), exc))
            return
        if line:
            self.app.call_from_thread(self.query_one("#verdict", Static).update, plain(line, "yellow"))
            self.app.call_from_thread(setattr, self.query_one("#verdict", Static), "display", True)

    @work(thread=True, exclusive=True, group="quiz-forecast", exit_on_error=False)
    def load_forecast(self) -> None:
        try:
            stats = self.app.kb.stats()
        except Exception:
            return
        text = f"Next 7 days: {' · '.join(str(n) for n in stats['forecast_7d'])} cards due (today first)."
        self.app.call_from_thread(self.query_one("#answer", Markdown).update, text)

