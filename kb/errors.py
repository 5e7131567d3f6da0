"""The one error model of kb: every error a user should read is a `KbError`.

A `KbError` carries a one-line message for the user, and where it is about a place in a file, the
path, line and column. The CLI turns any `KbError` into `kb: <message>` and a non-zero exit; the
TUI shows it in a notification. Neither looks at the message's text to decide what to do: a caller
that must react to one kind of failure catches that subclass.
"""

from __future__ import annotations


class KbError(Exception):
    """An error with a message meant for the user (one line), optionally at `path:line:col`."""

    def __init__(
        self, message: str = "", *, path: object = None, line: int | None = None, col: int | None = None
    ) -> None:
        super().__init__(message)
        self.path, self.line, self.col = path, line, col

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__

    def user_message(self) -> str:
        """`path:line:col: message` where there is a place, else the message."""
        if self.path is not None and self.line is not None:
            place = f"{self.path}:{self.line}" + (f":{self.col}" if self.col is not None else "")
            return f"{place}: {self.message}"
        return self.message
