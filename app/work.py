"""One way for a worker to fail: `@reports_failure` turns any exception of a worker's service calls
into a `WorkFailed` message, which the app shows in one place (a KbError's one line, or an
unexpected error with its type), so no worker repeats its own catch-all block."""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

from app.i18n import _
from app.messages import WorkFailed

F = TypeVar("F", bound=Callable[..., object])


def reports_failure(what: str = "") -> Callable[[F], F]:
    """Decorate a worker method (below `@work`): on an exception, post WorkFailed (prefixed by
    `what`, e.g. "the answer was not saved", in the TUI's language) and end the worker quietly."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                self.post_message(WorkFailed.of(exc, _(what)))
                return None

        return run  # type: ignore[return-value]

    return decorate
