"""Small widgets of kb's own, where Textual's would cost the first frame more than they give."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static


class ChoiceList(Static, can_focus=True):
    """A short, fixed list of choices, one per line: up/down move, enter or a click chooses.

    For a handful of entries (the categories) an OptionList is about 25 ms of the first frame on a
    slow machine, a Static about 3 ms; this one draws its lines as a single Text.
    """

    BINDINGS = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("home", "move_to(0)", "First", show=False),
        Binding("end", "move_to(-1)", "Last", show=False),
        Binding("enter,space", "choose", "Choose", show=False),
    ]
    DEFAULT_CSS = """
    ChoiceList { padding: 0 1; }
    """

    highlighted: reactive[int] = reactive(0)
    chosen: reactive[int] = reactive(0)

    class Chosen(Message):
        def __init__(self, choice_list: ChoiceList, choice_id: str) -> None:
            super().__init__()
            self.choice_list = choice_list
            self.choice_id = choice_id

        @property
        def control(self) -> ChoiceList:
            return self.choice_list

    def __init__(self, choices: list[tuple[str, str]], *, id: str | None = None) -> None:
        """`choices` are (id, label) pairs."""
        super().__init__("", id=id)
        self.choices = list(choices)

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, (_, label) in enumerate(self.choices):
            style = ""
            if index == self.highlighted:
                style = "reverse" if self.has_focus else "bold"
            marker = "▸ " if index == self.chosen else "\u00a0\u00a0"  # a plain space at a line start is dropped
            text.append(marker + label, style=style)
            if index < len(self.choices) - 1:
                text.append("\n")
        return text

    def watch_highlighted(self) -> None:
        self.refresh()

    def watch_chosen(self) -> None:
        self.refresh()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def action_move(self, step: int) -> None:
        self.highlighted = max(0, min(len(self.choices) - 1, self.highlighted + step))

    def action_move_to(self, index: int) -> None:
        self.highlighted = index % len(self.choices)

    def action_choose(self) -> None:
        self.choose(self.highlighted)

    def choose(self, index: int) -> None:
        self.highlighted = self.chosen = index
        self.post_message(self.Chosen(self, self.choices[index][0]))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and 0 <= offset.y < len(self.choices):
            self.choose(offset.y)
