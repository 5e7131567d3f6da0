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

from kb.store.engine import read
from kb.store.errors import StoreError, StoreWriteError, write_failure
from kb.store.tables import UTCDateTime

_TS = UTCDateTime()


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
    "c.retired = 0 AND k.retired = 0 AND (c.kind != 'computed' OR EXISTS "
    "(SELECT 1 FROM snippet_run r WHERE r.concept_id = c.concept_id AND r.status = 'passed'))"
)


def day_counts(engine: Engine, *, day_start: datetime, day_end: datetime) -> DayCounts:
    with read(engine) as conn:
        rows = conn.exec_driver_sql(
            "SELECT r.card_pk, r.was_new, c.concept_id FROM review_log r JOIN card c ON c.pk = r.card_pk "
            "WHERE r.reviewed_at >= ? AND r.reviewed_at < ?",
            (_iso(day_start), _iso(day_end)),
        ).all()
    new_cards = {pk for pk, was_new, _ in rows if was_new}
    return DayCounts(
        new_done=len(new_cards),
        reviews_done=len({pk for pk, was_new, _ in rows if not was_new} - new_cards),
        answered_concepts=frozenset(concept for _, _, concept in rows),
        answered_cards=frozenset(pk for pk, _, _ in rows),
    )


def build_queue(
    engine: Engine,
    *,
    now: datetime,
    day_start: datetime,
    day_end: datetime,
    new_limit: int,
    review_limit: int,
    learn_ahead_s: int = 20 * 60,
) -> list[QueueEntry]:
    """Today's queue: learning cards due now, due reviews, new cards, then learning cards due soon.

    Siblings (cards of one concept) are buried for the rest of the day once one of them was
    answered, and at most one new or review card per concept enters the queue. A new card waits
    until every prerequisite concept has had a card answered.
    """
    from datetime import timedelta

    counts = day_counts(engine, day_start=day_start, day_end=day_end)
    queue: list[QueueEntry] = []
    taken_concepts: set[str] = set()
    with read(engine) as conn:
        learning_now: list[QueueEntry] = []
        learning_ahead: list[QueueEntry] = []
        for pk, card_id, concept, kind, state, due in conn.exec_driver_sql(
            "SELECT c.pk, c.card_id, c.concept_id, c.kind, s.state, s.due FROM card_state s "
            "JOIN card c ON c.pk = s.card_pk JOIN concept k ON k.id = c.concept_id "
            f"WHERE s.state IN ('learning', 'relearning') AND s.suspended = 0 AND s.due <= ? AND {_AVAILABLE} "
            "ORDER BY s.due, c.pk",
            (_iso(now + timedelta(seconds=learn_ahead_s)),),
        ):
            # A card already in progress today keeps its steps; its siblings stay buried.
            entry = QueueEntry(pk, card_id, concept, kind, state, _dt(due))
            (learning_now if entry.due is not None and entry.due <= now else learning_ahead).append(entry)
            taken_concepts.add(concept)
        queue.extend(learning_now)

        budget = max(0, review_limit - counts.reviews_done)
        if budget:
            cursor = conn.exec_driver_sql(
                "SELECT c.pk, c.card_id, c.concept_id, c.kind, s.due FROM card_state s "
                "JOIN card c ON c.pk = s.card_pk JOIN concept k ON k.id = c.concept_id "
                f"WHERE s.state = 'review' AND s.suspended = 0 AND s.due < ? AND {_AVAILABLE} "
                "ORDER BY s.due, c.pk",
                (_iso(day_end),),
            )
            for pk, card_id, concept, kind, due in _iter(cursor):
                if concept in taken_concepts or concept in counts.answered_concepts:
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
                    seen = conn.exec_driver_sql(
                        "SELECT 1 FROM card c JOIN card_state s ON s.card_pk = c.pk WHERE c.concept_id = ? LIMIT 1",
                        (concept_id,),
                    ).first()
                    exists = conn.exec_driver_sql(
                        "SELECT 1 FROM concept WHERE id = ? AND retired = 0", (concept_id,)
                    ).first()
                    ready[concept_id] = bool(seen) or not exists
                return ready[concept_id]

            prereqs: dict[str, list[str]] = {}
            cursor = conn.exec_driver_sql(
                "SELECT c.pk, c.card_id, c.concept_id, c.kind, k.prerequisites_json FROM card c "
                "JOIN concept k ON k.id = c.concept_id "
                f"WHERE NOT EXISTS (SELECT 1 FROM card_state s WHERE s.card_pk = c.pk) AND {_AVAILABLE} "
                "ORDER BY c.order_key"
            )
            for pk, card_id, concept, kind, prereq_json in _iter(cursor):
                if concept in taken_concepts or concept in counts.answered_concepts:
                    continue
                needed = prereqs.setdefault(concept, json.loads(prereq_json or "[]"))
                if not all(prerequisite_ready(p) for p in needed):
                    continue  # waits until its prerequisites have been seen
                queue.append(QueueEntry(pk, card_id, concept, kind, "new", None))
                taken_concepts.add(concept)
                budget -= 1
                if not budget:
                    break
    # As in Anki, a learning step due within the learn-ahead window is shown early only when
    # nothing else is left (it comes last, not first).
    queue.extend(learning_ahead)
    return queue


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
        row = conn.exec_driver_sql(
            "SELECT c.pk, c.card_id, c.concept_id, c.kind, c.payload_json, c.content_hash, s.data_json, "
            "s.suspended, s.leech FROM card c LEFT JOIN card_state s ON s.card_pk = c.pk WHERE c.card_id = ?",
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
) -> int:
    """Store one answer and the card's next state atomically; returns the review-log id.

    When another writer holds the database for longer than the busy timeout, the transaction
    (which wrote nothing) is tried again, LOCK_RETRIES times, before a clear "busy" error.
    """
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return _record_answer(engine, card_id, rating=rating, now=now, duration_ms=duration_ms, decide=decide)
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


