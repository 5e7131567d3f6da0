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
from pathlib import Path

import pytest

from helpers import FIXED_NOW, Clock, backend_url, db_execute, write_concept
from kb.config import Settings
from kb.service import KnowledgeBase

START = datetime(2026, 3, 1, 14, 0, tzinfo=timezone.utc)  # 09:00 in New York


CARDS = (
    "cards:\n"
    "  - {type: basic, id: b, front: 'Front?', back: Back.}\n"
    "  - {type: typed, id: t, question: 'Type it?', answer: 'it|that'}\n"
)

pytestmark = pytest.mark.both_backends


def make_kb(tmp_path, deck, clock, **settings) -> KnowledgeBase:
    options = {"timezone": "America/New_York", **settings}
    options.setdefault("database_url", backend_url())
    return KnowledgeBase(Settings(home=tmp_path / "home", bundled_content=deck, **options), clock=clock)


def fill_deck(deck, n: int, *, extra: str = CARDS) -> None:
    for i in range(n):
        write_concept(deck, f"c{i:03d}", extra=extra)


def db_rows(kb, sql: str, *params):
    return db_execute(kb, sql, params)


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


def test_leech_action_tag_keeps_the_card_in_the_quiz(tmp_path, deck):
    fill_deck(deck, 1)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock, leech_lapses=2, leech_action="tag") as kb:
        kb.sync()
        card_id = kb.due_queue()[0].card_id
        kb.answer(card_id, 4)
        outcomes = []
        for _ in range(2):
            clock.advance(days=60)
            outcomes.append(kb.answer(card_id, 1))
            clock.advance(minutes=20)
            kb.answer(card_id, 3)
        assert [o.leech for o in outcomes] == [False, True]
        assert outcomes[-1].leech_message == "leech: marked after repeated lapses; it stays in the quiz"
        assert db_rows(kb, "SELECT suspended, leech FROM card_state") == [(0, 1)]
        clock.advance(days=400)
        assert card_id in {e.card_id for e in kb.due_queue()}


def test_relearning_steps_setting_is_used(tmp_path, deck):
    fill_deck(deck, 1)
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock, relearning_steps="1h 1d") as kb:
        kb.sync()
        card_id = kb.due_queue()[0].card_id
        kb.answer(card_id, 4)
        clock.advance(days=60)
        outcome = kb.answer(card_id, 1)
        assert outcome.interval == "1h"


