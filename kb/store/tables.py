"""SQLModel tables. Content tables are derived from YAML; cards, reviews and runs are history.

Rows never leave kb/store: kb.service turns them into plain domain objects.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import BigInteger, Column, Index, Integer, Table, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as ISO-8601 UTC text; refuses naive ones (they are ambiguous)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime refused: store UTC-aware datetimes only")
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")

    def process_result_value(self, value, dialect):
        return None if value is None else datetime.fromisoformat(value)


_INT64 = BigInteger().with_variant(Integer(), "sqlite")


def _ts(nullable: bool = False):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class DeckRow(SQLModel, table=True):
    """A deck seen by sync. `trusted` is the user's own decks (bundled, notes), refreshed every sync."""

    __tablename__ = "deck"
    path: str = Field(primary_key=True)
    name: str
    trusted: bool = False


class TrustedSnippetRow(SQLModel, table=True):
    """`kb trust` of a deck: what the user reviewed, per concept (schema 2; strings since schema 3).

    `snippet_hash` covers every executed string (kb.trust): the code and each computed card's
    expression. A snippet of a deck that is not the user's own runs only while its current hash
    equals the one recorded here, so an edit of either is untrusted again until trusted anew.
    `executed_json` keeps the strings themselves, so that kb can say what changed.
    """

    __tablename__ = "trusted_snippet"
    user_name: str = Field(primary_key=True)  # schema 5: each user trusts for themselves
    deck_path: str = Field(primary_key=True)
    concept_id: str = Field(primary_key=True)
    snippet_hash: str
    trusted_at: datetime = Field(default=None, sa_column=Column(UTCDateTime(), nullable=False))
    executed_json: str | None = None


class SourceFileRow(SQLModel, table=True):
    """What the last sync saw of one file, so the next one can skip it when unchanged."""

    __tablename__ = "source_file"
    path: str = Field(primary_key=True)
    deck_path: str
    # Nanoseconds since 1970 need 64 bits: BIGINT on PostgreSQL (its INTEGER has 32); SQLite's
    # INTEGER has 64, and its DDL stays as it was.
    mtime_ns: int = Field(sa_column=Column(_INT64, nullable=False))
    size: int = Field(sa_column=Column(_INT64, nullable=False))
    content_hash: str
    concept_id: str | None = None  # the id its last valid version defined
    errors_json: str | None = None  # errors of its current version, re-reported until fixed


class ConceptRow(SQLModel, table=True):
    __tablename__ = "concept"
    id: str = Field(primary_key=True)
    deck_path: str
    source_path: str
    category: str = Field(index=True)
    title_en: str
    title_zh: str
    data_json: str
    content_hash: str
    snippet_hash: str | None = None
    snippet_line_offset: int = 0
    prerequisites_json: str = "[]"
    retired: bool = Field(default=False, index=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class CardRow(SQLModel, table=True):
    """A reviewable card. `pk` never changes, so renames keep the review log attached."""

    __tablename__ = "card"
    pk: int | None = Field(default=None, primary_key=True)
    card_id: str = Field(unique=True)  # "concept/key"
    concept_id: str = Field(index=True)
    key: str
    kind: str
    position: int
    # Where the card comes in the order new cards are introduced (category, concept, position);
    # indexed so today's queue reads new cards in order and stops early.
    order_key: str = Field(index=True)
    content_hash: str
    payload_json: str
    retired: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class CardStateRow(SQLModel, table=True):
    """Scheduling state of a card that has been answered at least once (no row = a new card)."""

    __tablename__ = "card_state"
    # The queue asks for "this user's cards in state X due before T": one range scan of this index.
    __table_args__ = (Index("ix_card_state_user_state_due", "user_name", "state", "due"),)
    user_name: str = Field(primary_key=True)  # schema 5: whose schedule (kb.config Settings.user_name)
    card_pk: int = Field(foreign_key="card.pk", primary_key=True)
    state: str  # learning | review | relearning
    due: datetime = Field(default=None, sa_column=Column(UTCDateTime(), nullable=False))
    lapses: int = 0
    reps: int = 0
    suspended: bool = False
    leech: bool = False
    data_json: str  # the full kb.scheduler.CardState


class ReviewLogRow(SQLModel, table=True):
    __tablename__ = "review_log"
    id: int | None = Field(default=None, primary_key=True)
    card_pk: int = Field(foreign_key="card.pk", index=True)
    rating: int
    reviewed_at: datetime = Field(default=None, sa_column=Column(UTCDateTime(), nullable=False, index=True))
    duration_ms: int | None = None
    content_hash: str
    was_new: bool = False  # the card's first answer: counts against the daily new-card limit
    state_before: str | None = None  # CardState JSON; null for a new card
    state_after: str | None = None
    # review: an answer in the daily quiz; custom: an answer in custom study (a real review that
    # does not count against today's limits); manual: a change made by hand (suspend, bury, flag,
    # reset, due date), rating 0, its envelopes hold the card and its marks before and after.
    kind: str = Field(default="review", sa_column_kwargs={"server_default": "review"})
    user_name: str = Field(index=True)  # schema 5: who answered (or changed the card by hand)


class CardMarkRow(SQLModel, table=True):
    """What the user set on a card by hand (schema 4); no row = no marks.

    A card may be new (no card_state row) and still be suspended, buried or flagged, so the marks
    live apart from the schedule. `card_state.suspended` stays the leech action's suspension; a
    card is suspended when either says so.
    """

    __tablename__ = "card_mark"
    user_name: str = Field(primary_key=True)  # schema 5: whose marks
    card_pk: int = Field(foreign_key="card.pk", primary_key=True)
    suspended: bool = False
    flag: int = 0  # 0 none, 1-7 as Anki's flags (red, orange, green, blue, pink, turquoise, purple)
    buried_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class SettingRow(SQLModel, table=True):
    """Small key/value settings the database owns, e.g. optimized FSRS parameters."""

    __tablename__ = "setting"
    user_name: str = Field(primary_key=True)  # schema 5: each user's own (optimized FSRS parameters)
    key: str = Field(primary_key=True)
    value_json: str


class SnippetRunRow(SQLModel, table=True):
    __tablename__ = "snippet_run"
    id: int | None = Field(default=None, primary_key=True)
    concept_id: str = Field(index=True)
    code_hash: str
    status: str
    device: str
    python_version: str | None = None
    torch_version: str | None = None
    numpy_version: str | None = None
    duration_s: float
    output: str = ""
    truncated: bool = False
    message: str | None = None
    line: int | None = None
    signal: str | None = None
    exit_code: int | None = None
    values_json: str = "{}"
    created_at: datetime = _ts()


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a model (SQLModel sets `__table__` at class creation; type checkers cannot see it)."""
    return model.__table__  # type: ignore[attr-defined]
