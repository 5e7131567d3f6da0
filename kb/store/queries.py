"""Read queries and small writes (run records). Plain functions over an engine."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Integer, func, insert, select

from kb.store.cjk import is_cjk, without_grams
from kb.store.dialect import is_postgres, run, user_of
from kb.store.engine import read
from kb.store.tables import (
    CardRow,
    ConceptRow,
    DeckRow,
    ReviewLogRow,
    SnippetRunRow,
    TrustedSnippetRow,
    table_of,
)
from kb.trust import executed_strings

_concept = table_of(ConceptRow)
_card = table_of(CardRow)
_run = table_of(SnippetRunRow)
_review = table_of(ReviewLogRow)
_deck = table_of(DeckRow)
_trusted = table_of(TrustedSnippetRow)

# FTS5's trigram tokenizer cannot match terms shorter than three characters (many Chinese terms
# have two: 卷积, 梯度); those go to the word index, which also holds CJK characters and bigrams.
TRIGRAM_MIN = 3
EXACT_WINDOW = 50
_MARK_OPEN, _MARK_CLOSE = "«", "»"


@dataclass(frozen=True)
class SearchRow:
    id: str
    title_en: str
    title_zh: str
    category: str
    snippet_text: str


def _fts_query(terms: list[str]) -> str:
    # Every term becomes a quoted phrase, so FTS syntax in user input (", *, AND, NEAR, :) is text.
    return " AND ".join('"' + t.replace('"', '""') + '"' for t in terms)


def _excerpt(text: str, terms: list[str], width: int = 60) -> str:
    lowered = text.lower()
    hits = [(lowered.find(t.lower()), t) for t in terms if t and lowered.find(t.lower()) >= 0]
    if not hits:
        return text[:width].replace("\n", " ")
    # The first term (the query as typed) wins where it occurs; else the earliest term.
    start, term = hits[0] if hits[0][1] == terms[0] else min(hits)
    lo = max(0, start - width // 2)
    hi = min(len(text), start + len(term) + width // 2)
    piece = text[lo:start] + _MARK_OPEN + text[start : start + len(term)] + _MARK_CLOSE + text[start + len(term) : hi]
    return ("…" if lo > 0 else "") + piece.replace("\n", " ") + ("…" if hi < len(text) else "")


def _word_query(terms: list[str]) -> str:
    # CJK terms match their generated gram tokens exactly; other short terms match word prefixes.
    parts = []
    for t in terms:
        quoted = '"' + t.replace('"', '""') + '"'
        parts.append(quoted if is_cjk(t) else quoted + "*")
    return " AND ".join(parts)


def search(engine: Engine, query: str, *, limit: int = 50) -> list[SearchRow]:
    # NUL ends an FTS5 string ("unterminated string"); a lone surrogate (undecodable argv) cannot be
    # encoded for SQLite: both act as separators.
    query = "".join(" " if ch == "\x00" or "\ud800" <= ch <= "\udfff" else ch for ch in query)
    # Hyphens and underscores separate words too, so `dense-block` finds "dense block" and an
    # id-like query finds the concept whose aliases spell it with spaces.
    terms = [t for t in re.split(r"[\s_-]+", query) if t and (len(t) >= TRIGRAM_MIN or any(ch.isalnum() for ch in t))]
    if not terms:
        return []
    with read(engine) as conn:
        # A few more than asked for, so an exact name can be moved up from below the cut.
        find = _search_trigram if is_postgres(conn) else _search_fts
        rows = find(conn, terms, max(limit, EXACT_WINDOW))
    lowered = [t.lower() for t in terms]
    wanted = query.strip().casefold()

    def exact(r) -> bool:  # the query is the concept's id, a title or an alias, as typed
        names = (without_grams(r[4]) + "\n" + without_grams(r[5])).split("\n")
        return r[0] == wanted or any(name.strip().casefold() == wanted for name in names)

    rows = sorted(rows, key=lambda r: not exact(r))[:limit]  # stable: bm25 order otherwise
    out = []
    for r in rows:
        title, aliases, body = map(without_grams, (r[4], r[5], r[6]))
        # Show the body around the match when the body matches, else the alias or title line.
        source = next((t for t in (body, aliases, title) if any(x in t.lower() for x in lowered)), body)
        # Mark the whole query where it occurs as typed, else the first term found.
        out.append(SearchRow(r[0], r[1], r[2], r[3], _excerpt(source, [query.strip(), *terms])))
    return out


def _search_fts(conn, terms: list[str], limit: int) -> list:
    """SQLite: FTS5, ranked by bm25 with column weights (title 10, aliases 6, tags 4, body 1)."""
    long_terms = [t for t in terms if len(t) >= TRIGRAM_MIN]
    short_terms = [t for t in terms if len(t) < TRIGRAM_MIN]
    columns = "x.id, c.title_en, c.title_zh, c.category, x.title, x.aliases, x.body"
    if long_terms:
        sql = f"SELECT {columns} FROM concept_fts x JOIN concept c ON c.id = x.id WHERE concept_fts MATCH ? "
        params: list = [_fts_query(long_terms)]
        if short_terms:
            sql += "AND x.id IN (SELECT id FROM concept_words WHERE concept_words MATCH ?) "
            params.append(_word_query(short_terms))
        sql += "ORDER BY bm25(concept_fts, 0.0, 10.0, 6.0, 4.0, 1.0), x.id LIMIT ?"
    else:
        sql = (
            f"SELECT {columns} FROM concept_words x JOIN concept c ON c.id = x.id "
            "WHERE concept_words MATCH ? ORDER BY bm25(concept_words, 0.0, 10.0, 6.0, 4.0, 1.0), x.id LIMIT ?"
        )
        params = [_word_query(short_terms)]
    return list(run(conn, sql, (*params, limit)).all())


# The columns of a concept's search row and their weights, as in _search_fts's bm25 ranking.
_WEIGHTS = (("title", 10.0), ("aliases", 6.0), ("tags", 4.0), ("body", 1.0))


def _search_trigram(conn, terms: list[str], limit: int) -> list:
    """PostgreSQL: every term must occur in the concept's search row (pg_trgm's GIN indexes serve
    ILIKE). A term of three characters or more, or of CJK characters, matches anywhere, as FTS5's
    trigram index does; a shorter one starts a word, as a word-index prefix does. Rows rank by
    where each term occurs, with bm25's column weights (a title hit outweighs many body hits),
    then by how often it occurs per character of the text, then by id."""
    conditions, score, params_where, params_score = [], [], [], []
    for term in terms:
        if len(term) >= TRIGRAM_MIN or is_cjk(term):
            escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            test, value = "ILIKE ?", f"%{escaped}%"
        else:
            test, value = "~* ?", r"\m" + re.escape(term)
        columns = [f"x.{column} {test}" for column, _ in _WEIGHTS]
        conditions.append("(" + " OR ".join(columns) + ")")
        params_where.extend([value] * len(columns))
        for column, weight in _WEIGHTS:
            score.append(f"CASE WHEN x.{column} {test} THEN {weight} ELSE 0 END")
            params_score.append(value)
    # How densely the terms occur: breaks ties between rows that match in the same columns.
    lowered = [t.lower() for t in terms]
    density = " + ".join(
        "(length(lower(x.body)) - length(replace(lower(x.body), ?, ''))) / (length(x.body) + 1.0)" for _ in lowered
    )
    sql = (
        "SELECT x.id, c.title_en, c.title_zh, c.category, x.title, x.aliases, x.body FROM concept_fts x "
        f"JOIN concept c ON c.id = x.id WHERE {' AND '.join(conditions)} "
        f"ORDER BY {' + '.join(score)} DESC, {density} DESC, x.id LIMIT ?"
    )
    return list(run(conn, sql, (*params_where, *params_score, *lowered, limit)).all())


def concept_data(engine: Engine, concept_id: str) -> dict | None:
    """The stored concept: its schema fields plus where it came from."""
    with read(engine) as conn:
        row = conn.execute(select(_concept).where(_concept.c.id == concept_id)).first()
    if row is None:
        return None
    return {
        "data": json.loads(row.data_json),
        "deck_path": row.deck_path,
        "source_path": row.source_path,
        "retired": row.retired,
        "snippet_hash": row.snippet_hash,
        "snippet_line_offset": row.snippet_line_offset,
    }


def all_concept_ids(engine: Engine, *, include_retired: bool = False) -> list[str]:
    with read(engine) as conn:
        query = select(_concept.c.id).order_by(_concept.c.id)
        if not include_retired:
            query = query.where(_concept.c.retired.is_(False))
        return [r.id for r in conn.execute(query)]


def concept_owners(engine: Engine) -> dict[str, tuple[str, str]]:
    """Active concept id -> (deck path, source file), to tell an import which ids are taken."""
    with read(engine) as conn:
        rows = conn.execute(
            select(_concept.c.id, _concept.c.deck_path, _concept.c.source_path).where(_concept.c.retired.is_(False))
        )
        return {r.id: (r.deck_path, r.source_path) for r in rows}


def cards_of(engine: Engine, concept_id: str) -> list[dict]:
    with read(engine) as conn:
        rows = conn.execute(
            select(_card).where(_card.c.concept_id == concept_id, _card.c.retired.is_(False)).order_by(_card.c.position)
        ).all()
    # The payload carries the card's own `id` (its key): the full card id must win.
    return [{**json.loads(r.payload_json), "id": r.card_id, "type": r.kind, "key": r.key} for r in rows]


def record_run(engine: Engine, concept_id: str, record: dict, *, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(insert(_run).values(concept_id=concept_id, created_at=now, **record))


def last_run(engine: Engine, concept_id: str) -> dict | None:
    with read(engine) as conn:
        row = conn.execute(
            select(_run).where(_run.c.concept_id == concept_id).order_by(_run.c.id.desc()).limit(1)
        ).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out.pop("id")
    out["values"] = json.loads(out.pop("values_json"))
    out["created_at"] = out["created_at"].isoformat()
    return out


def counts(engine: Engine) -> dict[str, int]:
    with read(engine) as conn:
        return {
            "concepts": conn.execute(
                select(func.count()).select_from(_concept).where(_concept.c.retired.is_(False))
            ).scalar(),
            "retired_concepts": conn.execute(
                select(func.count()).select_from(_concept).where(_concept.c.retired.is_(True))
            ).scalar(),
            "cards": conn.execute(select(func.count()).select_from(_card).where(_card.c.retired.is_(False))).scalar(),
            "reviews": conn.execute(select(func.count()).select_from(_review)).scalar(),
            "runs": conn.execute(select(func.count()).select_from(_run)).scalar(),
        }


@dataclass(frozen=True)
class SnippetSource:
    """What the runner needs of one concept's snippet."""

    concept_id: str
    code: str
    code_hash: str
    devices: tuple[str, ...]
    timeout_s: float | None
    expressions: tuple[str, ...]
    line_offset: int
    source_path: str
    deck_path: str
    trusted_hash: str | None  # the hash `kb trust` recorded for this concept's snippet, if any


