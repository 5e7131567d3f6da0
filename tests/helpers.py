"""Test helpers: write tiny concept files on the fly."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

FIXED_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


class Clock:
    """An injectable clock that tests move by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


def concept_yaml(
    cid: str,
    *,
    title_en: str | None = None,
    title_zh: str = "测试概念",
    category: str = "fundamentals",
    definition: str = "A concept used by the tests.",
    extra: str = "",
) -> str:
    title_en = title_en or cid.replace("-", " ").title()
    text = textwrap.dedent(
        f"""\
        id: {cid}
        title:
          en: {title_en}
          zh: {title_zh}
        summary:
          en: Summary of {title_en}.
          zh: {title_zh}的摘要。
        category: {category}
        definition: |
          {definition}
        """
    )
    return text + textwrap.dedent(extra)


def write_concept(deck: Path, cid: str, **kwargs) -> Path:
    category = kwargs.get("category", "fundamentals")
    path = deck / category / f"{cid}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(concept_yaml(cid, **kwargs), encoding="utf-8")
    return path


async def settle(app, pilot) -> None:
    """Wait for the workers (not the long-lived watcher) and let the messages drain."""
    from textual.worker import WorkerCancelled

    for _ in range(3):
        pending = [w for w in app.workers if w.group != "watch"]
        try:
            if pending:  # an empty list would mean "all workers", the endless watcher included
                await app.workers.wait_for_complete(pending)
        except WorkerCancelled:
            pass  # an exclusive worker was replaced by a newer one
        await pilot.pause()


def text_of(widget) -> str:
    """The text a Static shows, whatever it was given (a Text, a Group, Textual Content)."""
    import io

    from rich.console import Console

    content = getattr(widget, "content", None)
    if content is None:
        content = widget.render()
    if hasattr(content, "plain"):
        return content.plain
    if isinstance(content, str):
        return content
    console = Console(width=300, file=io.StringIO(), record=True)
    console.print(content)
    return console.export_text()


def snapshot_db(
    path: Path, tables: tuple[str, ...] | None = None, *, leave_out: dict[str, tuple[str, ...]] | None = None
) -> dict[str, tuple[int, str]]:
    """(row count, content hash) of every table (or of `tables`): "nothing lost" compares these.

    `leave_out` names columns per table not to compare (derived values a migration recomputes).
    """
    import hashlib
    import sqlite3

    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        names = tables or [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        out = {}
        for name in names:
            columns = [
                r[1]
                for r in conn.execute(f'PRAGMA table_info("{name}")')
                if r[1] not in (leave_out or {}).get(name, ())
            ]
            selected = ", ".join(f'"{c}"' for c in columns)
            rows = sorted(repr(r) for r in conn.execute(f'SELECT {selected} FROM "{name}"'))
            out[name] = (len(rows), hashlib.sha256("\n".join(rows).encode("utf-8", "surrogatepass")).hexdigest())
        return out
    finally:
        conn.close()


def as_float64(x):
    """A tensor (on any device) or array as a float64 numpy array, for comparing with oracles."""
    import numpy as np

    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def require_or_skip(feature: str, reason: str) -> None:
    """Skip the test, saying why; but fail it when KB_TESTS_REQUIRE names `feature`.

    CI installs bubblewrap, PostgreSQL and Chromium and sets KB_TESTS_REQUIRE, so a test that needs
    one of them can never be skipped there unnoticed; on a developer's machine without it, it skips.
    """
    import os

    import pytest

    required = {name.strip() for name in os.environ.get("KB_TESTS_REQUIRE", "").split(",") if name.strip()}
    if feature in required:
        pytest.fail(f"{reason} (KB_TESTS_REQUIRE={','.join(sorted(required))} says it must be here)")
    pytest.skip(reason)


def db_execute(kb, sql: str, params=()) -> list[tuple]:
    """Run one statement (`?` placeholders; params a tuple, or a list of tuples) on the database of
    `kb`, SQLite or PostgreSQL, and commit; returns its rows, if any."""
    from kb.store.dialect import run

    with kb.engine.begin() as conn:
        result = run(conn, sql, params)
        return [tuple(row) for row in result] if result.returns_rows else []


def backend_url() -> str | None:
    """The database URL of a test on the PostgreSQL backend (the `database_url` fixture sets it), else None."""
    import os

    return os.environ.get("KB_DATABASE_URL") or None
