"""The daily quiz end to end: queue limits, siblings, prerequisites, answers, undo, stats, a month
of a simulated learner, and kill -9 during `kb quiz --plain`."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from helpers import FIXED_NOW, Clock, write_concept

from kb.config import Settings
from kb.service import KnowledgeBase

START = datetime(2026, 3, 1, 14, 0, tzinfo=timezone.utc)  # 09:00 in New York


CARDS = (
    "cards:\n"
    "  - {type: basic, id: b, front: 'Front?', back: Back.}\n"
    "  - {type: typed, id: t, question: 'Type it?', answer: 'it|that'}\n"
)


def make_kb(tmp_path, deck, clock, **settings) -> KnowledgeBase:
    options = {"timezone": "America/New_York", **settings}
    return KnowledgeBase(Settings(home=tmp_path / "home", bundled_content=deck, **options), clock=clock)


def fill_deck(deck, n: int, *, extra: str = CARDS) -> None:
    for i in range(n):
        write_concept(deck, f"c{i:03d}", extra=extra)


def db_rows(kb, sql: str, *params):
    conn = sqlite3.connect(kb.settings.db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_new_cards_limited_and_one_per_concept(tmp_path, deck):
    fill_deck(deck, 30)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock, new_per_day=5) as kb:
        kb.sync()
        queue = kb.due_queue()
        assert [e.state for e in queue] == ["new"] * 5
        assert len({e.concept_id for e in queue}) == 5  # siblings never share a day
        first = queue[0]
        kb.answer(first.card_id, 3)
        after = kb.due_queue()
        # The learning card comes back within the learn-ahead window; 4 new remain today.
        assert sum(e.state == "new" for e in after) == 4
        assert all(e.concept_id != first.concept_id or e.card_id == first.card_id for e in after)


def test_siblings_buried_for_the_rest_of_the_day(tmp_path, deck):
    fill_deck(deck, 1)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock) as kb:
        kb.sync()
        (entry,) = kb.due_queue()
        kb.answer(entry.card_id, 4)  # easy: straight to review, due in days
        assert kb.due_queue() == []  # the concept's other cards wait for tomorrow
        clock.advance(days=1)
        assert [e.concept_id for e in kb.due_queue()] == ["c000"]


def test_prerequisites_gate_new_cards(tmp_path, deck):
    write_concept(deck, "a-advanced", extra="prerequisites: [z-basic]\n")
    write_concept(deck, "z-basic")
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock) as kb:
        kb.sync()
        assert [e.concept_id for e in kb.due_queue()] == ["z-basic"]
        kb.answer(kb.due_queue()[0].card_id, 3)
        clock.advance(days=1)
        assert "a-advanced" in {e.concept_id for e in kb.due_queue()}


def test_answer_writes_state_and_log_together_and_undo_restores_exactly(tmp_path, deck):
    fill_deck(deck, 1)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock) as kb:
        kb.sync()
        card_id = kb.due_queue()[0].card_id
        first = kb.answer(card_id, 3, duration_ms=1234)
        clock.advance(minutes=15)
        before_state = db_rows(kb, "SELECT * FROM card_state")
        before_log = db_rows(kb, "SELECT * FROM review_log")
        second = kb.answer(card_id, 1)
        assert len(db_rows(kb, "SELECT * FROM review_log")) == 2
        assert kb.undo(first.review_id) is None  # not its card's newest answer: a later one depends on it
        assert kb.undo(second.review_id) == card_id
        assert db_rows(kb, "SELECT * FROM card_state") == before_state
        assert db_rows(kb, "SELECT * FROM review_log") == before_log
        assert kb.undo(first.review_id) == card_id
        assert db_rows(kb, "SELECT * FROM card_state") == []
        assert kb.undo(first.review_id) is None
        (log,) = before_log
        assert log[1:5] == (log[1], 3, START.isoformat(timespec="microseconds"), 1234)


def test_intervals_shown_match_what_answering_gives(tmp_path, deck):
    fill_deck(deck, 1)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock) as kb:
        kb.sync()
        item = kb.next_quiz_item()
        assert set(item.intervals) == {1, 2, 3, 4}
        outcome = kb.answer(item.card.card_id, 4)
        assert outcome.interval == item.intervals[4]


def test_leech_is_suspended_after_eight_lapses(tmp_path, deck):
    fill_deck(deck, 1)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock) as kb:
        kb.sync()
        card_id = kb.due_queue()[0].card_id
        kb.answer(card_id, 4)
        leech = False
        for _ in range(8):
            clock.advance(days=60)
            leech = kb.answer(card_id, 1).leech
            clock.advance(minutes=20)
            kb.answer(card_id, 3)
        assert leech
        assert db_rows(kb, "SELECT suspended, leech FROM card_state") == [(1, 1)]
        clock.advance(days=400)
        assert card_id not in {e.card_id for e in kb.due_queue()}
        assert kb.stats()["cards_suspended"] == 1


def test_rollover_and_dst_day_boundaries(tmp_path, deck):
    """I1/I2 through the service: 03:59 and 04:00 local are different study days; the study day
    that contains New York's spring-forward (2026-03-08) lasts 23 hours."""
    from datetime import date

    clock = Clock(datetime(2026, 3, 2, 8, 59, tzinfo=timezone.utc))  # 03:59 EST
    with make_kb(tmp_path, deck, clock) as kb:
        before, _, _ = kb.study_day_bounds()
        clock.advance(minutes=1)  # 04:00 EST
        after, _, _ = kb.study_day_bounds()
        assert (before, after) == (date(2026, 3, 1), date(2026, 3, 2))
        clock.now = datetime(2026, 3, 8, 7, 59, tzinfo=timezone.utc)  # 02:59 EST, before the rollover
        day, start, end = kb.study_day_bounds()
        assert day == date(2026, 3, 7)
        assert end - start == timedelta(hours=23)
        assert end == datetime(2026, 3, 8, 8, 0, tzinfo=timezone.utc)  # 04:00 EDT


