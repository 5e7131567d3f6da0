"""Sync: bring the database in line with the deck files, incrementally and in one transaction.

Stat every file; hash and parse only those whose size or mtime changed. A broken file is reported
and its last good concept stays. A concept that disappears is retired with its cards and history,
never deleted; `previous_ids` carries a renamed concept's cards (and so their reviews) to its new id.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Connection, Engine, delete, insert, select, text, update

from kb.config import Deck
from kb.loader import (
    LoadError,
    SyncReport,
    WalkProblem,
    duplicate_id_at,
    parse_file,
    reference_errors,
    walk_yaml,
)
from kb.quiz import derive_cards, payload_hash
from kb.schema import CATEGORIES, Concept, both_languages
from kb.store.cjk import with_cjk_grams
from kb.store.dialect import is_postgres, run
from kb.store.engine import read
from kb.store.tables import (
    CardRow,
    ConceptRow,
    DeckRow,
    ReviewLogRow,
    SnippetRunRow,
    SourceFileRow,
    UTCDateTime,
    table_of,
)
from kb.trust import executed_from_concept, trust_hash

_source = table_of(SourceFileRow)
_concept = table_of(ConceptRow)
_card = table_of(CardRow)
_deck = table_of(DeckRow)
_run = table_of(SnippetRunRow)
_review = table_of(ReviewLogRow)
# The concept columns a sync writes from a file (besides retired and the timestamps).
_CONCEPT_COLUMNS = (
    "id",
    "deck_path",
    "source_path",
    "category",
    "title_en",
    "title_zh",
    "data_json",
    "content_hash",
    "snippet_hash",
    "snippet_line_offset",
    "prerequisites_json",
)


class _Stored(NamedTuple):
    path: str
    mtime_ns: int
    size: int
    content_hash: str
    concept_id: str | None
    errors_json: str | None


def snippet_hash(concept: Concept) -> str | None:
    """The trust hash of everything the concept executes: its code and its computed expressions."""
    return trust_hash(executed_from_concept(concept))


def search_document(concept: Concept) -> dict:
    """The text indexed for full-text search, in English and Chinese."""
    body = [concept.summary.en, concept.summary.zh, concept.definition]
    if concept.definition_zh:
        body.append(concept.definition_zh)
    for formula in concept.formulas:
        body.extend(both_languages(formula.name))
    for pitfall in concept.pitfalls:
        body.extend(both_languages(pitfall))
    doc = {
        "id": concept.id,
        "title": f"{concept.title.en}\n{concept.title.zh}\n{concept.id}",
        "aliases": "\n".join(concept.aliases),
        "tags": " ".join(concept.tags),
        "body": "\n".join(body),
    }
    return doc


SearchIndexRow = tuple[str, str, str, str, str]  # a concept_fts or concept_words row: id, title, aliases, tags, body


class PreparedConcept(NamedTuple):
    """Everything the write needs of one valid concept, as plain values.

    Built where the file is parsed (a worker process on a first load), so the parent neither
    unpickles pydantic models nor serialises JSON: both cost more than the SQL inserts.
    """

    id: str
    previous_ids: tuple[str, ...]
    category: str
    title_en: str
    title_zh: str
    data_json: str
    snippet_hash: str | None
    prerequisites_json: str
    search_row: SearchIndexRow  # concept_fts
    words_row: SearchIndexRow  # concept_words: the same with CJK grams
    cards: tuple[tuple[str, str, str, str, str], ...]  # (key, kind, order_key, content_hash, payload_json)


@dataclass
class SyncItem:
    """One parsed file as sync sees it: its errors, and its concept prepared for writing (None if invalid)."""

    path: str
    content_hash: str
    errors: list[LoadError]
    references: list[tuple[str, str, int, int]]
    id_position: tuple[int, int]
    snippet_line_offset: int
    concept: PreparedConcept | None


def search_rows(concept: Concept) -> tuple[SearchIndexRow, SearchIndexRow]:
    """The concept's concept_fts row and its concept_words row (the same text with CJK grams)."""
    doc = search_document(concept)
    title, aliases, tags, body = (with_cjk_grams(doc[column]) for column in ("title", "aliases", "tags", "body"))
    return (doc["id"], doc["title"], doc["aliases"], doc["tags"], doc["body"]), (doc["id"], title, aliases, tags, body)