def snippet_sources(engine: Engine, ids: list[str] | None = None) -> list[SnippetSource]:
    """Active concepts that have a snippet (all, or those in ids), with the hash trusted for each."""
    with read(engine) as conn:
        query = (
            select(
                _concept.c.id,
                _concept.c.data_json,
                _concept.c.snippet_hash,
                _concept.c.snippet_line_offset,
                _concept.c.source_path,
                _concept.c.deck_path,
                _trusted.c.snippet_hash.label("trusted_hash"),
            )
            .join(
                _trusted,
                (_trusted.c.deck_path == _concept.c.deck_path)
                & (_trusted.c.concept_id == _concept.c.id)
                & (_trusted.c.user_name == user_of(conn)),
                isouter=True,
            )
            .where(_concept.c.retired.is_(False), _concept.c.snippet_hash.is_not(None))
            .order_by(_concept.c.id)
        )
        if ids is not None:
            query = query.where(_concept.c.id.in_(ids))
        rows = conn.execute(query).all()
    out = []
    for r in rows:
        data = json.loads(r.data_json)
        snippet = data["snippet"]
        expressions = tuple(c["answer"] for c in data.get("cards", []) if c.get("type") == "computed")
        out.append(
            SnippetSource(
                r.id,
                snippet["code"],
                r.snippet_hash,
                tuple(snippet["devices"]),
                snippet.get("timeout_s"),
                expressions,
                r.snippet_line_offset,
                r.source_path,
                r.deck_path,
                r.trusted_hash,
            )
        )
    return out