def test_stats_json_shape(tmp_path, deck):
    fill_deck(deck, 3)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock) as kb:
        kb.sync()
        for entry in kb.due_queue():
            kb.answer(entry.card_id, 3)
        stats = kb.stats()
        assert set(stats) == {"cards_total", "cards_new", "cards_learning", "cards_review", "cards_suspended",
                              "reviews_total", "reviews_today", "due_today", "retention_30d", "streak_days",
                              "forecast_7d", "parameters"}
        assert stats["cards_total"] == 3 * 4 and stats["reviews_today"] == 3 and stats["streak_days"] == 1
        assert stats["cards_learning"] == 3 and stats["cards_new"] == 9
        assert len(stats["forecast_7d"]) == 7 and stats["parameters"] == "default"


def test_optimize_below_minimum_keeps_defaults(tmp_path, deck):
    fill_deck(deck, 1)
    with make_kb(tmp_path, deck, Clock(START)) as kb:
        kb.sync()
        result = kb.optimize()
        assert not result["optimized"] and "at least 512" in result["message"]
        assert kb.stats()["parameters"] == "default"


def test_simulated_month_respects_limits_and_retention(tmp_path, deck):
    """A learner recalls each card with the probability FSRS predicts; a month of daily quizzes."""
    from kb.scheduler import CardState, retrievability

    fill_deck(deck, 400, extra="")  # definition + reverse cards: 800 cards
    clock = Clock(START)
    rng = random.Random(7)
    new_limit, review_limit = 20, 60
    recalled = total = 0
    with make_kb(tmp_path, deck, clock, new_per_day=new_limit, reviews_per_day=review_limit) as kb:
        kb.sync()
        config = kb.scheduler_config()
        for day in range(30):
            clock.now = START + timedelta(days=day)
            new_today = reviews_today = 0
            for _ in range(500):
                queue = kb.due_queue()
                if not queue:
                    break
                entry = queue[0]
                if entry.state == "new":
                    new_today += 1
                    p = 0.5
                else:
                    (raw,) = db_rows(kb, "SELECT data_json FROM card_state s JOIN card c ON c.pk = s.card_pk "
                                         "WHERE c.card_id = ?", entry.card_id)
                    p = retrievability(CardState.from_dict(json.loads(raw[0])), clock.now, config=config)
                    if entry.state == "review":
                        reviews_today += 1
                ok = rng.random() < p
                if entry.state == "review":
                    recalled += ok
                    total += 1
                kb.answer(entry.card_id, 3 if ok else 1)
                clock.advance(seconds=20)
            assert new_today <= new_limit and reviews_today <= review_limit
        assert total > 300
        assert abs(recalled / total - 0.9) < 0.05, recalled / total
        stats = kb.stats()
        assert stats["streak_days"] == 30


