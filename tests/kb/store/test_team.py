"""A lab on one PostgreSQL server: two people, each with their own KB_HOME and KB_USER, running `kb`.

A note one of them syncs is seen by the other; each has their own reviews and stats; and when
both answer at once for a while, every answer is stored, once, under its own user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_concept


def _person(tmp_path: Path, name: str, url: str, deck: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "KB_HOME": str(tmp_path / name),
        "KB_USER": name,
        "KB_DATABASE_URL": url,
        "KB_BUNDLED_CONTENT": str(deck),
        "KB_TZ": "UTC",
        "KB_LANG": "en",
        # Plenty of new cards a day, and no waiting on siblings: each person answers many cards.
        "KB_NEW_PER_DAY": "1000",
        "KB_BURY_NEW_SIBLINGS": "false",
    }
    env.pop("KB_CONTENT", None)
    return env


def _kb(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kb", *args], env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


@pytest.mark.timeout(300)
def test_two_people_share_one_server(tmp_path, deck, postgres_url):
    for i in range(6):
        write_concept(deck, f"shared-{i}")
    ada, bo = _person(tmp_path, "ada", postgres_url, deck), _person(tmp_path, "bo", postgres_url, deck)
    assert _kb(ada, "sync").returncode == 0

    # A note Ada writes in her own notes deck, synced by her, is a concept Bo finds.
    write_concept(Path(ada["KB_HOME"]) / "notes", "adas-note", title_en="Ada's note on mixed precision")
    assert _kb(ada, "sync").returncode == 0
    found = _kb(bo, "search", "mixed precision", "--json")
    assert found.returncode == 0, found.stderr
    assert "adas-note" in found.stdout

    # Both answer at once: each plain quiz answers every card it is shown with Good.
    answers = "\n".join(["", "3"] * 40) + "\nq\n"
    quiz = [sys.executable, "-m", "kb", "quiz", "--plain"]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen(quiz, env=ada, **pipes) as a, subprocess.Popen(quiz, env=bo, **pipes) as b:
        out_a, err_a = a.communicate(answers, timeout=240)
        out_b, err_b = b.communicate(answers, timeout=240)
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    recorded_a = out_a.count("recorded: ")
    recorded_b = out_b.count("recorded: ")
    assert recorded_a > 10 and recorded_b > 10
    assert "not recorded" not in out_a + out_b  # each answers their own cards, so nothing collides

    # Each sees their own reviews: exactly the answers their quiz recorded.
    stats_a = json.loads(_kb(ada, "stats", "--json").stdout)
    stats_b = json.loads(_kb(bo, "stats", "--json").stdout)
    assert stats_a["reviews_total"] == recorded_a
    assert stats_b["reviews_total"] == recorded_b
    # A third person on the same server has answered nothing.
    carol = _person(tmp_path, "carol", postgres_url, deck)
    assert json.loads(_kb(carol, "stats", "--json").stdout)["reviews_total"] == 0