def last_passes(engine: Engine) -> dict[str, dict]:
    """For each concept, its most recent passing run: code hash, device and versions."""
    with read(engine) as conn:
        rows = run(
            conn,
            "SELECT r.concept_id, r.code_hash, r.device, r.python_version, r.torch_version, r.numpy_version "
            "FROM snippet_run r JOIN (SELECT concept_id, max(id) AS id FROM snippet_run WHERE status = 'passed' "
            "GROUP BY concept_id) last ON last.id = r.id",
        ).all()
    return {r[0]: {"code_hash": r[1], "device": r[2], "python": r[3], "torch": r[4], "numpy": r[5]} for r in rows}


def trust_deck_snippets(engine: Engine, deck_path: str, *, now: datetime) -> int:
    """Record what every active snippet of a deck executes, and its hash, as trusted; returns how many."""
    from sqlalchemy import delete

    with engine.begin() as conn:
        rows = conn.execute(
            select(_concept.c.id, _concept.c.snippet_hash, _concept.c.data_json).where(
                _concept.c.deck_path == deck_path, _concept.c.retired.is_(False), _concept.c.snippet_hash.is_not(None)
            )
        ).all()
        user = user_of(conn)
        conn.execute(delete(_trusted).where(_trusted.c.deck_path == deck_path, _trusted.c.user_name == user))
        if rows:
            conn.execute(
                insert(_trusted),
                [
                    {
                        "user_name": user,
                        "deck_path": deck_path,
                        "concept_id": r.id,
                        "snippet_hash": r.snippet_hash,
                        "trusted_at": now,
                        "executed_json": json.dumps(executed_strings(json.loads(r.data_json)), ensure_ascii=False),
                    }
                    for r in rows
                ],
            )
        return len(rows)


