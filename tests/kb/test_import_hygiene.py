"""The core never imports the TUI, and `kb sync` never imports torch or textual: importing
them costs seconds, and the command line must start fast."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("textual", "app", "torch", "textual_plotext", "textual_image")


def modules_after(code: str, env: dict | None = None) -> set[str]:
    probe = code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "module",
    [
        "kb",
        "kb.schema",
        "kb.loader",
        "kb.store.engine",
        "kb.store.ingest",
        "kb.store.queries",
        "kb.service",
        "kb.cli",
        "kb.quiz",
        "kb.config",
    ],
)
def test_core_modules_import_no_tui_or_torch(module):
    loaded = modules_after(f"import {module}")
    assert not loaded & set(FORBIDDEN)


def test_kb_sync_imports_neither_torch_nor_textual(tmp_path, deck):
    import os

    from helpers import write_concept

    write_concept(deck, "alpha")
    env = {**os.environ, "KB_HOME": str(tmp_path / "home"), "KB_CONTENT": str(deck)}
    loaded = modules_after("from kb.cli import main; main(['sync']); main(['search', 'alpha'])", env=env)
    assert "kb.store.ingest" in loaded  # the probe really synced
    assert not loaded & set(FORBIDDEN)