def prepare(concept: Concept) -> PreparedConcept:
    search_row, words_row = search_rows(concept)
    return PreparedConcept(
        id=concept.id,
        previous_ids=tuple(concept.previous_ids),
        category=concept.category,
        title_en=concept.title.en,
        title_zh=concept.title.zh,
        data_json=concept.model_dump_json(),
        snippet_hash=snippet_hash(concept),
        prerequisites_json=json.dumps(concept.prerequisites),
        search_row=search_row,
        words_row=words_row,
        cards=tuple(
            (card.key, card.kind, order_key(concept, position), payload_hash(payload), payload)
            for position, card in enumerate(derive_cards(concept))
            for payload in (card.payload_json,)  # serialised once: stored, and hashed
        ),
    )


def parse_for_sync(path: str) -> SyncItem:
    """Parse one file and prepare its concept (module level, so a worker process can run it)."""
    item = parse_file(Path(path))
    return SyncItem(
        path,
        item.content_hash,
        item.errors,
        item.references,
        item.id_position,
        item.snippet_line_offset,
        prepare(item.concept) if item.concept is not None else None,
    )


def _stat_files(decks: list[Deck], problems: list[WalkProblem]) -> dict[str, tuple[Deck, int, int]]:
    found: dict[str, tuple[Deck, int, int]] = {}
    for deck in decks:
        if not deck.path.is_dir():
            continue
        for key, st in walk_yaml(deck.path, problems):
            if key not in found:
                found[key] = (deck, st.st_mtime_ns, st.st_size)
    return found


