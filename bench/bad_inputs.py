"""The attack set: every kind of broken or hostile input, run through the real `kb` command.

Usage: python bench/bad_inputs.py [--timeout S]

Each case builds its input in a fresh KB_HOME, runs one `kb` command in a subprocess with a
timeout, and is judged: a traceback on stderr, a hang (the timeout) or an exit code other than the
expected one is a failure. Expected: a one-line message and exit 1 for bad input, exit 0 where kb
copes (a damaged search index is rebuilt). The last line gives the totals; the exit status is 1 if
any case failed. Not a test (it takes a minute); the regression tests cover each case one by one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

NOTE = """id: {id}
title: {{en: A Note, zh: 笔记}}
summary: {{en: A summary., zh: 摘要。}}
category: fundamentals
definition: A definition.
"""
BASIC = {"1": {"name": "Basic", "type": 0, "flds": [{"name": "Front", "ord": 0}, {"name": "Back", "ord": 1}]}}


class Case:
    def __init__(self, name: str, args: list[str], setup: Callable[[Path], list[str] | None], expect: int = 1):
        self.name, self.args, self.setup, self.expect = name, args, setup, expect


def note(home: Path, name: str, text: str) -> Path:
    path = home / "notes" / "fundamentals" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def package(home: Path, *, models=None, raw_models=None, notes=(), notes_sql=None, big: int = 0) -> list[str]:
    db = home / "collection.anki2"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE col (models)")
    conn.execute("INSERT INTO col VALUES (?)", (raw_models if raw_models is not None else json.dumps(models or BASIC),))
    conn.execute(notes_sql or "CREATE TABLE notes (id, guid, mid, tags, flds)")
    if notes_sql is None:
        conn.executemany("INSERT INTO notes VALUES (?, ?, ?, ?, ?)", notes)
    conn.commit()
    conn.close()
    out = home / "bad.apkg"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if big:
            with archive.open("collection.anki2", "w") as member:
                for _ in range(big):
                    member.write(b"\0" * 2**20)
        else:
            archive.write(db, "collection.anki2")
    return ["import", str(out)]


def damage(home: Path, table: str, *, every_page: bool) -> None:
    db = home / "kb.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ?", (table,))]
    conn.close()
    with open(db, "r+b") as f:
        for page in pages if every_page else pages[len(pages) // 2 : len(pages) // 2 + 1]:
            f.seek((page - 1) * size)
            f.write(b"\0" * 16)


def synced(setup: Callable[[Path], None]) -> Callable[[Path], None]:
    """Sync and answer a card first, then break something."""

    def run(home: Path) -> None:
        kb(home, ["sync"])
        kb(home, ["quiz", "--plain", "--limit", "1"], stdin="\n3\n")
        setup(home)

    return run


def kb(home: Path, args: list[str], *, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "KB_HOME": str(home), "PYTHONPATH": str(REPO)}
    env.pop("KB_CONTENT", None)
    return subprocess.run(
        [sys.executable, "-m", "kb", *args], env=env, input=stdin, capture_output=True, text=True, timeout=timeout
    )


CASES = [
    Case(
        "a 5,000-digit integer in a note",
        ["sync"],
        lambda h: note(h, "big", NOTE.format(id="big") + "pitfalls: [" + "1" * 5000 + "]\n") and None,
    ),
    Case(
        "a base-60 category of 3,000 parts",
        ["sync"],
        lambda h: note(h, "b60", NOTE.format(id="b60").replace("fundamentals", ":".join(["1"] * 3000))) and None,
    ),
    Case(
        "a 600 KB base-60 scalar",
        ["check"],
        lambda h: (
            note(h, "b60big", NOTE.format(id="b60big") + "pitfalls: [" + ":".join(["1"] * 300_000) + "]\n") and None
        ),
    ),
    Case(
        "an impossible date",
        ["sync"],
        lambda h: note(h, "date", NOTE.format(id="date") + "pitfalls: [2024-13-45]\n") and None,
    ),
    Case(
        "a 1,000-character key",
        ["check"],
        lambda h: note(h, "key", NOTE.format(id="key") + "k" * 1000 + ": 1\n") and None,
    ),
    Case(
        "symbolic link loops in the notes",
        ["sync"],
        lambda h: (
            (
                note(h, "loop", NOTE.format(id="loop")),
                os.symlink(".", h / "notes" / "a"),
                os.symlink(".", h / "notes" / "b"),
            )
            and None
        ),
    ),
    Case(
        "a symbolic link loop, then search",
        ["search", "note"],
        lambda h: (
            (note(h, "loop2", NOTE.format(id="loop2")), os.symlink("..", h / "notes" / "fundamentals" / "up")) and None
        ),
        expect=0,
    ),
    Case(
        "an .apkg with NUL, digits, NUL in a field",
        [],
        lambda h: package(h, notes=[(1, "g", 1, "", "a\x0012\x00b\x1fc")]),
        expect=0,
    ),
    Case("an .apkg with NULL flds", [], lambda h: package(h, notes=[(1, "g", 1, "", None)])),
    Case("an .apkg with NULL tags", [], lambda h: package(h, notes=[(1, "g", 1, None, "a\x1fb")])),
    Case("an .apkg with col.models = []", [], lambda h: package(h, raw_models="[]", notes=[(1, "g", 1, "", "a\x1fb")])),
    Case(
        "an .apkg with col.models = null",
        [],
        lambda h: package(h, raw_models="null", notes=[(1, "g", 1, "", "a\x1fb")]),
    ),
    Case("an .apkg with a BLOB in flds", [], lambda h: package(h, notes=[(1, "g", 1, "", b"a\x1fb")])),
    Case(
        "an .apkg whose notes are an endless view",
        [],
        lambda h: package(
            h,
            notes_sql="CREATE VIEW notes AS WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n) SELECT id, 'g' AS guid, 1 AS mid, '' AS tags, 'a' AS flds FROM n",
        ),
    ),
    Case("an .apkg bomb (300 MiB of zeros, 300 KB packed)", [], lambda h: package(h, big=300)),
    Case(
        "an .apkg repeating an unclosed code block 200,000 times",
        [],
        lambda h: package(h, notes=[(1, "g", 1, "", '<div class="kb-code" data-lang="py">' * 200_000 + "\x1fback")]),
    ),  # refused: far too long a field
    Case(
        "an .apkg of 20,001 notes",
        [],
        lambda h: package(h, notes=[(i, f"g{i}", 1, "", f"f{i}\x1fb{i}") for i in range(20_001)]),
    ),
    Case(
        "not a zip at all",
        [],
        lambda h: ((h / "bad.apkg").write_bytes(b"PK\x03\x04" + b"\xff" * 99), ["import", str(h / "bad.apkg")])[1],
    ),
    Case(
        "a damaged search index",
        ["search", "note"],
        synced(lambda h: damage(h, "concept_fts_data", every_page=False)),
        expect=0,
    ),
    Case("a damaged review log", ["stats"], synced(lambda h: damage(h, "review_log", every_page=True))),
    Case(
        "the command after a damaged review log was moved aside",
        ["stats"],
        synced(lambda h: (damage(h, "review_log", every_page=True), kb(h, ["stats"])) and None),
        expect=0,
    ),
    Case("kb doctor after a damaged database", ["doctor"], synced(lambda h: damage(h, "card", every_page=True))),
    Case("a database file of garbage", ["stats"], lambda h: (h / "kb.sqlite").write_bytes(b"garbage" * 1000) and None),
    Case("an empty database file", ["doctor"], lambda h: (h / "kb.sqlite").write_bytes(b"") and None),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case counts as a hang")
    args = parser.parse_args()
    failures = tracebacks = hangs = 0
    for case in CASES:
        home = Path(tempfile.mkdtemp(prefix="kb-attack-"))
        try:
            (home / "notes").mkdir(parents=True)
            extra = case.setup(home)
            command = (extra or []) + case.args
            started = time.monotonic()
            try:
                done = kb(home, command, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                hangs += 1
                failures += 1
                print(f"HANG       {case.name}: kb {' '.join(command)[:60]} ran past {args.timeout:g} s")
                continue
            seconds = time.monotonic() - started
            traceback = "Traceback (most recent call last)" in done.stderr
            tracebacks += traceback
            ok = not traceback and done.returncode == case.expect
            failures += not ok
            first = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or [""])[0]
            verdict = "ok" if ok else "TRACEBACK" if traceback else f"EXIT {done.returncode}"
            print(f"{verdict:10s} {case.name} ({seconds:.1f} s, exit {done.returncode}): {first[:150]}")
        finally:
            for path in home.rglob("*"):
                try:
                    os.chmod(path, 0o700) if path.is_dir() and not path.is_symlink() else None
                except OSError:
                    pass
            shutil.rmtree(home, ignore_errors=True)
    print(f"{len(CASES)} cases: {tracebacks} tracebacks, {hangs} hangs, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
