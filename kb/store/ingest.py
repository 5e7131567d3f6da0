"""Sync: bring the database in line with the deck files, incrementally and in one transaction.

Stat every file; hash and parse only those whose size or mtime changed. A broken file is reported
and its last good concept stays. A concept that disappears is retired with its cards and history,
never deleted; `previous_ids` carries a renamed concept's cards (and so their reviews) to its new id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Engine, delete, insert, select, text, update

from kb.config import Deck
from kb.loader import LoadError, WalkProblem, duplicate_id_at, parse_file, reference_errors, walk_yaml
from kb.quiz import derive_cards, payload_hash
from kb.trust import executed_from_concept, trust_hash
from kb.schema import CATEGORIES, Concept
from kb.store.engine import read
from kb.store.tables import CardRow, ConceptRow, DeckRow, ReviewLogRow, SnippetRunRow, SourceFileRow, UTCDateTime

_source = SourceFileRow.__table__
_concept = ConceptRow.__table__
_card = CardRow.__table__
_deck = DeckRow.__table__
_run = SnippetRunRow.__table__
_review = ReviewLogRow.__table__
# The concept columns a sync writes from a file (besides retired and the timestamps).
_CONCEPT_COLUMNS = ("id", "deck_path", "source_path", "category", "title_en", "title_zh", "data_json", "content_hash",
                    "snippet_hash", "snippet_line_offset", "prerequisites_json")


class _Stored(NamedTuple):
    path: str
    mtime_ns: int
    size: int
    content_hash: str
    concept_id: str | None
    errors_json: str | None


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0
    files_parsed: int = 0
    errors: list[LoadError] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # where the time went, for bench/

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.retired or self.renamed)

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "retired": self.retired,
            "renamed": [list(pair) for pair in self.renamed],
            "unchanged": self.unchanged,
            "errors": [e.to_dict() for e in self.errors],
        }


def snippet_hash(concept: Concept) -> str | None:
    """The trust hash of everything the concept executes: its code and its computed expressions."""
    return trust_hash(executed_from_concept(concept))


def search_document(concept: Concept) -> dict:
    """The text indexed for full-text search, in English and Chinese."""
    body = [concept.summary.en, concept.summary.zh, concept.definition]
    if concept.definition_zh:
        body.append(concept.definition_zh)
    body.extend(f.name for f in concept.formulas)
    body.extend(concept.pitfalls)
    doc = {
        "id": concept.id,
        "title": f"{concept.title.en}\n{concept.title.zh}\n{concept.id}",
        "aliases": "\n".join(concept.aliases),
        "tags": " ".join(concept.tags),
        "body": "\n".join(body),
    }
    return doc


GRAMS_MARK = "\n\x1f"  # separates the text from its generated grams (for excerpts)
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+")


def with_cjk_grams(text: str) -> str:
    """The text plus each CJK run's characters and bigrams as separate words, for short queries."""
    grams = []
    for run in _CJK_RUN.findall(text):
        grams.extend(run)
        grams.extend(run[i : i + 2] for i in range(len(run) - 1))
    return text + (GRAMS_MARK + " ".join(grams) if grams else "")


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
    search_row: tuple[str, str, str, str, str]  # concept_fts: id, title, aliases, tags, body
    words_row: tuple[str, str, str, str, str]  # concept_words: the same with CJK grams
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


def prepare(concept: Concept) -> PreparedConcept:
    doc = search_document(concept)
    search_row = (doc["id"], doc["title"], doc["aliases"], doc["tags"], doc["body"])
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
        words_row=(search_row[0], *map(with_cjk_grams, search_row[1:])),
        cards=tuple(
            (card.key, card.kind, order_key(concept, position), payload_hash(payload), payload)
            for position, card in enumerate(derive_cards(concept))
            for payload in (card.payload_json,)  # serialised once: stored, and hashed
        ),
    )


def parse_for_sync(path: str) -> SyncItem:
    """Parse one file and prepare its concept (module level, so a worker process can run it)."""
    item = parse_file(Path(path))
    return SyncItem(path, item.content_hash, item.errors, item.references, item.id_position,
                    item.snippet_line_offset, prepare(item.concept) if item.concept is not None else None)


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


