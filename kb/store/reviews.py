"""The quiz's persistence: today's queue, answers with their review log, undo, statistics.

Scheduling itself is pure (kb.scheduler): `record_answer` reads the card's state and writes the next
one inside a single BEGIN IMMEDIATE transaction, calling back into the pure code in between, so an
answer and its review-log row are stored together or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterator

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from kb.store.dialect import json_field, lock_card, run, unindexed, user_literal
from kb.store.engine import read
from kb.store.errors import StoreError, StoreWriteError, write_failure
from kb.store.tables import UTCDateTime

_TS = UTCDateTime()


def _run(conn, sql: str, params=()):
    """`run`, with the SQL literal of the connection's user (kb.store.dialect.user_literal) in place
    of every `:me`: reviews, schedules, marks and settings are each user's own (schema 5)."""
    return run(conn, sql.replace(":me", user_literal(conn)), params)


def _iso(value: datetime) -> str:
    """The stored text form of an aware datetime (lexicographic order is time order)."""
    return _TS.process_bind_param(value, None)


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True)
class QueueEntry:
    card_pk: int
    card_id: str
    concept_id: str
    kind: str
    state: str  # new | learning | relearning | review
    due: datetime | None


@dataclass(frozen=True)
class DayCounts:
    new_done: int
    reviews_done: int
    answered_concepts: frozenset[str]
    answered_cards: frozenset[int]


# A card is available when neither it nor its concept is retired, and a computed card only once
# its snippet has a passing run (its answer is the value that run produced).
_AVAILABLE = (
    "c.retired = FALSE AND k.retired = FALSE AND (c.kind != 'computed' OR EXISTS "
    "(SELECT 1 FROM snippet_run r WHERE r.concept_id = c.concept_id AND r.status = 'passed'))"
)


def day_counts(engine: Engine, *, day_start: datetime, day_end: datetime) -> DayCounts:
    """Today's answers. Only the daily quiz's count against its limits; a custom-study answer is a
    real review, so it buries its siblings as any answer does, but it takes no place in the limits."""
    with read(engine) as conn:
        rows = _run(
            conn,
            "SELECT r.card_pk, r.was_new, c.concept_id, r.kind FROM review_log r JOIN card c ON c.pk = r.card_pk "
            "WHERE r.reviewed_at >= ? AND r.reviewed_at < ? AND r.kind != 'manual' AND r.user_name = :me",
            (_iso(day_start), _iso(day_end)),
        ).all()
    daily = [(pk, was_new) for pk, was_new, _, kind in rows if kind == "review"]
    new_cards = {pk for pk, was_new in daily if was_new}
    return DayCounts(
        new_done=len(new_cards),
        reviews_done=len({pk for pk, was_new in daily if not was_new} - new_cards),
        answered_concepts=frozenset(concept for _, _, concept, _ in rows),
        answered_cards=frozenset(pk for pk, _, _, _ in rows),
    )


# Cards the user held back by hand: suspended, or buried until a moment still to come (one parameter: now).
_NOT_HELD = (
    "NOT EXISTS (SELECT 1 FROM card_mark m WHERE m.card_pk = c.pk AND m.user_name = :me AND (m.suspended = TRUE "
    "OR (m.buried_until IS NOT NULL AND m.buried_until > ?)))"
)

_HAND_SUSPENDED = "(SELECT card_pk FROM card_mark WHERE suspended = TRUE AND user_name = :me)"

# The orders new cards may come in (the `new_card_order` setting).
NEW_CARD_ORDERS = ("definition-first", "concept", "kind", "random")


