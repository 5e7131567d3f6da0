"""kb installs as an ordinary package: every module, the bundled deck, the stylesheet and the
catalogue of kb's words are in the wheel, and a missing bundled deck is said, never silently loaded
as nothing."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from kb import config

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_python_package_is_listed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for top in ("kb", "app") for p in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk <= listed, f"packages missing from pyproject.toml: {sorted(on_disk - listed)}"
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == {"kb.bundled": "content"}


@pytest.mark.timeout(300)
def test_the_wheel_holds_the_deck_the_schema_and_the_stylesheet(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("mlkb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    concepts = sorted(p.relative_to(ROOT / "content").as_posix() for p in (ROOT / "content").glob("*/*.yaml"))
    assert {f"kb/bundled/{c}" for c in concepts} <= names
    assert {"kb/bundled/schema.json", "app/app.tcss", "kb/runner/worker.py", "kb/runner/keeper.py"} <= names
    assert {"kb/locale/zh_CN/LC_MESSAGES/kb.mo", "kb/locale/zh_CN/LC_MESSAGES/kb.po"} <= names  # kb.i18n's words
    assert not [n for n in names if n.startswith(("tests/", "bench/", "content/"))]


def test_a_missing_bundled_deck_is_said_not_loaded_as_nothing(tmp_path, monkeypatch):
    empty = tmp_path / "site-packages" / "kb" / "bundled"
    empty.mkdir(parents=True)
    monkeypatch.setattr(config, "BUNDLED_CONTENT", empty)
    monkeypatch.setenv("KB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KB_BUNDLED_CONTENT", raising=False)
    monkeypatch.delenv("KB_CONTENT", raising=False)
    from kb.config import Settings
    from kb.service import KnowledgeBase

    with KnowledgeBase(Settings(home=tmp_path / "home", bundled_content=empty)) as kb:
        report = kb.sync()
    assert [str(e) for e in report.errors] == [
        f"{empty}:1:1: the bundled deck is missing from this installation of kb (no concept files here); reinstall it "
        "(`pip install --force-reinstall mlkb`, or from a checkout `pip install -e .`)"
    ]