def sync_decks(engine: Engine, decks: list[Deck], *, now: datetime) -> SyncReport:
    report = SyncReport()
    problems: list[WalkProblem] = []
    on_disk = _stat_files(decks, problems)
    report.errors.extend(p.as_error() for p in problems)
    unreadable = [p.path for p in problems if p.unreadable]
    with read(engine) as conn:
        # Raw tuples: on a no-op sync this query and the stats are all the work there is.
        stored = {
            row[0]: _Stored(*row)
            for row in conn.exec_driver_sql(
                "SELECT path, mtime_ns, size, content_hash, concept_id, errors_json FROM source_file"
            ).fetchall()  # one call, not one fetchone per row
        }
    changed = [p for p, (_, mtime, size) in on_disk.items()
               if p not in stored or stored[p].mtime_ns != mtime or stored[p].size != size]
    # A file in a folder that could not be listed is not gone: its concept stays as it was.
    deleted = [p for p in stored if p not in on_disk and not _under_any(p, unreadable)]
    known_decks = None
    if not changed and not deleted:
        report.unchanged = len(on_disk)
        for row in stored.values():
            report.errors.extend(_stored_errors(row.errors_json))
        report.errors.sort()
        return report

    # Parse what changed (outside the write transaction: parsing is the slow part).
    parsed: dict[str, SyncItem] = {}
    touched_only: list[str] = []
    started = time.perf_counter()
    parsed_items = _parse_many(changed)
    report.seconds["parse"] = time.perf_counter() - started
    for path, item in zip(changed, parsed_items):
        report.files_parsed += 1
        old = stored.get(path)
        if old is not None and old.content_hash == item.content_hash and not old.errors_json and item.concept is not None:
            touched_only.append(path)  # same bytes, new mtime: nothing to reload
            continue
        parsed[path] = item
    unchanged_paths = [p for p in on_disk if p not in parsed]
    unchanged_paths += [p for p in stored if p not in on_disk and _under_any(p, unreadable)]
    report.unchanged = len(on_disk) - len(parsed)

    # Who owns which id after this sync: unchanged files keep theirs; parsed ones claim theirs.
    owner: dict[str, str] = {}
    for path in unchanged_paths:
        row = stored.get(path)
        if row is not None and row.concept_id:
            owner[row.concept_id] = path
    id_positions: dict[str, tuple[int, int]] = {}
    with read(engine) as conn:
        concept_rows = {r.id: r for r in conn.execute(select(_concept.c.id, _concept.c.source_path, _concept.c.retired))}
        known_decks = {r.path for r in conn.execute(select(_deck.c.path))}
    for path in sorted(parsed):
        item = parsed[path]
        if item.concept is None:
            continue
        cid = item.concept.id
        if cid in owner and owner[cid] != path:
            other = owner[cid]
            other_item = parsed.get(other)
            pos = other_item.id_position if other_item else id_positions.get(cid, (1, 1))
            item.errors.append(duplicate_id_at(path, item.id_position, cid, other, pos))
            item.concept = None
        else:
            owner[cid] = path
    active_ids = set(owner)
    for path, item in parsed.items():
        if item.concept is not None:
            # A dangling reference is reported, but the concept still loads (no cascade of
            # breakage when a referenced concept is deleted).
            item.errors.extend(reference_errors(path, item.references, item.concept.id, active_ids))

    stamp = now
    started = time.perf_counter()
    with engine.begin() as conn:
        for deck in decks:
            if str(deck.path) not in known_decks:
                conn.execute(insert(_deck).values(path=str(deck.path), name=deck.name, trusted=deck.trusted))
        for path in touched_only:
            _, mtime, size = on_disk[path]
            conn.execute(update(_source).where(_source.c.path == path).values(mtime_ns=mtime, size=size))

        # Renames first, so the old id's cards move instead of being retired.
        for path, item in sorted(parsed.items()):
            if item.concept is None:
                continue
            for old_id in item.concept.previous_ids:
                if old_id in concept_rows and old_id not in active_ids:
                    _rename_concept(conn, old_id, item.concept.id, now=stamp)
                    report.renamed.append((old_id, item.concept.id))
                    concept_rows.pop(old_id, None)

        # Bulk inserts go to the driver as tuples: SQLAlchemy's per-row parameter processing cost
        # more than SQLite's own work on a first load of 10,000 files.
        stamp_text = UTCDateTime().process_bind_param(stamp, None)
        new_rows, fts_rows, words_rows, source_inserts, card_inserts = [], [], [], [], []
        renamed_targets = {new for _, new in report.renamed}
        for path, item in sorted(parsed.items()):
            deck = on_disk[path][0]
            _, mtime, size = on_disk[path]
            concept = item.concept
            errors_json = json.dumps([e.to_dict() for e in item.errors]) if item.errors else None
            if path in stored:
                values = {"deck_path": str(deck.path), "mtime_ns": mtime, "size": size,
                          "content_hash": item.content_hash, "errors_json": errors_json}
                if concept is not None:
                    values["concept_id"] = concept.id
                conn.execute(update(_source).where(_source.c.path == path).values(**values))
            else:
                source_inserts.append((path, str(deck.path), mtime, size, item.content_hash,
                                       concept.id if concept else None, errors_json))
            report.errors.extend(item.errors)
            if concept is None:
                continue
            old_concept_id = stored[path].concept_id if path in stored else None
            row = (concept.id, str(deck.path), path, concept.category, concept.title_en, concept.title_zh,
                   concept.data_json, item.content_hash, concept.snippet_hash, item.snippet_line_offset,
                   concept.prerequisites_json)
            if concept.id in concept_rows:
                conn.execute(update(_concept).where(_concept.c.id == concept.id).values(
                    **dict(zip(_CONCEPT_COLUMNS, row)), retired=False, updated_at=stamp))
                _delete_search(conn, concept.id)
                report.updated.append(concept.id)
            else:
                new_rows.append((*row, 0, stamp_text, stamp_text))
                report.added.append(concept.id)
            fts_rows.append(concept.search_row)
            words_rows.append(concept.words_row)
            if concept.id in concept_rows or concept.id in renamed_targets:
                _sync_cards(conn, concept, now=stamp)
            else:  # a brand-new concept has no cards yet: insert them in one batch below
                card_inserts.extend(
                    (f"{concept.id}/{key}", concept.id, key, kind, position, order, content_hash, payload, 0,
                     stamp_text, stamp_text)
                    for position, (key, kind, order, content_hash, payload) in enumerate(concept.cards)
                )
            if old_concept_id and old_concept_id != concept.id and old_concept_id not in active_ids:
                if old_concept_id in concept_rows:
                    _retire_concept(conn, old_concept_id, now=stamp)
                    report.retired.append(old_concept_id)
        if source_inserts:
            conn.exec_driver_sql(
                "INSERT INTO source_file (path, deck_path, mtime_ns, size, content_hash, concept_id, errors_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", source_inserts)
        if new_rows:
            columns = ", ".join((*_CONCEPT_COLUMNS, "retired", "created_at", "updated_at"))
            conn.exec_driver_sql(f"INSERT INTO concept ({columns}) VALUES ({', '.join('?' * 14)})", new_rows)
        if card_inserts:
            conn.exec_driver_sql(
                "INSERT INTO card (card_id, concept_id, key, kind, position, order_key, content_hash, payload_json, "
                "retired, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", card_inserts)
        if fts_rows:
            conn.exec_driver_sql("INSERT INTO concept_fts (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)", fts_rows)
            conn.exec_driver_sql("INSERT INTO concept_words (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)",
                                 words_rows)

        for path in deleted:
            conn.execute(delete(_source).where(_source.c.path == path))
            old_id = stored[path].concept_id
            if old_id and old_id not in active_ids and old_id in concept_rows and not concept_rows[old_id].retired:
                _retire_concept(conn, old_id, now=stamp)
                report.retired.append(old_id)

    report.seconds["write"] = time.perf_counter() - started
    for path in unchanged_paths:
        row = stored.get(path)
        if row is not None:
            report.errors.extend(_stored_errors(row.errors_json))
    report.errors.sort()
    return report


