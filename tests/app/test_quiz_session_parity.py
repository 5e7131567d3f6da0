"""`kb quiz --plain` and the TUI's quiz screen are one quiz session: driven through the same answers
and undos on the same deck, they leave the same review log."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from kb.config import Settings
from kb.service.base import utc_now

SIZE = (110, 36)
TYPED_ANSWER = "cross-correlation"  # the typed card of the test deck; other cards ignore the line
ACTIONS = [3, 1, "u", 4, 2, 3, 1, 3, 4]  # a rating, or u: take back the newest answer


def _review_log(db_path) -> list[tuple[str, int]]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(
            "SELECT c.card_id, r.rating FROM review_log r JOIN card c ON c.pk = r.card_pk ORDER BY r.id"
        ).fetchall()
    finally:
        conn.close()


def _cli_session(tmp_path, deck) -> list[tuple[str, int]]:
    home = tmp_path / "cli-home"
    lines = []
    for action in ACTIONS:
        lines += [TYPED_ANSWER, str(action)]  # the answer line, then the rating (or u) line
    env = {**os.environ, "KB_HOME": str(home), "KB_BUNDLED_CONTENT": str(deck), "KB_TZ": "UTC"}
    proc = subprocess.run(
        [sys.executable, "-m", "kb", "quiz", "--plain"],
        input="\n".join(lines + ["q"]) + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "undid the answer to" in proc.stdout
    return _review_log(home / "kb.sqlite")


async def test_cli_and_tui_leave_the_same_review_log(tmp_path, app_settings, deck, monkeypatch):
    from textual.widgets import Input

    from app.app import KBApp
    from app.screens.quiz import QuizScreen

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None, raising=False)
    settings = Settings(home=tmp_path / "tui-home", bundled_content=deck, timezone="UTC")
    app = KBApp(settings, clock=utc_now, watch=False, keep_running_on_error=False)

    async def settle(pilot) -> None:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QuizScreen)
        for action in ACTIONS:
            if screen.finished:
                break
            if action == "u":
                await pilot.press("u")
            else:
                card = screen.item.card
                if card.auto_graded and not card.options:
                    await pilot.press(*TYPED_ANSWER, "enter")
                else:
                    await pilot.press("space")
                await pilot.press(str(action))
            await settle(pilot)
    tui = _review_log(settings.db_path)
    cli = _cli_session(tmp_path, deck)
    assert len(tui) == len([a for a in ACTIONS if a != "u"]) - 1  # the undone answer is gone
    assert tui == cli