def build_queue(
    engine: Engine,
    *,
    now: datetime,
    day_start: datetime,
    day_end: datetime,
    new_limit: int,
    review_limit: int,
    learn_ahead_s: int = 20 * 60,
    new_order: str = "definition-first",
    bury_new: bool = True,
    bury_reviews: bool = True,
) -> list[QueueEntry]:
    """Today's queue: learning cards due now, due reviews, new cards, then learning cards due soon.

    Burying: with `bury_reviews` a due review waits for tomorrow when a sibling (a card of the same
    concept) was answered today or comes earlier in today's queue; `bury_new` does the same for new
    cards. A card in a learning step is never buried. A new card waits until every prerequisite
    concept has had a card answered. `new_order` (NEW_CARD_ORDERS) decides which new cards come:
    definition-first alternates the next card of a concept already started with the first card of a
    concept not yet started; concept takes concepts in turn, all of one before the next; kind takes
    every concept's first card before any second card; random is a fixed shuffle (by card id).
    """
    from datetime import timedelta

    if new_order not in NEW_CARD_ORDERS:
        raise ValueError(f"new_order must be one of {NEW_CARD_ORDERS}, got {new_order!r}")
    counts = day_counts(engine, day_start=day_start, day_end=day_end)
    queue: list[QueueEntry] = []
    taken_concepts: set[str] = set()
    now_iso = _iso(now)
    with read(engine) as conn:
        learning_now: list[QueueEntry] = []
        learning_ahead: list[QueueEntry] = []
        for pk, card_id, concept, kind, state, due in _run(
            conn,
            "SELECT c.pk, c.card_id, c.concept_id, c.kind, s.state, s.due FROM card_state s "
            "JOIN card c ON c.pk = s.card_pk JOIN concept k ON k.id = c.concept_id "
            f"WHERE s.user_name = :me AND s.state IN ('learning', 'relearning') AND s.suspended = FALSE AND s.due <= ? "
            f"AND {_AVAILABLE} "
            f"AND {_NOT_HELD} ORDER BY s.due, c.pk",
            (_iso(now + timedelta(seconds=learn_ahead_s)), now_iso),
        ):
            # A card already in progress today keeps its steps; its siblings stay buried.
            entry = QueueEntry(pk, card_id, concept, kind, state, _dt(due))
            (learning_now if entry.due is not None and entry.due <= now else learning_ahead).append(entry)
            taken_concepts.add(concept)
        queue.extend(learning_now)

        def buried(concept: str, bury: bool) -> bool:
            return bury and (concept in taken_concepts or concept in counts.answered_concepts)

        budget = max(0, review_limit - counts.reviews_done)
        if budget:
            cursor = _run(
                conn,
                "SELECT c.pk, c.card_id, c.concept_id, c.kind, s.due FROM card_state s "
                "JOIN card c ON c.pk = s.card_pk JOIN concept k ON k.id = c.concept_id "
                f"WHERE s.user_name = :me AND s.state = 'review' AND s.suspended = FALSE AND s.due < ? AND {_AVAILABLE} "
                f"AND {_NOT_HELD} "
                "ORDER BY s.due, c.pk",
                (_iso(day_end), now_iso),
            )
            for pk, card_id, concept, kind, due in _iter(cursor):
                if buried(concept, bury_reviews):
                    continue  # a sibling: buried until tomorrow
                queue.append(QueueEntry(pk, card_id, concept, kind, "review", _dt(due)))
                taken_concepts.add(concept)
                budget -= 1
                if not budget:
                    break

        budget = max(0, new_limit - counts.new_done)
        if budget:
            ready: dict[str, bool] = {}  # prerequisite concept -> seen (or absent, so not blocking)

            def prerequisite_ready(concept_id: str) -> bool:
                if concept_id not in ready:
                    seen = _run(
                        conn,
                        "SELECT 1 FROM card c JOIN card_state s ON s.card_pk = c.pk AND s.user_name = :me "
                        "WHERE c.concept_id = ? LIMIT 1",
                        (concept_id,),
                    ).first()
                    exists = _run(conn, "SELECT 1 FROM concept WHERE id = ? AND retired = FALSE", (concept_id,)).first()
                    ready[concept_id] = bool(seen) or not exists
                return ready[concept_id]

            prereqs: dict[str, list[str]] = {}

            def accepted(row: tuple) -> bool:
                concept = row[2]
                if buried(concept, bury_new):
                    return False
                needed = prereqs.setdefault(concept, json.loads(row[4] or "[]"))
                return all(prerequisite_ready(p) for p in needed)  # else it waits for its prerequisites

            # The streams take turns, one accepted card each (definition-first has two streams); the
            # queue is built again after every answer, so the turns go on from today's count.
            streams = _new_streams(conn, new_order, now_iso)
            turn = counts.new_done
            while budget and streams:
                stream = streams[turn % len(streams)]
                row = next((row for row in stream if accepted(row)), None)
                if row is None:
                    streams.remove(stream)
                    continue
                pk, card_id, concept, kind, _ = row
                queue.append(QueueEntry(pk, card_id, concept, kind, "new", None))
                taken_concepts.add(concept)
                budget -= 1
                turn += 1
    # As in Anki, a learning step due within the learn-ahead window is shown early only when
    # nothing else is left (it comes last, not first).
    queue.extend(learning_ahead)
    return queue