def _under_any(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


# Below this many changed files, forking workers costs more than it saves.
PARALLEL_MIN_FILES = 400


def _parse_many(paths: list[str]) -> list[SyncItem]:
    """Parse and prepare files, on all cores when there are many (a first load): that is most of its cost."""
    workers = min(os.cpu_count() or 1, 8)
    # fork is cheap (no re-import) but only safe from a single-threaded process on Linux;
    # a TUI calling sync from a worker thread parses in-process instead.
    if len(paths) < PARALLEL_MIN_FILES or workers < 2 or sys.platform != "linux" or threading.active_count() > 1:
        return [parse_for_sync(p) for p in paths]
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        return list(pool.map(parse_for_sync, paths, chunksize=max(16, len(paths) // (workers * 8))))


def _stored_errors(errors_json: str | None) -> list[LoadError]:
    if not errors_json:
        return []
    return [LoadError(**e) for e in json.loads(errors_json)]


def _unreadable_folders(problems: list[WalkProblem]) -> list[str]:
    return [p.path for p in problems if p.unreadable]


def find_changes(
    on_disk: dict[str, tuple[Deck, int, int]], stored: dict[str, _Stored], problems: list[WalkProblem]
) -> tuple[list[str], list[str]]:
    """(files to parse: new, or their size or mtime moved; files gone from disk)."""
    changed = [
        p
        for p, (_, mtime, size) in on_disk.items()
        if p not in stored or stored[p].mtime_ns != mtime or stored[p].size != size
    ]
    # A file in a folder that could not be listed is not gone: its concept stays as it was.
    unreadable = _unreadable_folders(problems)
    deleted = [p for p in stored if p not in on_disk and not _under_any(p, unreadable)]
    return changed, deleted


@dataclass
class FileLoad:
    """One changed file as the write will store it: its source row, and its concept unless it is invalid."""

    path: str
    deck_path: str
    mtime_ns: int
    size: int
    content_hash: str
    snippet_line_offset: int
    errors: list[LoadError]
    concept: PreparedConcept | None
    has_source_row: bool  # the file was synced before: update its source_file row
    has_concept_row: bool  # the id has a concept row already: update it (else insert it)
    may_have_cards: bool  # an existing or renamed-to id: its cards are matched by key, not inserted in bulk


@dataclass
class SyncPlan:
    """Everything one sync will write and report, decided before any SQL runs."""

    new_decks: list[Deck] = field(default_factory=list)
    restat: list[tuple[str, int, int]] = field(default_factory=list)  # (path, mtime_ns, size): same bytes
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old id, new id)
    loads: list[FileLoad] = field(default_factory=list)  # in path order
    deleted: list[str] = field(default_factory=list)  # files gone from disk: their source rows go
    retired: list[str] = field(default_factory=list)  # ids that no file defines any more
    errors: list[LoadError] = field(default_factory=list)
    unchanged: int = 0
    files_parsed: int = 0

    def report(self) -> SyncReport:
        return SyncReport(
            added=[load.concept.id for load in self.loads if load.concept is not None and not load.has_concept_row],
            updated=[load.concept.id for load in self.loads if load.concept is not None and load.has_concept_row],
            retired=list(self.retired),
            renamed=list(self.renamed),
            unchanged=self.unchanged,
            files_parsed=self.files_parsed,
            errors=list(self.errors),
        )


def plan_unchanged(
    on_disk: dict[str, tuple[Deck, int, int]], stored: dict[str, _Stored], problems: list[WalkProblem]
) -> SyncPlan:
    """Nothing to write: the errors stored for every file, and those of the walk, still stand."""
    errors = [p.as_error() for p in problems]
    for row in stored.values():
        errors.extend(_stored_errors(row.errors_json))
    return SyncPlan(errors=sorted(errors), unchanged=len(on_disk))


def plan_sync(
    decks: list[Deck],
    on_disk: dict[str, tuple[Deck, int, int]],
    problems: list[WalkProblem],
    parsed: dict[str, SyncItem],
    *,
    stored: dict[str, _Stored],
    concept_retired: dict[str, bool],
    known_decks: set[str],
    unparsed_id_positions: dict[str, tuple[int, int]],
) -> SyncPlan:
    """Decide what a sync writes and reports, from plain values (no SQL): which files load, which
    concepts are added, updated, renamed or retired, and every error to report.

    `parsed` holds every changed file; `stored` the source_file rows; `concept_retired` the
    concept rows (id: retired); `unparsed_id_positions` where an unparsed file puts its `id:`,
    for those whose id a parsed file claims too (a duplicate id names both places).
    """
    _, deleted = find_changes(on_disk, stored, problems)
    unreadable = _unreadable_folders(problems)
    plan = SyncPlan(files_parsed=len(parsed), deleted=deleted)
    plan.new_decks = [deck for deck in decks if str(deck.path) not in known_decks]
    reload: dict[str, SyncItem] = {}
    for path, item in parsed.items():
        old = stored.get(path)
        if (
            old is not None
            and old.content_hash == item.content_hash
            and not old.errors_json
            and item.concept is not None
        ):
            _, mtime, size = on_disk[path]
            plan.restat.append((path, mtime, size))  # same bytes, new mtime: nothing to reload
        else:
            reload[path] = item
    unchanged_paths = [p for p in on_disk if p not in reload]
    unchanged_paths += [p for p in stored if p not in on_disk and _under_any(p, unreadable)]
    plan.unchanged = len(on_disk) - len(reload)

    # Who owns which id after this sync: unchanged files keep theirs; reloaded ones claim theirs in path order.
    owner: dict[str, str] = {}
    for path in unchanged_paths:
        row = stored.get(path)
        if row is not None and row.concept_id:
            owner[row.concept_id] = path
    concepts: dict[str, PreparedConcept | None] = {}
    errors: dict[str, list[LoadError]] = {}
    for path in sorted(reload):
        item = reload[path]
        concepts[path], errors[path] = item.concept, list(item.errors)
        if item.concept is None:
            continue
        other = owner.setdefault(item.concept.id, path)
        if other != path:
            other_item = parsed.get(other)
            other_position = (
                other_item.id_position if other_item is not None else unparsed_id_positions.get(other, (1, 1))
            )
            errors[path].append(duplicate_id_at(path, item.id_position, item.concept.id, other, other_position))
            concepts[path] = None
    active_ids = set(owner)
    for path, concept in concepts.items():
        if concept is not None:
            # A dangling reference is reported, but the concept still loads (no cascade of
            # breakage when a referenced concept is deleted).
            errors[path].extend(reference_errors(path, reload[path].references, concept.id, active_ids))

    # The concept rows (id: retired) as the renames leave them: a renamed id's row goes, its cards move.
    rows = dict(concept_retired)
    for concept in concepts.values():
        if concept is None:
            continue
        for old_id in concept.previous_ids:
            if old_id in rows and old_id not in active_ids:
                plan.renamed.append((old_id, concept.id))
                del rows[old_id]
    renamed_to = {new for _, new in plan.renamed}

    for path, concept in concepts.items():
        item = reload[path]
        deck, mtime, size = on_disk[path]
        plan.loads.append(
            FileLoad(
                path,
                str(deck.path),
                mtime,
                size,
                item.content_hash,
                item.snippet_line_offset,
                errors[path],
                concept,
                has_source_row=path in stored,
                has_concept_row=concept is not None and concept.id in rows,
                may_have_cards=concept is not None and (concept.id in rows or concept.id in renamed_to),
            )
        )
        plan.errors.extend(errors[path])
        previous_id = stored[path].concept_id if path in stored else None
        # The file now defines another id: the one it defined goes unless another file defines it.
        if concept is not None and previous_id in rows and previous_id not in active_ids:
            plan.retired.append(previous_id)
    for path in deleted:
        gone_id = stored[path].concept_id
        if gone_id in rows and gone_id not in active_ids and not rows[gone_id]:
            plan.retired.append(gone_id)

    plan.errors.extend(p.as_error() for p in problems)
    for path in unchanged_paths:
        row = stored.get(path)
        if row is not None:
            plan.errors.extend(_stored_errors(row.errors_json))
    plan.errors.sort()
    return plan


def _unparsed_id_positions(
    parsed: dict[str, SyncItem], stored: dict[str, _Stored], on_disk: dict[str, tuple[Deck, int, int]]
) -> dict[str, tuple[int, int]]:
    """Where each unchanged file whose id a changed file claims too declares that id.

    The database keeps no positions, so such a file (rare: a duplicate id) is parsed again.
    """
    claimed = {item.concept.id for item in parsed.values() if item.concept is not None}
    return {
        path: parse_file(Path(path)).id_position
        for path, row in stored.items()
        if row.concept_id in claimed and path not in parsed and path in on_disk
    }


def sync_decks(engine: Engine, decks: list[Deck], *, now: datetime) -> SyncReport:
    """Bring the database in line with the decks on disk: stat, parse what changed, plan, write."""
    problems: list[WalkProblem] = []
    on_disk = _stat_files(decks, problems)
    with read(engine) as conn:
        # Raw tuples: on a no-op sync this query and the stats are all the work there is.
        stored = {
            row[0]: _Stored(*row)
            for row in run(
                conn, "SELECT path, mtime_ns, size, content_hash, concept_id, errors_json FROM source_file"
            ).fetchall()  # one call, not one fetchone per row
        }
    if engine.dialect.name != "sqlite":
        # A shared server holds the files of other people's decks (another KB_HOME's notes, another
        # machine's folders): this sync answers only for the decks it reads, and leaves theirs be.
        mine = [str(deck.path) for deck in decks]
        stored = {path: row for path, row in stored.items() if _under_any(path, mine)}
    changed, deleted = find_changes(on_disk, stored, problems)
    if not changed and not deleted:
        return plan_unchanged(on_disk, stored, problems).report()

    # Parse what changed (outside the write transaction: parsing is the slow part).
    started = time.perf_counter()
    parsed = dict(zip(changed, _parse_many(changed)))
    parse_seconds = time.perf_counter() - started
    with read(engine) as conn:
        concept_retired = {r.id: r.retired for r in conn.execute(select(_concept.c.id, _concept.c.retired))}
        known_decks = {r.path for r in conn.execute(select(_deck.c.path))}
    plan = plan_sync(
        decks,
        on_disk,
        problems,
        parsed,
        stored=stored,
        concept_retired=concept_retired,
        known_decks=known_decks,
        unparsed_id_positions=_unparsed_id_positions(parsed, stored, on_disk),
    )

    started = time.perf_counter()
    with engine.begin() as conn:
        apply_sync(conn, plan, now=now)
    report = plan.report()
    report.seconds = {"parse": parse_seconds, "write": time.perf_counter() - started}
    return report


def apply_sync(conn: Connection, plan: SyncPlan, *, now: datetime) -> None:
    """Write a plan in the caller's transaction."""
    for deck in plan.new_decks:
        conn.execute(insert(_deck).values(path=str(deck.path), name=deck.name, trusted=deck.trusted))
    for path, mtime, size in plan.restat:
        conn.execute(update(_source).where(_source.c.path == path).values(mtime_ns=mtime, size=size))
    # Renames first, so the old id's cards move instead of being retired.
    for old_id, new_id in plan.renamed:
        _rename_concept(conn, old_id, new_id, now=now)

    # Bulk inserts go to the driver as tuples: SQLAlchemy's per-row parameter processing cost
    # more than SQLite's own work on a first load of 10,000 files.
    stamp_text = UTCDateTime().process_bind_param(now, None)
    new_rows: list[tuple] = []
    fts_rows: list[SearchIndexRow] = []
    words_rows: list[SearchIndexRow] = []
    source_inserts: list[tuple] = []
    card_inserts: list[tuple] = []
    for load in plan.loads:
        concept = load.concept
        errors_json = json.dumps([e.to_dict() for e in load.errors]) if load.errors else None
        if load.has_source_row:
            values = {
                "deck_path": load.deck_path,
                "mtime_ns": load.mtime_ns,
                "size": load.size,
                "content_hash": load.content_hash,
                "errors_json": errors_json,
            }
            if concept is not None:  # an invalid file keeps its last good concept
                values["concept_id"] = concept.id
            conn.execute(update(_source).where(_source.c.path == load.path).values(**values))
        else:
            source_inserts.append(
                (
                    load.path,
                    load.deck_path,
                    load.mtime_ns,
                    load.size,
                    load.content_hash,
                    concept.id if concept else None,
                    errors_json,
                )
            )
        if concept is None:
            continue
        row = (
            concept.id,
            load.deck_path,
            load.path,
            concept.category,
            concept.title_en,
            concept.title_zh,
            concept.data_json,
            load.content_hash,
            concept.snippet_hash,
            load.snippet_line_offset,
            concept.prerequisites_json,
        )
        if load.has_concept_row:
            conn.execute(
                update(_concept)
                .where(_concept.c.id == concept.id)
                .values(**dict(zip(_CONCEPT_COLUMNS, row)), retired=False, updated_at=now)
            )
            _delete_search(conn, concept.id)
        else:
            new_rows.append((*row, False, stamp_text, stamp_text))
        fts_rows.append(concept.search_row)
        words_rows.append(concept.words_row)
        if load.may_have_cards:
            _sync_cards(conn, concept, now=now)
        else:
            card_inserts.extend(
                (
                    f"{concept.id}/{key}",
                    concept.id,
                    key,
                    kind,
                    position,
                    order,
                    content_hash,
                    payload,
                    False,
                    stamp_text,
                    stamp_text,
                )
                for position, (key, kind, order, content_hash, payload) in enumerate(concept.cards)
            )
    if source_inserts:
        run(
            conn,
            "INSERT INTO source_file (path, deck_path, mtime_ns, size, content_hash, concept_id, errors_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            source_inserts,
        )
    if new_rows:
        columns = ", ".join((*_CONCEPT_COLUMNS, "retired", "created_at", "updated_at"))
        run(conn, f"INSERT INTO concept ({columns}) VALUES ({', '.join('?' * 14)})", new_rows)
    if card_inserts:
        run(
            conn,
            "INSERT INTO card (card_id, concept_id, key, kind, position, order_key, content_hash, payload_json, "
            "retired, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            card_inserts,
        )
    if fts_rows:
        run(conn, "INSERT INTO concept_fts (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)", fts_rows)
        if not is_postgres(conn):  # PostgreSQL's trigram search needs no word index (kb/store/queries.py)
            run(conn, "INSERT INTO concept_words (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)", words_rows)
    for path in plan.deleted:
        conn.execute(delete(_source).where(_source.c.path == path))
    for concept_id in plan.retired:
        _retire_concept(conn, concept_id, now=now)


def _delete_search(conn, concept_id: str) -> None:
    conn.execute(text("DELETE FROM concept_fts WHERE id = :id"), {"id": concept_id})
    if not is_postgres(conn):
        conn.execute(text("DELETE FROM concept_words WHERE id = :id"), {"id": concept_id})


def order_key(concept: Concept, position: int) -> str:
    """New cards come category by category (the order of CATEGORIES), concept by concept."""
    return f"{CATEGORIES.index(concept.category):02d}/{concept.id}/{position:04d}"


def _sync_cards(conn, concept: PreparedConcept, *, now: datetime) -> None:
    """Upsert a concept's cards by key: same key, same card (and history); vanished keys retire."""
    existing = {
        r.key: r
        for r in conn.execute(
            select(
                _card.c.pk, _card.c.key, _card.c.content_hash, _card.c.retired, _card.c.position, _card.c.order_key
            ).where(_card.c.concept_id == concept.id)
        )
    }
    seen = set()
    inserts = []
    for position, (key, kind, order, content_hash, payload) in enumerate(concept.cards):
        seen.add(key)
        old = existing.get(key)
        if old is None:
            inserts.append(
                {
                    "card_id": f"{concept.id}/{key}",
                    "concept_id": concept.id,
                    "key": key,
                    "kind": kind,
                    "position": position,
                    "order_key": order,
                    "content_hash": content_hash,
                    "payload_json": payload,
                    "retired": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        elif old.content_hash != content_hash or old.retired or old.position != position or old.order_key != order:
            conn.execute(
                update(_card)
                .where(_card.c.pk == old.pk)
                .values(
                    kind=kind,
                    position=position,
                    order_key=order,
                    content_hash=content_hash,
                    payload_json=payload,
                    retired=False,
                    updated_at=now,
                )
            )
    if inserts:
        conn.execute(insert(_card), inserts)
    gone = [r.pk for key, r in existing.items() if key not in seen and not r.retired]
    if gone:
        conn.execute(update(_card).where(_card.c.pk.in_(gone)).values(retired=True, updated_at=now))


def _retire_concept(conn, concept_id: str, *, now: datetime) -> None:
    conn.execute(update(_concept).where(_concept.c.id == concept_id).values(retired=True, updated_at=now))
    conn.execute(update(_card).where(_card.c.concept_id == concept_id).values(retired=True, updated_at=now))
    _delete_search(conn, concept_id)


def _rename_concept(conn, old_id: str, new_id: str, *, now: datetime) -> None:
    """Move old_id's cards and runs to new_id; the old concept row goes (its history moved)."""
    taken = {r.key: r.pk for r in conn.execute(select(_card.c.key, _card.c.pk).where(_card.c.concept_id == new_id))}
    for r in conn.execute(select(_card.c.pk, _card.c.key).where(_card.c.concept_id == old_id)).all():
        if r.key in taken:
            # new_id already has this card (an earlier sync made it): its reviews join that card.
            conn.execute(update(_review).where(_review.c.card_pk == r.pk).values(card_pk=taken[r.key]))
            conn.execute(update(_card).where(_card.c.pk == r.pk).values(retired=True, updated_at=now))
        else:
            conn.execute(
                update(_card)
                .where(_card.c.pk == r.pk)
                .values(card_id=f"{new_id}/{r.key}", concept_id=new_id, updated_at=now)
            )
    conn.execute(update(_run).where(_run.c.concept_id == old_id).values(concept_id=new_id))
    conn.execute(delete(_concept).where(_concept.c.id == old_id))
    _delete_search(conn, old_id)