def _quiz_env(tmp_path, deck) -> dict:
    env = {**os.environ, "KB_HOME": str(tmp_path / "home"), "KB_CONTENT": str(deck), "KB_TZ": "UTC"}
    subprocess.run([sys.executable, "-m", "kb", "sync"], env=env, check=True, capture_output=True)
    return env


def test_kill_9_during_plain_quiz_keeps_exactly_k_answers(tmp_path, deck):
    fill_deck(deck, 10)
    env = _quiz_env(tmp_path, deck)
    k = 3
    recorded, proc = _plain_session(env, ["my answer", "3"] * 10, kill_after=k)
    assert recorded == k and proc.returncode == -signal.SIGKILL
    conn = sqlite3.connect(tmp_path / "home" / "kb.sqlite")
    try:
        assert conn.execute("SELECT count(*) FROM review_log").fetchone()[0] == k
        assert conn.execute("SELECT count(*) FROM card_state").fetchone()[0] == k
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_plain_session_protocol(tmp_path, deck):
    write_concept(deck, "only", extra="cards:\n  - {type: typed, id: t, question: 'Type it?', answer: 'it|that'}\n")
    env = _quiz_env(tmp_path, deck)
    # definition card: any answer line, then rating "good"; then "q" at the next prompt.
    proc = subprocess.run([sys.executable, "-m", "kb", "quiz", "--plain", "--limit", "1"], env=env,
                          input="whatever\ngood\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "answer> " in out and "--- answer ---" in out and "recorded: good" in out
    assert "1 reviewed, 1 recalled" in out
    # EOF at the first prompt ends the session cleanly, nothing stored.
    proc = subprocess.run([sys.executable, "-m", "kb", "quiz", "--plain"], env=env, input="",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "0 reviewed" in proc.stdout


def _plain_session(env, answers: list[str], kill_after: int | None = None):
    """Drive `kb quiz --plain`, answering each prompt in turn; optionally kill -9 after k answers.

    Returns (answers recorded as the program reported them, the finished process).
    """
    proc = subprocess.Popen([sys.executable, "-u", "-m", "kb", "quiz", "--plain"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    pending, buffer, recorded = list(answers), b"", 0
    try:
        while True:
            chunk = proc.stdout.read1(4096)
            if not chunk:
                break
            buffer += chunk
            # "recorded:" is printed only after the answer's transaction committed.
            recorded += buffer.count(b"recorded:")
            buffer = buffer.replace(b"recorded:", b"")
            if kill_after is not None and recorded >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
            while b"> " in buffer:
                _, _, buffer = buffer.partition(b"> ")
                proc.stdin.write((pending.pop(0) if pending else "q").encode() + b"\n")
                proc.stdin.flush()
        proc.wait(timeout=60)
    finally:
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except BrokenPipeError:
                pass
    return recorded, proc


def test_optimize_fits_and_uses_parameters(tmp_path, deck):
    """With enough history the optimizer runs in a subprocess; its parameters are stored and used."""
    pytest.importorskip("pandas")
    fill_deck(deck, 40, extra="")
    clock = Clock(START)
    rng = random.Random(3)
    with make_kb(tmp_path, deck, clock) as kb:
        kb.sync()
        cards = [e.card_id for e in kb.due_queue()] + [f"c{i:03d}/reverse" for i in range(40)]
        rows = []
        for n, card_id in enumerate(cards * 10):  # 10 reviews a card, growing gaps, ~85% recalled
            rows.append((card_id, 1 if rng.random() < 0.15 else 3, START + timedelta(days=n // len(cards) * 3,
                                                                                     minutes=n % len(cards))))
        conn = sqlite3.connect(kb.settings.db_path)
        with conn:
            for card_id, rating, at in rows:
                (pk,) = conn.execute("SELECT pk FROM card WHERE card_id = ?", (card_id,)).fetchone()
                conn.execute("INSERT INTO review_log (card_pk, rating, reviewed_at, duration_ms, content_hash, was_new) "
                             "VALUES (?, ?, ?, 4000, 'h', 0)", (pk, rating, at.isoformat(timespec="microseconds")))
        conn.close()
        result = kb.optimize()
        assert result["optimized"], result
        assert len(result["parameters"]) == 21
        assert kb.stats()["parameters"] == "optimized"
        assert kb.scheduler_config().parameters == tuple(result["parameters"])


# --- two quizzes at once ---------------------------------------------------------------------------


def test_a_card_answered_in_another_session_is_not_answered_twice(settings, deck):
    from kb.service import AnsweredElsewhere, KnowledgeBase

    for i in range(3):
        write_concept(deck, f"twice-{i}")
    clock = lambda: FIXED_NOW  # noqa: E731
    with KnowledgeBase(settings, clock=clock) as first, KnowledgeBase(settings, clock=clock) as second:
        first.sync()
        shown_first, shown_second = first.next_quiz_item(), second.next_quiz_item()
        assert shown_first.card.card_id == shown_second.card.card_id
        first.answer(shown_first.card.card_id, 3, shown_state=shown_first.shown_state)
        with pytest.raises(AnsweredElsewhere, match="answered in another session"):
            second.answer(shown_second.card.card_id, 1, shown_state=shown_second.shown_state)
        assert second.stats()["reviews_total"] == 1
        following = second.next_quiz_item()  # the second session goes on with what is still due
        assert following is not None and following.card.card_id != shown_first.card.card_id


def _read_until(stream, marker: str, timeout: float = 60) -> str:
    import select

    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"timed out waiting for {marker!r}; got {seen!r}"
        chunk = os.read(stream.fileno(), 4096).decode()
        assert chunk, f"the process ended before {marker!r}: {seen!r}"
        seen += chunk
    return seen


@pytest.mark.timeout(120)
def test_two_plain_quizzes_at_once(tmp_path, deck):
    for i in range(3):
        write_concept(deck, f"twice-{i}")
    env = {**os.environ, "KB_HOME": str(tmp_path / "home"), "KB_BUNDLED_CONTENT": str(deck), "KB_TZ": "UTC"}
    env.pop("KB_CONTENT", None)
    assert subprocess.run([sys.executable, "-m", "kb", "sync"], env=env, capture_output=True).returncode == 0
    quiz = [sys.executable, "-m", "kb", "quiz", "--plain"]
    pipes = {"env": env, "stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    with subprocess.Popen(quiz, **pipes) as a, subprocess.Popen(quiz, **pipes) as b:
        try:
            first_a, first_b = _read_until(a.stdout, "answer> "), _read_until(b.stdout, "answer> ")
            assert "[1] twice-0/definition" in first_a and "[1] twice-0/definition" in first_b
            for proc in (a, b):
                proc.stdin.write(b"\n")
                proc.stdin.flush()
                _read_until(proc.stdout, "> ")  # the rating prompt
            a.communicate(b"3\nq\n", timeout=60)
            out_b = b.communicate(b"3\nq\n", timeout=60)[0].decode()
        finally:
            for proc in (a, b):
                if proc.poll() is None:
                    proc.kill()
    assert "not recorded: twice-0/definition was answered in another session" in out_b
    conn = sqlite3.connect(tmp_path / "home" / "kb.sqlite")
    try:
        assert conn.execute("SELECT count(*) FROM review_log").fetchone()[0] == 1
    finally:
        conn.close()