_NEW = (
    "SELECT c.pk, c.card_id, c.concept_id, c.kind, k.prerequisites_json FROM card c "
    "JOIN concept k ON k.id = c.concept_id "
    "WHERE NOT EXISTS (SELECT 1 FROM card_state s WHERE s.card_pk = c.pk AND s.user_name = :me) "
    f"AND {_AVAILABLE} AND {_NOT_HELD} "
)
# definition-first: the order of kinds in a started concept (one of each kind not yet seen, the
# kinds that ask for recall first; then the rest in the deck's order).
_KIND_RANK = {
    "definition": 0,
    "cloze": 1,
    "typed": 2,
    "choice": 3,
    "computed": 4,
    "basic": 5,
    "formula": 6,
    "reverse": 7,
}
_SEEN_KIND = 100  # the rank of a card whose kind its concept has already shown
# New cards are read in windows of the deck's order: the queue needs a few, and ranking every new
# card of 100,000 at each answer costs more than the quiz's budget (a window of 1,000 reads in a
# few milliseconds). The ranking holds within a window.
NEW_CARD_WINDOW = 1000


class _DefinitionFirst:
    """Two streams over the new cards, read window by window in the deck's order: the cards of
    concepts already started (ranked: a kind not yet seen first, the recall kinds first) and the
    first card of each concept not yet started."""

    def __init__(self, conn, now_iso: str) -> None:
        self.conn = conn
        self.rows = _iter(_run(conn, _NEW + "ORDER BY c.order_key", (now_iso,)))
        self.started: list[tuple] = []
        self.fresh: list[tuple] = []
        self.exhausted = False
        self.last_fresh_concept: str | None = None

    def _load(self) -> None:
        window = [row for _, row in zip(range(NEW_CARD_WINDOW), self.rows)]
        if len(window) < NEW_CARD_WINDOW:
            self.exhausted = True
        concepts = sorted({row[2] for row in window})
        seen: dict[str, set[str]] = {}
        for start in range(0, len(concepts), 500):
            part = concepts[start : start + 500]
            for concept, kind in _run(
                self.conn,
                "SELECT DISTINCT c.concept_id, c.kind FROM card c JOIN card_state s ON s.card_pk = c.pk AND s.user_name = :me "
                f"WHERE c.concept_id IN ({','.join('?' * len(part))})",
                tuple(part),
            ):
                seen.setdefault(concept, set()).add(kind)
        ranked = []
        for position, row in enumerate(window):
            kinds = seen.get(row[2])
            if kinds is None:  # not started: only its first card, the rest wait until it is
                if row[2] != self.last_fresh_concept:
                    self.last_fresh_concept = row[2]
                    self.fresh.append(row)
            else:
                rank = _SEEN_KIND if row[3] in kinds else _KIND_RANK.get(row[3], len(_KIND_RANK))
                ranked.append((rank, position, row))
        self.started.extend(row for *_, row in sorted(ranked))

    def stream(self, rows: list[tuple]) -> Iterator[tuple]:
        while True:
            if rows:
                yield rows.pop(0)
            elif self.exhausted:
                return
            else:
                self._load()


def _new_streams(conn, order: str, now_iso: str) -> list[Iterator[tuple]]:
    """New cards in the order `order` introduces them, as streams that take turns (read lazily: the
    queue stops at its limit)."""
    if order == "concept":
        return [_iter(_run(conn, _NEW + "ORDER BY c.order_key", (now_iso,)))]
    if order == "kind":
        return [_iter(_run(conn, _NEW + "ORDER BY c.position, c.order_key", (now_iso,)))]
    if order == "random":
        import hashlib

        rows = _run(conn, _NEW, (now_iso,)).all()
        return [iter(sorted(rows, key=lambda row: hashlib.blake2b(row[1].encode(), digest_size=8).digest()))]
    # definition-first: the next card of a concept already started, then the first card of a
    # concept not yet started, in turn. Started concepts show a card of each kind not yet seen
    # before a second card of any kind, the kinds that test recall first: every started concept
    # gets its first cloze before any gets its formulas.
    both = _DefinitionFirst(conn, now_iso)
    return [both.stream(both.started), both.stream(both.fresh)]


def _iter(cursor, size: int = 256) -> Iterator[tuple]:
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield from rows


@dataclass(frozen=True)
class StoredCard:
    card_pk: int
    card_id: str
    concept_id: str
    kind: str
    payload: dict
    content_hash: str
    state: dict | None  # the stored CardState dict, None for a new card
    suspended: bool
    leech: bool