def _update_card_state(conn, card_pk: int, values: tuple) -> None:
    """values: (state, due, lapses, reps, suspended, leech, data_json), the order the INSERT uses too."""
    conn.exec_driver_sql(
        "UPDATE card_state SET state = ?, due = ?, lapses = ?, reps = ?, suspended = ?, leech = ?, "
        "data_json = ? WHERE card_pk = ?",
        (*values, card_pk),
    )


def _record_answer(
    engine: Engine,
    card_id: str,
    *,
    rating: int,
    now: datetime,
    duration_ms: int | None,
    decide: Callable[[dict | None], NextState],
) -> int:
    with engine.begin() as conn:
        row = conn.exec_driver_sql(
            "SELECT c.pk, c.content_hash, s.data_json, s.suspended, s.leech FROM card c "
            "LEFT JOIN card_state s ON s.card_pk = c.pk WHERE c.card_id = ?",
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
        if before is None:
            conn.exec_driver_sql(
                "INSERT INTO card_state (state, due, lapses, reps, suspended, leech, data_json, card_pk) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, pk),
            )
        else:
            _update_card_state(conn, pk, values)
        envelope_before = (
            None if before is None else json.dumps({"card": before, "suspended": bool(suspended), "leech": bool(leech)})
        )
        envelope_after = json.dumps({"card": nxt.data, "suspended": values[4], "leech": values[5]})
        cursor = conn.exec_driver_sql(
            "INSERT INTO review_log (card_pk, rating, reviewed_at, duration_ms, content_hash, was_new, "
            "state_before, state_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (pk, rating, _iso(now), duration_ms, content_hash, before is None, envelope_before, envelope_after),
        )
        return cursor.lastrowid


def undo_review(engine: Engine, review_id: int) -> str | None:
    """Take back one answer: the card's state before it returns exactly; the row goes.

    Only the newest answer of its card can be taken back (a later answer was decided from it);
    returns the card id, or None when the review is gone or no longer its card's newest.
    """
    with engine.begin() as conn:
        row = conn.exec_driver_sql(
            "SELECT r.id, r.card_pk, r.state_before, c.card_id FROM review_log r JOIN card c ON c.pk = r.card_pk "
            "WHERE r.id = ?",
            (review_id,),
        ).first()
        if row is None:
            return None
        review_id, pk, before_json, card_id = row
        if conn.exec_driver_sql(
            "SELECT 1 FROM review_log WHERE card_pk = ? AND id > ? LIMIT 1", (pk, review_id)
        ).first():
            return None
        if before_json is None:
            conn.exec_driver_sql("DELETE FROM card_state WHERE card_pk = ?", (pk,))
        else:
            before = json.loads(before_json)
            card = before["card"]
            due = _iso(datetime.fromisoformat(card["due"]))
            _update_card_state(
                conn,
                pk,
                (
                    card["state"],
                    due,
                    card.get("lapses", 0),
                    card.get("reps", 0),
                    before["suspended"],
                    before["leech"],
                    json.dumps(card),
                ),
            )
        conn.exec_driver_sql("DELETE FROM review_log WHERE id = ?", (review_id,))
        return card_id


def get_setting(engine: Engine, key: str):
    with read(engine) as conn:
        row = conn.exec_driver_sql("SELECT value_json FROM setting WHERE key = ?", (key,)).first()
    return None if row is None else json.loads(row[0])


def set_setting(engine: Engine, key: str, value) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO setting (key, value_json) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json",
            (key, json.dumps(value)),
        )


def review_times(engine: Engine, *, since: datetime) -> list[datetime]:
    """Times of the reviews since a moment, oldest first (for per-day charts)."""
    with read(engine) as conn:
        return [
            datetime.fromisoformat(r[0])
            for r in conn.exec_driver_sql(
                "SELECT reviewed_at FROM review_log WHERE reviewed_at >= ? ORDER BY reviewed_at", (_iso(since),)
            )
        ]