@dataclass(frozen=True)
class UntrustedChange:
    """A snippet trusted once whose executed strings differ now: what was trusted, what is there."""

    concept_id: str
    trusted: dict[str, str] | None  # None when only a hash was recorded (trust given before schema 3)
    current: dict[str, str]


def changed_since_trusted(engine: Engine, deck_path: str) -> list[UntrustedChange]:
    """The active snippets of a deck whose hash is no longer the one `kb trust` recorded."""
    with read(engine) as conn:
        rows = conn.execute(
            select(_concept.c.id, _concept.c.data_json, _trusted.c.executed_json)
            .join(
                _trusted,
                (_trusted.c.deck_path == _concept.c.deck_path)
                & (_trusted.c.concept_id == _concept.c.id)
                & (_trusted.c.user_name == user_of(conn)),
            )
            .where(
                _concept.c.deck_path == deck_path,
                _concept.c.retired.is_(False),
                _concept.c.snippet_hash.is_not(None),
                _trusted.c.snippet_hash != _concept.c.snippet_hash,
            )
            .order_by(_concept.c.id)
        ).all()
    return [
        UntrustedChange(
            r.id, json.loads(r.executed_json) if r.executed_json else None, executed_strings(json.loads(r.data_json))
        )
        for r in rows
    ]


def revoke_deck_trust(engine: Engine, deck_path: str) -> int:
    """Forget every trusted hash of a deck; returns how many were recorded."""
    from sqlalchemy import delete

    with engine.begin() as conn:
        return conn.execute(
            delete(_trusted).where(_trusted.c.deck_path == deck_path, _trusted.c.user_name == user_of(conn))
        ).rowcount


@dataclass(frozen=True)
class DeckCounts:
    """What one deck holds in the database: active concepts, snippets, and the state of their trust."""

    concepts: int = 0
    snippets: int = 0
    trusted: int = 0  # snippets whose current hash is the one recorded by `kb trust`
    changed: int = 0  # snippets trusted once and edited since


def deck_counts(engine: Engine) -> dict[str, DeckCounts]:
    with read(engine) as conn:
        rows = conn.execute(
            select(
                _concept.c.deck_path,
                func.count(),
                func.count(_concept.c.snippet_hash),
                func.sum((_trusted.c.snippet_hash == _concept.c.snippet_hash).cast(Integer)),
                func.sum((_trusted.c.snippet_hash != _concept.c.snippet_hash).cast(Integer)),
            )
            .join(
                _trusted,
                (_trusted.c.deck_path == _concept.c.deck_path)
                & (_trusted.c.concept_id == _concept.c.id)
                & (_trusted.c.user_name == user_of(conn)),
                isouter=True,
            )
            .where(_concept.c.retired.is_(False))
            .group_by(_concept.c.deck_path)
        ).all()
    return {r[0]: DeckCounts(r[1], r[2], r[3] or 0, r[4] or 0) for r in rows}


