"""The service layer: the one way the CLI and the TUI reach the core (Anki's "Collection").

Each concern is a module of use cases: `content` (decks on disk, checks, search, notes), `decks`
(trust), `snippets` (verify and run), `study` (the queue and answers), `session` (a quiz session,
shared by the CLI and the TUI), `progress` (stats, the optimizer), `maintenance` (backups,
recovery, doctor) and `interchange` (import and export). `KnowledgeBase` joins them over one
shared context (`base.ServiceBase`: settings, clock, the database opened on first use), so that a
caller holds one object. Returns are dataclasses and typed dicts, never table rows; importing this
package stays cheap (the database layer is imported on first use).
"""

from __future__ import annotations

from kb.service.base import ServiceBase, is_damaged_database, save_user_setting, utc_now
from kb.service.cards import CardsUseCases, CardView
from kb.service.content import NOTE_TEMPLATE, ContentUseCases, NoteError, SearchHit
from kb.service.decks import DeckError, DeckInfo, DeckUseCases
from kb.service.interchange import (
    DeckImportError,
    DeckImportOutcome,
    ImportOutcome,
    export_anki,
    export_html,
    export_json,
    export_markdown,
    import_anki,
    import_deck,
    json_schema,
)
from kb.service.maintenance import MaintenanceUseCases
from kb.service.progress import OptimizeError, ProgressUseCases, true_retention_lines
from kb.service.snippets import SnippetUseCases, VerifyError, VerifyOutcome
from kb.service.study import (
    AnsweredElsewhere,
    AnswerOutcome,
    DueOverview,
    QuizItem,
    StudyUseCases,
)


class KnowledgeBase(
    CardsUseCases,
    ContentUseCases,
    DeckUseCases,
    SnippetUseCases,
    StudyUseCases,
    ProgressUseCases,
    MaintenanceUseCases,
    ServiceBase,
):
    """The knowledge base of one KB_HOME: its decks and its database."""

    def __enter__(self) -> KnowledgeBase:
        return self


__all__ = [
    "NOTE_TEMPLATE",
    "AnswerOutcome",
    "CardView",
    "AnsweredElsewhere",
    "DeckError",
    "DeckImportError",
    "DeckImportOutcome",
    "DeckInfo",
    "DueOverview",
    "ImportOutcome",
    "KnowledgeBase",
    "NoteError",
    "OptimizeError",
    "QuizItem",
    "SearchHit",
    "VerifyError",
    "VerifyOutcome",
    "export_anki",
    "export_json",
    "export_html",
    "export_markdown",
    "import_anki",
    "import_deck",
    "is_damaged_database",
    "json_schema",
    "save_user_setting",
    "true_retention_lines",
    "utc_now",
]