def test_rollover_and_dst_day_boundaries(tmp_path, deck):
    """The rollover and DST day boundaries through the service: 03:59 and 04:00 local are different study days; the study day
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
        assert set(stats) == {
            "cards_total",
            "cards_new",
            "cards_learning",
            "cards_review",
            "cards_suspended",
            "reviews_total",
            "reviews_today",
            "due_today",
            "retention_30d",
            "streak_days",
            "forecast_7d",
            "parameters",
            "true_retention",
        }
        assert stats["cards_total"] == 3 * 4 and stats["reviews_today"] == 3 and stats["streak_days"] == 1
        assert stats["cards_learning"] == 3 and stats["cards_new"] == 9
        assert len(stats["forecast_7d"]) == 7 and stats["parameters"] == "default"


def test_optimize_below_minimum_keeps_defaults(tmp_path, deck):
    fill_deck(deck, 1)
    with make_kb(tmp_path, deck, Clock(START)) as kb:
        kb.sync()
        kb.answer(kb.due_queue()[0].card_id, 3)
        result = kb.optimize()
        assert result["fitted"] is False and result["chosen"] == "default" and result["evaluations"] == {}
        assert result["message"] == (
            "nothing fitted: 0 of your 1 reviews came on a later study day than the card's "
            "previous review, and a fit needs at least 400; keeping the default parameters"
        )
        assert kb.stats()["parameters"] == "default"


def _learner_module():
    """bench/learners.py: memory written from FSRS-6's equations, sharing no code with kb."""
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "bench" / "learners.py"
    spec = importlib.util.spec_from_file_location("bench_learners", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_simulated_month_respects_limits_and_retention(tmp_path, deck):
    """A simulated learner (its own memory model, not kb's retrievability) takes a month of evening
    quizzes, each session a minute earlier than the one before: the limits hold, the
    realised retention is near the target, and kb's idea of each memory matches the learner's."""
    learners = _learner_module()
    learner = learners.Learner(learners.DEFAULT_WEIGHTS)
    fill_deck(deck, 300, extra="")  # definition + reverse cards: 600 cards
    origin = datetime(2026, 3, 1, 5, tzinfo=timezone.utc)  # midnight in New York: times below are days since
    rng = random.Random(7)
    new_limit, review_limit = 20, 60
    memories: dict[str, object] = {}
    recalled = total = 0
    clock = Clock(START)
    with make_kb(tmp_path, deck, clock, new_per_day=new_limit, reviews_per_day=review_limit) as kb:
        kb.sync()
        for day in range(30):
            # 20:00 New York time, a minute earlier each day
            clock.now = origin + timedelta(days=day, hours=20, minutes=-day)
            new_today = reviews_today = 0
            for _ in range(500):
                queue = kb.due_queue()
                if not queue:
                    break
                entry = queue[0]
                now = (clock.now - origin).total_seconds() / 86400
                memory = memories.get(entry.card_id)
                rating = learner.rating(memory, now, rng.random(), rng.random())
                memories[entry.card_id] = learner.remember(memory, rating, now)
                if entry.state == "new":
                    new_today += 1
                elif entry.state == "review":
                    reviews_today += 1
                    recalled += rating > 1
                    total += 1
                kb.answer(entry.card_id, rating)
                clock.advance(seconds=20)
            assert new_today <= new_limit and reviews_today <= review_limit
        assert total > 300
        assert abs(recalled / total - 0.9) < 0.04, recalled / total
        assert kb.stats()["streak_days"] == 30
        rows = db_rows(kb, "SELECT c.card_id, s.data_json FROM card_state s JOIN card c ON c.pk = s.card_pk")
    # The learner's weights are FSRS-6's defaults, which kb uses too, so kb's stability should track the
    # learner's own. Counting elapsed time in 24-hour periods made every review in these ever-earlier
    # sessions a day short, and kb's stabilities fell to 0.65-0.93 of the learner's.
    states = {card_id: json.loads(raw) for card_id, raw in rows}
    ratios = sorted(
        state["stability"] / memories[card_id].stability
        for card_id, state in states.items()
        if state["state"] == "review" and state["reps"] >= 4
    )
    assert len(ratios) > 100
    assert 0.97 < ratios[len(ratios) // 10] and ratios[len(ratios) * 9 // 10] < 1.03, ratios


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
    with make_kb(tmp_path, deck, lambda: START) as kb:
        assert db_rows(kb, "SELECT count(*) FROM review_log") == [(k,)]
        assert db_rows(kb, "SELECT count(*) FROM card_state") == [(k,)]
    if backend_url() is None:
        conn = sqlite3.connect(tmp_path / "home" / "kb.sqlite")
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()


def test_plain_session_protocol(tmp_path, deck):
    write_concept(deck, "only", extra="cards:\n  - {type: typed, id: t, question: 'Type it?', answer: 'it|that'}\n")
    env = _quiz_env(tmp_path, deck)
    # definition card: any answer line, then rating "good"; then "q" at the next prompt.
    proc = subprocess.run(
        [sys.executable, "-m", "kb", "quiz", "--plain", "--limit", "1"],
        env=env,
        input="whatever\ngood\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "answer> " in out and "--- answer ---" in out and "recorded: good" in out
    assert "1 reviewed, 1 recalled" in out
    # EOF at the first prompt ends the session cleanly, nothing stored.
    proc = subprocess.run(
        [sys.executable, "-m", "kb", "quiz", "--plain"], env=env, input="", capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "0 reviewed" in proc.stdout


def _plain_session(env, answers: list[str], kill_after: int | None = None):
    """Drive `kb quiz --plain`, answering each prompt in turn; optionally kill -9 after k answers.

    Returns (answers recorded as the program reported them, the finished process).
    """
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "kb", "quiz", "--plain"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
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


def _insert_reviews(kb, rows) -> None:
    for card_id, rating, at in rows:
        ((pk,),) = db_execute(kb, "SELECT pk FROM card WHERE card_id = ?", (card_id,))
        db_execute(
            kb,
            "INSERT INTO review_log (card_pk, rating, reviewed_at, duration_ms, content_hash, was_new, user_name) "
            "VALUES (?, ?, ?, 4000, 'h', FALSE, ?)",
            (pk, rating, at.isoformat(timespec="microseconds"), kb.settings.user_name),
        )


def test_optimize_fits_and_uses_parameters(tmp_path, deck):
    """A learner who forgets far faster than the defaults expect: the fit predicts the history better
    than the defaults, is stored and used, and the report gives both evaluations."""
    pytest.importorskip("torch")
    fill_deck(deck, 40, extra="")
    clock = Clock(START)
    rng = random.Random(3)
    with make_kb(tmp_path, deck, clock) as kb:
        kb.sync()
        cards = [card_id for (card_id,) in db_rows(kb, "SELECT card_id FROM card ORDER BY card_id")]
        rows = []
        for n, card_id in enumerate(cards * 10):  # 10 reviews a card, 3 days apart, ~55% recalled
            rows.append(
                (
                    card_id,
                    1 if rng.random() < 0.45 else 3,
                    START + timedelta(days=n // len(cards) * 3, minutes=n % len(cards)),
                )
            )
        _insert_reviews(kb, rows)
        steps = []
        result = kb.optimize(on_progress=lambda done, total: steps.append((done, total)))
        assert result["fitted"] and result["chosen"] == "fitted", result
        assert steps[0] == (10, 400) and steps[-1] == (400, 400)
        assert result["inter_day_reviews"] == len(cards) * 9 >= 400 and result["reviews"] == len(cards) * 10
        assert set(result["evaluations"]) == {"default", "fitted"}
        assert result["evaluations"]["fitted"]["log_loss"] < result["evaluations"]["default"]["log_loss"]
        assert len(result["parameters"]) == 21
        assert kb.stats()["parameters"] == "optimized"
        assert kb.scheduler_config().parameters == tuple(result["parameters"])


def test_true_retention_counts_reviews_on_later_study_days_by_week_and_month(tmp_path, deck, capsys):
    """Passed / all reviews on a later study day than the card's previous one: first answers and
    same-day steps are left out; a review a few minutes earlier in the evening than the day before
    counts (it is a day later)."""
    fill_deck(deck, 2, extra="")
    now = datetime(2026, 3, 31, 23, tzinfo=timezone.utc)  # 19:00 in New York on 31 March
    with make_kb(tmp_path, deck, Clock(now), desired_retention=0.85) as kb:
        kb.sync()
        a, b = [card_id for (card_id,) in db_rows(kb, "SELECT card_id FROM card ORDER BY card_id")][:2]
        evening = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # 21:00 on 1 March in New York
        rows = [
            (a, 3, evening),
            (a, 3, evening + timedelta(minutes=10)),  # first answer, then a same-day step
            (a, 3, evening + timedelta(days=1, minutes=-5)),  # next day, 5 minutes earlier: passed
            (a, 1, evening + timedelta(days=3)),  # 4 March: failed
            (a, 3, evening + timedelta(days=3, minutes=10)),  # relearning step, same day
            (b, 3, evening + timedelta(days=27)),  # first answer on 28 March
            (b, 2, evening + timedelta(days=29)),  # 30 March: passed (Hard counts as recalled)
            (b, 3, evening + timedelta(days=29, hours=4)),
        ]  # 01:00 on the 31st, before the 04:00 rollover
        _insert_reviews(kb, rows)
        table = kb.stats()["true_retention"]
    assert table["target"] == 0.85
    assert [(r["period"], r["passed"], r["reviews"]) for r in table["weeks"]] == [
        ("2026-03-25..2026-03-31", 1, 1),
        ("2026-03-18..2026-03-24", 0, 0),
        ("2026-03-11..2026-03-17", 0, 0),
        ("2026-03-04..2026-03-10", 0, 1),
    ]
    assert table["months"][:3] == [
        {"period": "2026-03", "passed": 2, "reviews": 3, "retention": 0.6667},
        {"period": "2026-02", "passed": 0, "reviews": 0, "retention": None},
        {"period": "2026-01", "passed": 0, "reviews": 0, "retention": None},
    ]
    from kb.service import true_retention_lines

    lines = true_retention_lines(table)
    assert lines[0].endswith("target 85%)") and "  2026-03                        2        3      66.7%" in lines
    env = {**os.environ, "KB_HOME": str(tmp_path / "home"), "KB_DESIRED_RETENTION": "0.85"}
    shown = subprocess.run([sys.executable, "-m", "kb", "stats"], env=env, capture_output=True, text=True)
    assert shown.returncode == 0 and "True retention" in shown.stdout and "target 85%" in shown.stdout


def test_optimize_counts_study_days_not_24_hour_periods(tmp_path, deck):
    """Evening reviews a few minutes earlier each day are a day apart: they count as inter-day reviews."""
    fill_deck(deck, 1, extra="")
    with make_kb(tmp_path, deck, Clock(START)) as kb:
        kb.sync()
        card_id = kb.due_queue()[0].card_id
        evening = START.replace(hour=20, minute=0)
        _insert_reviews(kb, [(card_id, 3, evening + timedelta(days=d, minutes=-5 * d)) for d in range(6)])
        result = kb.optimize()
    assert result["inter_day_reviews"] == 5 and "5 of your 6 reviews" in result["message"]


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
    with make_kb(tmp_path, deck, lambda: START) as kb:
        assert db_rows(kb, "SELECT count(*) FROM review_log") == [(1,)]