def get_card(engine: Engine, card_id: str) -> StoredCard | None:
    with read(engine) as conn:
        row = _run(
            conn,
            "SELECT c.pk, c.card_id, c.concept_id, c.kind, c.payload_json, c.content_hash, s.data_json, "
            "s.suspended, s.leech FROM card c LEFT JOIN card_state s ON s.card_pk = c.pk AND s.user_name = :me "
            "WHERE c.card_id = ?",
            (card_id,),
        ).first()
    if row is None:
        return None
    return StoredCard(
        row[0],
        row[1],
        row[2],
        row[3],
        json.loads(row[4]),
        row[5],
        json.loads(row[6]) if row[6] else None,
        bool(row[7]),
        bool(row[8]),
    )


@dataclass(frozen=True)
class NextState:
    """What the pure scheduler decided: the CardState dict and the columns the queue queries."""

    data: dict
    state: str
    due: datetime
    lapses: int
    reps: int
    leech: bool  # this answer makes the card a leech (the lapse that reaches the threshold, and so on)
    suspend_leech: bool = True  # ... and a leech is suspended (else only marked)


# BEGIN IMMEDIATE waits up to the busy timeout (5 s) for another writer (a second kb, a long
# sync); an answer is worth waiting longer for, so it is tried this many more times.
LOCK_RETRIES = 2