def _delete_search(conn, concept_id: str) -> None:
    conn.execute(text("DELETE FROM concept_fts WHERE id = :id"), {"id": concept_id})
    conn.execute(text("DELETE FROM concept_words WHERE id = :id"), {"id": concept_id})


def order_key(concept: Concept, position: int) -> str:
    """New cards come category by category (the order of CATEGORIES), concept by concept."""
    return f"{CATEGORIES.index(concept.category):02d}/{concept.id}/{position:04d}"


def _sync_cards(conn, concept: PreparedConcept, *, now: datetime) -> None:
    """Upsert a concept's cards by key: same key, same card (and history); vanished keys retire."""
    existing = {
        r.key: r
        for r in conn.execute(
            select(_card.c.pk, _card.c.key, _card.c.content_hash, _card.c.retired, _card.c.position, _card.c.order_key)
            .where(_card.c.concept_id == concept.id)
        )
    }
    seen = set()
    inserts = []
    for position, (key, kind, order, content_hash, payload) in enumerate(concept.cards):
        seen.add(key)
        old = existing.get(key)
        if old is None:
            inserts.append({
                "card_id": f"{concept.id}/{key}", "concept_id": concept.id, "key": key, "kind": kind,
                "position": position, "order_key": order, "content_hash": content_hash, "payload_json": payload,
                "retired": False, "created_at": now, "updated_at": now,
            })
        elif old.content_hash != content_hash or old.retired or old.position != position or old.order_key != order:
            conn.execute(
                update(_card).where(_card.c.pk == old.pk).values(
                    kind=kind, position=position, order_key=order, content_hash=content_hash,
                    payload_json=payload, retired=False, updated_at=now,
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
                update(_card).where(_card.c.pk == r.pk).values(
                    card_id=f"{new_id}/{r.key}", concept_id=new_id, updated_at=now
                )
            )
    conn.execute(update(_run).where(_run.c.concept_id == old_id).values(concept_id=new_id))
    conn.execute(delete(_concept).where(_concept.c.id == old_id))
    _delete_search(conn, old_id)