def last_passing_values(engine: Engine, concept_id: str) -> dict | None:
    """The computed values of the concept's most recent passing run, or None."""
    with read(engine) as conn:
        row = run(
            conn,
            "SELECT values_json FROM snippet_run WHERE concept_id = ? AND status = 'passed' ORDER BY id DESC LIMIT 1",
            (concept_id,),
        ).first()
    return None if row is None else json.loads(row[0])


def titles_of(engine: Engine, ids: list[str]) -> dict[str, dict[str, str]]:
    """{id: {"en", "zh"}} of the given concepts that exist (retired ones too)."""
    if not ids:
        return {}
    with read(engine) as conn:
        marks = ", ".join("?" * len(ids))
        rows = run(conn, f"SELECT id, title_en, title_zh FROM concept WHERE id IN ({marks})", tuple(ids))
        return {r[0]: {"en": r[1], "zh": r[2]} for r in rows}


def titles_in_category(engine: Engine, category: str) -> list[tuple[str, str]]:
    """(id, English title) of the active concepts of a category: the pool of choice distractors."""
    with read(engine) as conn:
        return [
            tuple(r)
            for r in run(
                conn, "SELECT id, title_en FROM concept WHERE category = ? AND retired = FALSE ORDER BY id", (category,)
            )
        ]


def list_concepts(engine: Engine, *, category: str | None = None) -> list[tuple[str, str, str, str]]:
    """(id, English title, Chinese title, category) of active concepts, by category then id."""
    from kb.schema import CATEGORIES

    with read(engine) as conn:
        sql = "SELECT id, title_en, title_zh, category FROM concept WHERE retired = FALSE"
        params: tuple = ()
        if category:
            sql += " AND category = ?"
            params = (category,)
        rows = run(conn, sql, params).all()
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted((tuple(r) for r in rows), key=lambda r: (order.get(r[3], 99), r[0]))


def export_rows(engine: Engine, *, category: str | None = None) -> list[dict]:
    """Every active concept (or one category's) with its cards, last run and last passing values, by id."""
    with read(engine) as conn:
        sql = "SELECT id, data_json FROM concept WHERE retired = FALSE"
        params: tuple = ()
        if category:
            sql += " AND category = ?"
            params = (category,)
        concepts = run(conn, sql + " ORDER BY id", params).all()
        cards = conn.execute(
            select(_card).where(_card.c.retired.is_(False)).order_by(_card.c.concept_id, _card.c.position)
        ).all()
        latest = run(conn, "SELECT concept_id, max(id) FROM snippet_run GROUP BY concept_id").all()
        passing = run(
            conn, "SELECT concept_id, max(id) FROM snippet_run WHERE status = 'passed' GROUP BY concept_id"
        ).all()
        run_ids = {r[1] for r in latest}
        runs = {r.id: r for r in conn.execute(select(_run).where(_run.c.id.in_(run_ids | {r[1] for r in passing})))}
    by_concept: dict[str, list[dict]] = {}
    for r in cards:
        # The payload's own `id` (the spec's key) must not hide the card id.
        by_concept.setdefault(r.concept_id, []).append(
            {**json.loads(r.payload_json), "id": r.card_id, "type": r.kind, "key": r.key}
        )
    last = {cid: _run_dict(runs[rid]) for cid, rid in latest}
    values = {cid: json.loads(runs[rid].values_json) for cid, rid in passing}
    return [
        {
            "data": json.loads(data),
            "cards": by_concept.get(cid, []),
            "last_run": last.get(cid),
            "passing_values": values.get(cid),
        }
        for cid, data in concepts
    ]


def _run_dict(row) -> dict:
    out = dict(row._mapping)
    out.pop("id")
    out["values"] = json.loads(out.pop("values_json"))
    out["created_at"] = out["created_at"].isoformat()
    return out
