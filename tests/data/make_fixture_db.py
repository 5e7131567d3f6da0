"""Write tests/data/db_v<SCHEMA_VERSION>.sqlite3: a small populated database made by the real code.

A tiny deck is synced, a few cards answered (one of them undone), one snippet run recorded and
FSRS parameters stored, with a fixed clock. Run it once per released schema version, before the
version changes, and commit the file; the migration tests open every db_vN.sqlite3 in this folder.

    python tests/data/make_fixture_db.py
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/helpers.py

from helpers import write_concept  # noqa: E402
from kb.config import Settings  # noqa: E402
from kb.service import KnowledgeBase  # noqa: E402
from kb.store.engine import SCHEMA_VERSION  # noqa: E402

START = datetime(2026, 3, 1, 14, 0, tzinfo=timezone.utc)
FIXTURE_USER = "learner"
CARDS = (
    "cards:\n"
    "  - {type: basic, id: b, front: 'Front?', back: Back.}\n"
    "  - {type: typed, id: t, question: 'Type it?', answer: 'it|that'}\n"
)
SNIPPET = "snippet:\n  code: |\n" + textwrap.indent("x = 2 + 2\nassert x == 4\n", "    ")
COMPUTED = "cards:\n  - {type: computed, id: four, question: 'What is x?', answer: 'x'}\n"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def build(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        deck = Path(tmp) / "deck"
        for i in range(4):
            write_concept(deck, f"fixture-{i}", title_zh=f"固定{i}", extra=CARDS)
        write_concept(deck, "fixture-snippet", extra=SNIPPET)
        # Schema 2 on: a third-party deck whose snippet the user trusted (a trusted_snippet row);
        # schema 3 on: with a computed card, whose expression the trust covers too.
        lab = Path(tmp) / "lab"
        write_concept(lab, "fixture-lab", extra=SNIPPET + COMPUTED)
        clock = Clock(START)
        # Schema 5 on: the rows belong to a user; the tests open the fixtures as this one.
        settings = Settings(
            home=Path(tmp) / "home", bundled_content=deck, extra_content=(lab,), timezone="UTC", user=FIXTURE_USER
        )
        with KnowledgeBase(settings, clock=clock) as kb:
            kb.sync()
            kb.trust("lab")
            answered = []
            for rating in (3, 1, 3, 4, 2, 3):
                item = kb.next_quiz_item()
                answered.append(kb.answer(item.card.card_id, rating, duration_ms=1500))
                clock.now += timedelta(minutes=7)
            kb.undo(answered[-1].review_id)  # an undone answer leaves no row
            clock.now += timedelta(days=1)
            item = kb.next_quiz_item()
            kb.answer(item.card.card_id, 3, duration_ms=900)
            (outcome,) = kb.verify(["fixture-snippet"], device="cpu", jobs=1)
            assert outcome.passed, outcome
            from kb.store.reviews import set_setting

            # Schema 4 on: changes by hand (a card_mark row, manual rows in the review log) and a
            # custom-study answer.
            kb.change_cards(["fixture-2/b"], "suspend")
            kb.change_cards(["fixture-3/t"], "flag", 2)
            kb.answer("fixture-3/b", 3, duration_ms=800, custom=True)

            set_setting(kb.engine, "fsrs_parameters", [0.4] * 21)
        source = settings.db_path
        # One self-contained file (no -wal), compacted.
        target.unlink(missing_ok=True)
        src, dst = sqlite3.connect(source), sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.execute("VACUUM")
        finally:
            src.close()
            dst.close()


if __name__ == "__main__":
    out = HERE / f"db_v{SCHEMA_VERSION}.sqlite3"
    build(out)
    conn = sqlite3.connect(out)
    reviews, runs = conn.execute(
        "SELECT (SELECT count(*) FROM review_log), (SELECT count(*) FROM snippet_run)"
    ).fetchone()
    conn.close()
    print(f"wrote {out} ({out.stat().st_size} bytes, {reviews} reviews, {runs} run)")
