"""The TUI never waits for ever: a knowledge base that cannot be opened is shown as such, with a way
to retry or quit; a note that once crashed the load is one file's error; ctrl+q always ends the app."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from app.screens.open_failed import OpenFailedScreen
from helpers import require_or_skip, settle, write_concept

REPO = Path(__file__).resolve().parents[2]


def _damaged(app_settings) -> None:
    home = app_settings.home
    home.mkdir(parents=True)
    (home / "kb.sqlite").write_bytes(b"this is not a database at all" * 100)


async def test_a_damaged_database_is_shown_and_retry_opens_a_new_one(make_app, app_settings):
    _damaged(app_settings)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, OpenFailedScreen)
        assert app.kb is None and app.sub_title == "could not open the knowledge base"
        shown = str(app.screen.query_one("#open-error").render())
        assert "moved it aside" in shown and "kb.sqlite.corrupt-" in shown
        await pilot.press("r")
        await settle(app, pilot)
        assert app.kb is not None and app.open_error is None
        messages = [n.message for n in app._notifications]
        assert any("a damaged database was moved aside" in m and "--dismiss" in m for m in messages), messages
        assert app.sub_title.endswith("due today")


async def test_browsing_anyway_says_why_a_key_cannot_work(make_app, app_settings):
    _damaged(app_settings)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not isinstance(app.screen, OpenFailedScreen)
        for key in ("q", "s", "a"):
            await pilot.press(key)
            await settle(app, pilot)
            assert "The knowledge base could not be opened: " in [n.message for n in app._notifications][-1]


async def test_a_note_with_a_huge_integer_is_that_files_error_not_a_stuck_app(make_app, deck):
    write_concept(deck, "huge-number", extra="pitfalls: [" + "1" * 5000 + "]\n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.kb is not None and app.sub_title.endswith("due today")
        (note,) = [n for n in app._notifications if "reads as a number" in n.message]
        assert "huge-number.yaml:11:12:" in note.message


async def test_ctrl_q_ends_the_app_while_opening_is_stuck(make_app, monkeypatch):
    from kb.service import KnowledgeBase

    release = threading.Event()
    monkeypatch.setattr(KnowledgeBase, "sync", lambda self: release.wait(60))
    app = make_app()
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.3)
            assert app.sub_title == "opening…"
            await pilot.press("ctrl+q")
            await pilot.pause(0.2)
            assert app._exit_renderables is not None or app.return_code is not None or not app.is_running
    finally:
        release.set()


def test_the_real_app_exits_after_ctrl_q_even_if_a_worker_thread_never_returns(tmp_path):
    """In a terminal (tmux): the sync never returns, ctrl+q still ends the process within seconds."""
    tmux = shutil.which("tmux")
    if tmux is None:
        require_or_skip("tmux", "tmux is not installed, so the app cannot be run in a terminal")
    hook = tmp_path / "hook"
    hook.mkdir()
    # Loaded by Python at start (sitecustomize): every sync hangs, as on a dead network mount.
    (hook / "sitecustomize.py").write_text(
        textwrap.dedent("""
        import time
        import kb.service
        kb.service.KnowledgeBase.sync = lambda self: time.sleep(10_000)
    """)
    )
    pid_file = tmp_path / "pid"
    script = f"import os; open({str(pid_file)!r}, 'w').write(str(os.getpid())); from kb.cli import main; main([])"
    env = {**os.environ, "PYTHONPATH": f"{hook}:{REPO}", "KB_HOME": str(tmp_path / "home"), "TERM": "xterm-256color"}
    session = f"kb-stuck-{os.getpid()}"
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "100", "-y", "30", sys.executable, "-c", script],
        check=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not pid_file.exists() or "opening" not in _pane(tmux, session)):
            time.sleep(0.2)
        assert "opening" in _pane(tmux, session)
        pid = int(pid_file.read_text())
        subprocess.run([tmux, "send-keys", "-t", session, "C-q"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{pid}"), "the app did not exit"
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)


def _pane(tmux: str, session: str) -> str:
    done = subprocess.run([tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True)
    return done.stdout


@pytest.fixture(autouse=True)
def _no_real_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KB_HOME", str(tmp_path / "cli-home"))


# --- crashes a new user met ------------------------------------------------------------------------


def test_page_down_on_an_option_list_not_laid_out_yet_does_nothing():
    """The Textual bug behind ctrl+p then PageDown, reproduced without kb (guarded by app.textual_fixes)."""
    import asyncio

    from textual.app import App
    from textual.widgets import OptionList

    import app.textual_fixes  # noqa: F401  (applied on import of app.app too)

    app.textual_fixes.apply()

    class Repro(App):
        def compose(self):
            yield OptionList()

        def on_mount(self) -> None:
            options = self.query_one(OptionList)
            options.add_options([f"option {i}" for i in range(100)])
            options.highlighted = 0
            options.action_page_down()

    async def run() -> int | None:
        repro = Repro()
        async with repro.run_test() as pilot:
            await pilot.pause()
            await pilot.press("pagedown")
            assert repro.query_one(OptionList).highlighted > 0
        return repro.return_code

    assert asyncio.run(run()) in (None, 0)


async def test_ctrl_p_then_page_down_at_once(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        for _ in range(5):
            await pilot.press("ctrl+p", "pagedown", "pagedown")
            await pilot.pause(0.05)
            await pilot.press("escape")
        assert app.return_code is None and app.is_running


async def test_editing_or_running_a_note_whose_file_was_deleted(make_app, app_settings):
    from app.screens.concept import ConceptScreen

    note = write_concept(app_settings.notes_dir, "my-note", extra="snippet:\n  code: |\n    x = 1\n")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        app.push_screen(ConceptScreen("my-note"))
        await settle(app, pilot)
        note.unlink()
        await pilot.press("e")
        await settle(app, pilot)
        assert isinstance(app.screen, ConceptScreen) and app.is_running
        assert "the file of my-note is gone" in [n.message for n in app._notifications][-1]
        app.kb.sync()  # retired now
        await pilot.press("r")
        await settle(app, pilot)
        messages = [n.message for n in app._notifications]
        assert any("my-note is retired: its file is gone" in m for m in messages), messages
        assert not any("has no snippet" in m for m in messages)


async def test_an_unexpected_exception_is_shown_logged_and_the_app_goes_on(make_app, app_settings):
    app = make_app(keep_running_on_error=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)

        def broken() -> None:
            raise ZeroDivisionError("a bug in a handler")

        app.call_later(broken)
        await settle(app, pilot)
        assert app.is_running and app.return_code is None
        (note,) = [n for n in app._notifications if n.title == "Unexpected error"]
        assert note.message.startswith("ZeroDivisionError: a bug in a handler (the details are in ")
        (log,) = (app_settings.home / "logs").glob("kb-*.log")
        assert "ZeroDivisionError: a bug in a handler" in log.read_text() and "Traceback" in log.read_text()
        await pilot.press("q")  # still usable
        await settle(app, pilot)
        assert type(app.screen).__name__ == "QuizScreen"
