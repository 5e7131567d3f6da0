"""`kb db copy`: every row of one kb database into another, empty one (SQLite <-> PostgreSQL).

All or nothing: the rows are written in one transaction of the target, the rows of every table are
counted on both sides before it commits, and any difference (or any error) rolls it back, leaving
the target empty. The source is only read, in one snapshot.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, insert, select

from kb.store.cjk import with_cjk_grams
from kb.store.dialect import is_postgres, run
from kb.store.errors import StoreError
from kb.store.tables import (
    CardMarkRow,
    CardRow,
    CardStateRow,
    ConceptRow,
    DeckRow,
    ReviewLogRow,
    SettingRow,
    SnippetRunRow,
    SourceFileRow,
    TrustedSnippetRow,
    table_of,
)

# Parents before children (card_state, card_mark and review_log refer to card).
TABLES = tuple(
    table_of(model)
    for model in (
        DeckRow,
        SourceFileRow,
        ConceptRow,
        CardRow,
        TrustedSnippetRow,
        CardStateRow,
        CardMarkRow,
        ReviewLogRow,
        SettingRow,
        SnippetRunRow,
    )
)
BATCH = 5000
# Tables whose integer key the target's sequence must continue after (PostgreSQL).
_SERIALS = (("card", "pk"), ("review_log", "id"), ("snippet_run", "id"))


def copy_database(source: Engine, target: Engine, *, source_name: str, target_name: str) -> dict[str, int]:
    """Copy every row of `source` into the empty kb database `target`; returns the rows per table."""
    # One snapshot of the source: SQLite's read transaction is one; PostgreSQL's needs REPEATABLE READ.
    options = {"isolation_level": "REPEATABLE READ"} if is_postgres(source) else {}
    with source.connect().execution_options(kb_read=True, **options) as src, target.begin() as dst:
        held = {t.name: dst.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES}
        if any(held.values()):
            busy = ", ".join(f"{n} {name}" for name, n in held.items() if n)
            raise StoreError(
                f"{target_name} is not empty ({busy}); kb copies only into an empty database, so nothing was copied"
            )
        counts: dict[str, int] = {}
        for table in TABLES:
            counts[table.name] = _copy_rows(src, dst, table)
        search = [tuple(r) for r in run(src, "SELECT id, title, aliases, tags, body FROM concept_fts")]
        run(dst, "DELETE FROM concept_fts")
        if search:
            run(dst, "INSERT INTO concept_fts (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)", search)
        if not is_postgres(dst):
            run(dst, "DELETE FROM concept_words")
            if search:
                run(
                    dst,
                    "INSERT INTO concept_words (id, title, aliases, tags, body) VALUES (?, ?, ?, ?, ?)",
                    [(r[0], *(with_cjk_grams(text) for text in r[1:])) for r in search],
                )
        counts["concept_fts"] = len(search)
        for table in TABLES:
            stored = dst.execute(select(func.count()).select_from(table)).scalar_one()
            read_back = src.execute(select(func.count()).select_from(table)).scalar_one()
            if not stored == read_back == counts[table.name]:
                raise StoreError(
                    f"{table.name}: {read_back} rows in {source_name}, {stored} written to {target_name}; "
                    "nothing was copied"
                )
        if is_postgres(dst):
            for table_name, column in _SERIALS:
                run(
                    dst,
                    f"SELECT setval(pg_get_serial_sequence('{table_name}', '{column}'), "
                    f"(SELECT coalesce(max({column}), 0) + 1 FROM {table_name}), false)",
                )
    return counts


def _copy_rows(src, dst, table) -> int:
    result = src.execute(select(table))
    n = 0
    while True:
        rows = result.fetchmany(BATCH)
        if not rows:
            return n
        dst.execute(insert(table), [dict(row._mapping) for row in rows])
        n += len(rows)
