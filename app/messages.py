"""Messages the workers post; handlers on screens own the state. Names are past-tense events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class KnowledgeBaseOpened(Message):
    """The service is ready (opened and synced in a worker, after the first frame)."""

    kb: Any
    report: Any
    notices: list = None  # type: ignore[assignment]  # what opening did that the user must hear of


@dataclass
class DecksChanged(Message):
    """A watched deck file changed and was synced."""

    report: Any


@dataclass
class ConceptsListed(Message):
    concepts: list
    query: str
    everywhere: int | None = None  # matches of the query in every category, when a category filters


@dataclass
class ConceptLoaded(Message):
    concept: dict | None
    concept_id: str


@dataclass
class FormulasRendered(Message):
    """A concept's display formulas rendered as images (or the reasons they stay text), by LaTeX."""

    concept_id: str
    rendered: dict


@dataclass
class SnippetOutput(Message):
    text: str


@dataclass
class SnippetFinished(Message):
    outcome: Any


@dataclass
class QuizItemReady(Message):
    item: Any
    remaining: int


@dataclass
class AnswerRecorded(Message):
    outcome: Any  # None: not recorded, because another session answered the card first
    refused: str = ""  # then, why


@dataclass
class AnswerUndone(Message):
    card_id: str | None


@dataclass
class QuizSummarized(Message):
    summary: Any  # kb.service.session.SessionSummary


@dataclass
class SettingsListed(Message):
    rows: list  # dicts: key, value, source, help


@dataclass
class StatsLoaded(Message):
    stats: dict
    per_day: list


@dataclass
class WorkFailed(Message):
    """A worker's service call failed; the message is shown, the app stays up."""

    error: str
    exception: BaseException | None = None  # a damaged database is recovered (see KBApp)

    @classmethod
    def of(cls, exc: BaseException, what: str = "") -> WorkFailed:
        """The message for `exc`: a KbError's own line; anything else with its type named (a bug)."""
        from kb.errors import KbError

        text = exc.user_message() if isinstance(exc, KbError) else f"{type(exc).__name__}: {exc}"
        return cls(f"{what}: {text}" if what else text, exc)


@dataclass
class KnowledgeBaseFailed(Message):
    """The knowledge base could not be opened (a damaged or newer database, an unwritable home)."""

    error: str