def _is_locked(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlite_errorcode", None) in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED


def record_answer(
    engine: Engine,
    card_id: str,
    *,
    rating: int,
    now: datetime,
    duration_ms: int | None,
    decide: Callable[[dict | None], NextState],
    kind: str = "review",
) -> int:
    """Store one answer and the card's next state atomically; returns the review-log id.

    `kind` is "review" (the daily quiz) or "custom" (custom study: not counted in today's limits).

    When another writer holds the database for longer than the busy timeout, the transaction
    (which wrote nothing) is tried again, LOCK_RETRIES times, before a clear "busy" error.
    """
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return _record_answer(
                engine, card_id, rating=rating, now=now, duration_ms=duration_ms, decide=decide, kind=kind
            )
        except StoreWriteError as exc:  # a full disk, an I/O error, a read-only file: the transaction rolled back
            better = exc.orig and write_failure(
                exc.path, exc.orig, outcome="the answer was not stored (earlier answers are kept)"
            )
            raise (better or exc) from exc.orig
        except OperationalError as exc:
            if not _is_locked(exc):
                raise
            if attempt == LOCK_RETRIES:
                raise StoreError(
                    "the database is busy: another kb has held it for too long; the answer was not stored, answer again"
                ) from exc
    raise AssertionError("unreachable")


def _put_card_state(conn, card_pk: int, values: tuple) -> None:
    """Write a card's schedule, new or not; values: (state, due, lapses, reps, suspended, leech, data_json)."""
    _run(
        conn,
        "INSERT INTO card_state (state, due, lapses, reps, suspended, leech, data_json, card_pk, user_name) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, :me) ON CONFLICT(user_name, card_pk) DO UPDATE SET state = excluded.state, "
        "due = excluded.due, lapses = excluded.lapses, reps = excluded.reps, suspended = excluded.suspended, "
        "leech = excluded.leech, data_json = excluded.data_json",
        (*values, card_pk),
    )


def _log(
    conn,
    card_pk: int,
    *,
    rating: int,
    now: datetime,
    duration_ms: int | None,
    content_hash: str,
    was_new: bool,
    before: str | None,
    after: str,
    kind: str,
) -> int:
    """One row of the review log; returns its id."""
    cursor = _run(
        conn,
        "INSERT INTO review_log (card_pk, rating, reviewed_at, duration_ms, content_hash, was_new, "
        "state_before, state_after, kind, user_name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, :me) RETURNING id",
        (card_pk, rating, _iso(now), duration_ms, content_hash, was_new, before, after, kind),
    )
    return cursor.scalar_one()


def _record_answer(
    engine: Engine,
    card_id: str,
    *,
    rating: int,
    now: datetime,
    duration_ms: int | None,
    decide: Callable[[dict | None], NextState],
    kind: str,
) -> int:
    if kind not in ("review", "custom"):
        raise ValueError(f"an answer's kind is review or custom, got {kind!r}")
    with engine.begin() as conn:
        row = _run(
            conn,
            "SELECT c.pk, c.content_hash, s.data_json, s.suspended, s.leech FROM card c "
            f"LEFT JOIN card_state s ON s.card_pk = c.pk AND s.user_name = :me WHERE c.card_id = ?{lock_card(conn)}",
            (card_id,),
        ).first()
        if row is None:
            raise KeyError(card_id)
        pk, content_hash, before_json, suspended, leech = row
        before = json.loads(before_json) if before_json else None
        nxt = decide(before)
        values = (
            nxt.state,
            _iso(nxt.due),
            nxt.lapses,
            nxt.reps,
            bool(suspended) or (nxt.leech and nxt.suspend_leech),
            bool(leech) or nxt.leech,
            json.dumps(nxt.data),
        )
        _put_card_state(conn, pk, values)
        envelope_before = (
            None if before is None else json.dumps({"card": before, "suspended": bool(suspended), "leech": bool(leech)})
        )
        envelope_after = json.dumps({"card": nxt.data, "suspended": values[4], "leech": values[5]})
        return _log(
            conn,
            pk,
            rating=rating,
            now=now,
            duration_ms=duration_ms,
            content_hash=content_hash,
            was_new=before is None,
            before=envelope_before,
            after=envelope_after,
            kind=kind,
        )


def undo_review(engine: Engine, review_id: int) -> str | None:
    """Take back one row of the review log (an answer or a change by hand): the card's state (and,
    for a change by hand, its marks) before it return exactly; the row goes.

    Only the newest row of its card can be taken back (a later one was decided from it);
    returns the card id, or None when the row is gone or no longer its card's newest.
    """
    with engine.begin() as conn:
        return _undo_row(conn, review_id)


def _undo_row(conn, review_id: int) -> str | None:
    row = _run(
        conn,
        "SELECT r.id, r.card_pk, r.state_before, c.card_id, r.kind FROM review_log r "
        "JOIN card c ON c.pk = r.card_pk WHERE r.id = ? AND r.user_name = :me",
        (review_id,),
    ).first()
    if row is None:
        return None
    review_id, pk, before_json, card_id, kind = row
    if _run(
        conn, "SELECT 1 FROM review_log WHERE card_pk = ? AND id > ? AND user_name = :me LIMIT 1", (pk, review_id)
    ).first():
        return None
    before = json.loads(before_json) if before_json else None
    _restore_state(conn, pk, before)
    if kind == "manual" and before is not None:
        _write_marks(conn, pk, Marks.from_dict(before.get("marks") or {}))
    _run(conn, "DELETE FROM review_log WHERE id = ?", (review_id,))
    return card_id


def _restore_state(conn, pk: int, envelope: dict | None) -> None:
    """Put back the schedule an envelope recorded (no card in it: the card is new)."""
    card = None if envelope is None else envelope.get("card")
    if card is None:
        _run(conn, "DELETE FROM card_state WHERE card_pk = ? AND user_name = :me", (pk,))
        return
    assert envelope is not None
    values = (
        card["state"],
        _iso(datetime.fromisoformat(card["due"])),
        card.get("lapses", 0),
        card.get("reps", 0),
        bool(envelope.get("suspended")),
        bool(envelope.get("leech")),
        json.dumps(card),
    )
    _put_card_state(conn, pk, values)


# --- changes by hand ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Marks:
    """What the user set on a card by hand."""

    suspended: bool = False
    flag: int = 0
    buried_until: datetime | None = None

    def to_dict(self) -> dict:
        until = None if self.buried_until is None else _iso(self.buried_until)
        return {"suspended": self.suspended, "flag": self.flag, "buried_until": until}

    @classmethod
    def from_dict(cls, data: dict) -> Marks:
        return cls(bool(data.get("suspended")), int(data.get("flag") or 0), _dt(data.get("buried_until")))


@dataclass(frozen=True)
class CardSnapshot:
    """A card as a change by hand sees it: its schedule (None: new), the leech marks, its marks."""

    card_id: str
    state: dict | None
    leech_suspended: bool
    leech: bool
    marks: Marks

    def envelope(self, action: str) -> dict:
        return {
            "action": action,
            "card": self.state,
            "suspended": self.leech_suspended,
            "leech": self.leech,
            "marks": self.marks.to_dict(),
        }


def _write_marks(conn, pk: int, marks: Marks) -> None:
    if marks == Marks():
        _run(conn, "DELETE FROM card_mark WHERE card_pk = ? AND user_name = :me", (pk,))
        return
    _run(
        conn,
        "INSERT INTO card_mark (card_pk, suspended, flag, buried_until, user_name) VALUES (?, ?, ?, ?, :me) "
        "ON CONFLICT(user_name, card_pk) DO UPDATE SET suspended = excluded.suspended, flag = excluded.flag, "
        "buried_until = excluded.buried_until",
        (pk, marks.suspended, marks.flag, None if marks.buried_until is None else _iso(marks.buried_until)),
    )


def change_cards(
    engine: Engine,
    card_ids: list[str],
    *,
    action: str,
    now: datetime,
    change: Callable[[CardSnapshot], CardSnapshot | None],
) -> list[int]:
    """Change cards by hand in one transaction: `change` gets each card as it is and returns it as it
    should be (None: leave it). Each change is a review-log row of kind "manual" (rating 0) whose
    envelopes hold the card before and after, so undo and the card's history see it. Returns the
    new rows' ids."""
    ids: list[int] = []
    with engine.begin() as conn:
        # The rows of one change share a label (undo takes them back together): one past the
        # newest row id, which no earlier change still in the log can carry.
        batch = _run(conn, "SELECT coalesce(max(id), 0) + 1 FROM review_log").scalar()
        for card_id in card_ids:
            row = _run(
                conn,
                "SELECT c.pk, c.content_hash, s.data_json, COALESCE(s.suspended, FALSE), COALESCE(s.leech, FALSE), "
                "m.suspended, m.flag, m.buried_until FROM card c "
                "LEFT JOIN card_state s ON s.card_pk = c.pk AND s.user_name = :me "
                f"LEFT JOIN card_mark m ON m.card_pk = c.pk AND m.user_name = :me WHERE c.card_id = ?{lock_card(conn)}",
                (card_id,),
            ).first()
            if row is None:
                raise KeyError(card_id)
            pk, content_hash, state_json, leech_suspended, leech, m_susp, m_flag, m_until = row
            marks = Marks(bool(m_susp), int(m_flag or 0), _dt(m_until)) if m_flag is not None else Marks()
            before = CardSnapshot(
                card_id, json.loads(state_json) if state_json else None, bool(leech_suspended), bool(leech), marks
            )
            after = change(before)
            if after is None or after == before:
                continue
            if after.state != before.state or (after.leech_suspended, after.leech) != (
                before.leech_suspended,
                before.leech,
            ):
                _restore_state(conn, pk, after.envelope(action))
            if after.marks != before.marks:
                _write_marks(conn, pk, after.marks)
            ids.append(
                _log(
                    conn,
                    pk,
                    rating=0,
                    now=now,
                    duration_ms=None,
                    content_hash=content_hash,
                    was_new=False,
                    before=json.dumps(before.envelope(action)),
                    after=json.dumps({**after.envelope(action), "batch": batch}),
                    kind="manual",
                )
            )
    return ids


def undo_last_change(engine: Engine) -> tuple[str, list[str], int]:
    """Take back the newest change by hand (every card it changed at that moment, in one transaction):
    (its action, the card ids taken back, how many could not be because a card was answered or
    changed since). Raises LookupError when there is none."""
    with engine.begin() as conn:
        batch_of = json_field(conn, "state_after", "batch")
        last = _run(
            conn,
            f"SELECT {batch_of} FROM review_log WHERE kind = 'manual' AND user_name = :me ORDER BY id DESC LIMIT 1",
        ).first()
        if last is None:
            raise LookupError("no change by hand to take back")
        rows = _run(
            conn,
            f"SELECT id, state_after FROM review_log WHERE kind = 'manual' AND user_name = :me AND {batch_of} = ? "
            "ORDER BY id DESC",
            (last[0],),
        ).all()
        action = json.loads(rows[0][1]).get("action", "change")
        undone = [card for card in (_undo_row(conn, review_id) for review_id, _ in rows) if card is not None]
        return action, sorted(undone), len(rows) - len(undone)


@dataclass(frozen=True)
class HistoryEntry:
    """One row of a card's history: an answer (rating 1-4) or a change by hand (rating 0)."""

    at: datetime
    kind: str  # review | custom | manual
    rating: int
    action: str | None  # a change by hand: suspend, bury, flag, reset, due, ...
    state_after: dict | None  # the CardState dict after it (None: the card is new)
    duration_ms: int | None


def card_history(engine: Engine, card_id: str) -> list[HistoryEntry]:
    """Every row of the review log for one card, oldest first."""
    with read(engine) as conn:
        rows = _run(
            conn,
            "SELECT r.reviewed_at, r.kind, r.rating, r.state_after, r.duration_ms FROM review_log r "
            "JOIN card c ON c.pk = r.card_pk WHERE c.card_id = ? AND r.user_name = :me ORDER BY r.id",
            (card_id,),
        ).all()
    out = []
    for at, kind, rating, after_json, duration in rows:
        after = json.loads(after_json) if after_json else {}
        out.append(
            HistoryEntry(datetime.fromisoformat(at), kind, rating, after.get("action"), after.get("card"), duration)
        )
    return out


def get_setting(engine: Engine, key: str):
    with read(engine) as conn:
        row = _run(conn, "SELECT value_json FROM setting WHERE key = ? AND user_name = :me", (key,)).first()
    return None if row is None else json.loads(row[0])


def set_setting(engine: Engine, key: str, value) -> None:
    with engine.begin() as conn:
        _run(
            conn,
            "INSERT INTO setting (key, value_json, user_name) VALUES (?, ?, :me) "
            "ON CONFLICT(user_name, key) DO UPDATE SET value_json = excluded.value_json",
            (key, json.dumps(value)),
        )


def review_times(engine: Engine, *, since: datetime) -> list[datetime]:
    """Times of the reviews since a moment, oldest first (for per-day charts)."""
    with read(engine) as conn:
        return [
            datetime.fromisoformat(r[0])
            for r in _run(
                conn,
                "SELECT reviewed_at FROM review_log WHERE reviewed_at >= ? AND kind != 'manual' AND user_name = :me "
                "ORDER BY reviewed_at",
                (_iso(since),),
            )
        ]


def review_history(engine: Engine) -> list[tuple[str, int, datetime, int | None]]:
    """(card_id, rating, reviewed_at, duration_ms) of every answer, oldest first (for the optimizer).

    A card reset by hand starts over: its answers before the newest reset are left out (they
    describe a memory the user chose to forget), as are the changes by hand themselves.
    """
    with read(engine) as conn:
        rows = _run(
            conn,
            "SELECT c.card_id, r.rating, r.reviewed_at, r.duration_ms, r.kind, "
            f"r.kind = 'manual' AND {json_field(conn, 'r.state_after', 'action')} = 'reset' "
            "FROM review_log r JOIN card c ON c.pk = r.card_pk WHERE r.user_name = :me ORDER BY r.id",
        ).all()
    last_reset = {card_id: i for i, (card_id, *_, reset) in enumerate(rows) if reset}
    return [
        (card_id, rating, datetime.fromisoformat(at), ms)
        for i, (card_id, rating, at, ms, kind, _) in enumerate(rows)
        if kind != "manual" and i > last_reset.get(card_id, -1)
    ]


def stats_rows(engine: Engine, *, since: datetime, horizon: datetime, day_start: datetime, day_end: datetime) -> dict:
    """Raw counts for `kb stats`; the service turns them into study-day figures."""
    with read(engine) as conn:

        def one(sql: str, *params):
            return _run(conn, sql, params).scalar()

        active = "FROM card c JOIN concept k ON k.id = c.concept_id WHERE c.retired = FALSE AND k.retired = FALSE"
        out = {
            "cards_total": one(f"SELECT count(*) {active}"),
            "cards_new": one(
                f"SELECT count(*) {active} AND NOT EXISTS (SELECT 1 FROM card_state s WHERE s.card_pk = c.pk "
                "AND s.user_name = :me)"
            ),
            "cards_learning": one(
                f"SELECT count(*) {active} AND c.pk IN (SELECT card_pk FROM card_state WHERE user_name = :me AND "
                f"state IN ('learning', 'relearning') AND suspended = FALSE) AND c.pk NOT IN {_HAND_SUSPENDED}"
            ),
            "cards_review": one(
                f"SELECT count(*) {active} AND c.pk IN (SELECT card_pk FROM card_state WHERE user_name = :me AND "
                f"state = 'review' AND suspended = FALSE) AND c.pk NOT IN {_HAND_SUSPENDED}"
            ),
            "cards_suspended": one(
                f"SELECT count(*) {active} AND (c.pk IN (SELECT card_pk FROM card_state WHERE suspended = TRUE "
                "AND user_name = :me) "
                f"OR c.pk IN {_HAND_SUSPENDED})"
            ),
            "reviews_total": one("SELECT count(*) FROM review_log WHERE kind != 'manual' AND user_name = :me"),
            "reviews_today": one(
                "SELECT count(*) FROM review_log WHERE reviewed_at >= ? AND reviewed_at < ? AND kind != 'manual' "
                "AND user_name = :me",
                _iso(day_start),
                _iso(day_end),
            ),
            "due_today": one(
                f"SELECT count(*) {active} AND c.pk IN (SELECT card_pk FROM card_state WHERE user_name = :me AND "
                f"suspended = FALSE AND due < ?) AND {_NOT_HELD}",
                _iso(day_end),
                _iso(day_start),
            ),
        }
        recalled, total = _run(
            conn,
            "SELECT sum(CASE WHEN rating > 1 THEN 1 ELSE 0 END), count(*) FROM review_log "
            f"WHERE reviewed_at >= ? AND kind != 'manual' AND user_name = :me AND {json_field(conn, 'state_before', 'card', 'state')} = 'review'",
            (_iso(since),),
        ).one()
        out["retention_30d"] = None if not total else recalled / total
        out["review_times"] = [
            datetime.fromisoformat(r[0])
            for r in _run(
                conn,
                "SELECT DISTINCT substr(reviewed_at, 1, 16) || ':00+00:00' FROM review_log WHERE kind != 'manual' "
                "AND user_name = :me "
                "ORDER BY 1",
            )
        ]
        out["due_times"] = [
            datetime.fromisoformat(r[0])
            for r in _run(
                conn,
                "SELECT s.due FROM card_state s JOIN card c ON c.pk = s.card_pk JOIN concept k ON k.id = c.concept_id "
                f"WHERE s.user_name = :me AND s.suspended = FALSE AND c.retired = FALSE AND k.retired = FALSE AND s.due < ? "
                f"AND {_NOT_HELD}",
                (_iso(horizon), _iso(day_start)),
            )
        ]
    return out


@dataclass(frozen=True)
class CardRecord:
    """Everything a card search or the card list needs about one active card."""

    card_pk: int
    card_id: str
    concept_id: str
    kind: str
    payload_json: str
    category: str
    deck_path: str
    concept_json: str
    state_json: str | None  # None: a new card
    suspended: bool  # by hand, or by the leech action
    leech: bool
    ratings: tuple[tuple[datetime, int], ...]  # (when, rating) of each answer, oldest first
    marks: Marks = Marks()
    order_key: str = ""


def card_records(
    engine: Engine, *, after: tuple[str, int] | None = None, limit: int | None = None, card_id: str | None = None
) -> list[CardRecord]:
    """Active cards (of active concepts) with their concept, state, marks and answers, in the order
    new cards are introduced; a page of `limit` cards after the (order_key, card_pk) `after`, or
    the one card `card_id`."""
    # The unary + keeps SQLite from starting at the `retired` indexes: walking the order_key index
    # reads a page of 80 cards of 100,000 in a fraction of a millisecond (a sort of all of them:
    # 35 ms); the page's start is a range seek on it.
    where = ""
    params: tuple = ()
    if card_id is not None:
        where += " AND c.card_id = ?"
        params, limit = (card_id,), 1
    elif after is not None:
        where += " AND c.order_key >= ? AND (c.order_key > ? OR c.pk > ?)"
        params = (after[0], after[0], after[1])
    page = f" LIMIT {int(limit)}" if limit is not None else ""
    with read(engine) as conn:
        where = f"{unindexed(conn, 'c.retired')} = FALSE AND {unindexed(conn, 'k.retired')} = FALSE" + where
        rows = _run(
            conn,
            "SELECT c.pk, c.card_id, c.concept_id, c.kind, c.payload_json, k.category, k.deck_path, k.data_json, "
            "s.data_json, COALESCE(s.suspended, FALSE), COALESCE(s.leech, FALSE), m.suspended, m.flag, m.buried_until, "
            "c.order_key FROM card c JOIN concept k ON k.id = c.concept_id "
            "LEFT JOIN card_state s ON s.card_pk = c.pk AND s.user_name = :me "
            "LEFT JOIN card_mark m ON m.card_pk = c.pk AND m.user_name = :me "
            f"WHERE {where} ORDER BY c.order_key, c.pk{page}",
            params,
        ).fetchall()
        history: dict[int, list[tuple[datetime, int]]] = {}
        answers = "SELECT card_pk, rating, reviewed_at FROM review_log WHERE kind != 'manual' AND user_name = :me"
        if limit is None:
            cursor = _run(conn, answers + " ORDER BY id")
        else:
            pks = [row[0] for row in rows] or [-1]
            cursor = _run(conn, answers + f" AND card_pk IN ({','.join('?' * len(pks))}) ORDER BY id", tuple(pks))
        for pk, rating, at in cursor:
            history.setdefault(pk, []).append((datetime.fromisoformat(at), rating))
    out = []
    for pk, card_id, concept, kind, payload, category, deck, concept_json, state, susp, leech, *mark, key in rows:
        marks = Marks(bool(mark[0]), int(mark[1] or 0), _dt(mark[2])) if mark[1] is not None else Marks()
        out.append(
            CardRecord(
                pk,
                card_id,
                concept,
                kind,
                payload,
                category,
                deck,
                concept_json,
                state,
                bool(susp) or marks.suspended,
                bool(leech),
                tuple(history.get(pk, ())),
                marks,
                key,
            )
        )
    return out