def review_history(engine: Engine) -> list[tuple[str, int, datetime, int | None]]:
    """(card_id, rating, reviewed_at, duration_ms) of every review, oldest first (for the optimizer)."""
    with read(engine) as conn:
        rows = conn.exec_driver_sql(
            "SELECT c.card_id, r.rating, r.reviewed_at, r.duration_ms FROM review_log r "
            "JOIN card c ON c.pk = r.card_pk ORDER BY r.id"
        ).all()
    return [(card_id, rating, datetime.fromisoformat(at), ms) for card_id, rating, at, ms in rows]


def stats_rows(engine: Engine, *, since: datetime, horizon: datetime, day_start: datetime, day_end: datetime) -> dict:
    """Raw counts for `kb stats`; the service turns them into study-day figures."""
    with read(engine) as conn:

        def one(sql: str, *params):
            return conn.exec_driver_sql(sql, params).scalar()

        active = "FROM card c JOIN concept k ON k.id = c.concept_id WHERE c.retired = 0 AND k.retired = 0"
        out = {
            "cards_total": one(f"SELECT count(*) {active}"),
            "cards_new": one(
                f"SELECT count(*) {active} AND NOT EXISTS (SELECT 1 FROM card_state s WHERE s.card_pk = c.pk)"
            ),
            "cards_learning": one(
                f"SELECT count(*) {active} AND c.pk IN (SELECT card_pk FROM card_state "
                "WHERE state IN ('learning', 'relearning') AND suspended = 0)"
            ),
            "cards_review": one(
                f"SELECT count(*) {active} AND c.pk IN (SELECT card_pk FROM card_state "
                "WHERE state = 'review' AND suspended = 0)"
            ),
            "cards_suspended": one(
                f"SELECT count(*) {active} AND c.pk IN (SELECT card_pk FROM card_state WHERE suspended = 1)"
            ),
            "reviews_total": one("SELECT count(*) FROM review_log"),
            "reviews_today": one(
                "SELECT count(*) FROM review_log WHERE reviewed_at >= ? AND reviewed_at < ?",
                _iso(day_start),
                _iso(day_end),
            ),
            "due_today": one(
                f"SELECT count(*) {active} AND c.pk IN (SELECT card_pk FROM card_state "
                "WHERE suspended = 0 AND due < ?)",
                _iso(day_end),
            ),
        }
        recalled, total = conn.exec_driver_sql(
            "SELECT sum(rating > 1), count(*) FROM review_log WHERE reviewed_at >= ? "
            "AND json_extract(state_before, '$.card.state') = 'review'",
            (_iso(since),),
        ).one()
        out["retention_30d"] = None if not total else recalled / total
        out["review_times"] = [
            datetime.fromisoformat(r[0])
            for r in conn.exec_driver_sql(
                "SELECT DISTINCT substr(reviewed_at, 1, 16) || ':00+00:00' FROM review_log ORDER BY 1"
            )
        ]
        out["due_times"] = [
            datetime.fromisoformat(r[0])
            for r in conn.exec_driver_sql(
                "SELECT s.due FROM card_state s JOIN card c ON c.pk = s.card_pk JOIN concept k ON k.id = c.concept_id "
                "WHERE s.suspended = 0 AND c.retired = 0 AND k.retired = 0 AND s.due < ?",
                (_iso(horizon),),
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
    suspended: bool
    leech: bool
    ratings: tuple[tuple[datetime, int], ...]  # (when, rating) of each review, oldest first


def card_records(engine: Engine) -> list[CardRecord]:
    """Every active card (of an active concept) with its concept, state and review history."""
    with read(engine) as conn:
        history: dict[int, list[tuple[datetime, int]]] = {}
        for pk, rating, at in conn.exec_driver_sql("SELECT card_pk, rating, reviewed_at FROM review_log ORDER BY id"):
            history.setdefault(pk, []).append((datetime.fromisoformat(at), rating))
        rows = conn.exec_driver_sql(
            "SELECT c.pk, c.card_id, c.concept_id, c.kind, c.payload_json, k.category, k.deck_path, k.data_json, "
            "s.data_json, COALESCE(s.suspended, 0), COALESCE(s.leech, 0) FROM card c "
            "JOIN concept k ON k.id = c.concept_id LEFT JOIN card_state s ON s.card_pk = c.pk "
            "WHERE c.retired = 0 AND k.retired = 0 ORDER BY c.order_key"
        ).fetchall()
    return [
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
            bool(susp),
            bool(leech),
            tuple(history.get(pk, ())),
        )
        for pk, card_id, concept, kind, payload, category, deck, concept_json, state, susp, leech in rows
    ]
