"""Run bundled concept snippets the way the runner does, once per session, and read computed cards.

`run_entry(concept_id)` finds `content/**/<id>.yaml`, loads it with the C YAML loader, seeds torch
with 0 and execs the snippet in `{"__name__": "__main__", "device": ..., "rng": default_rng(0)}`.
The namespace is cached for the session. `computed_value(concept_id, card_id)` evaluates a computed
card's `answer` expression in that namespace. Both are plain functions and also fixtures.

The device defaults to the CPU; set KB_TEST_DEVICE=cuda to run the same checks on a GPU.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

CONTENT = Path(__file__).resolve().parents[2] / "content"


def entry_path(concept_id: str) -> Path:
    """The single file content/**/<concept_id>.yaml."""
    matches = sorted(CONTENT.glob(f"**/{concept_id}.yaml"))
    if len(matches) != 1:
        raise LookupError(f"expected one content/**/{concept_id}.yaml, found {len(matches)}: {matches}")
    return matches[0]


@cache
def load_entry(concept_id: str) -> dict:
    """The raw YAML mapping of a concept file."""
    with entry_path(concept_id).open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=yaml.CSafeLoader)


@cache
def _run(concept_id: str) -> tuple[dict[str, Any], float, str]:
    import numpy
    import torch

    data = load_entry(concept_id)
    code = data["snippet"]["code"]
    torch.manual_seed(0)
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "device": torch.device(os.environ.get("KB_TEST_DEVICE", "cpu")),
        "rng": numpy.random.default_rng(0),
    }
    out = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(entry_path(concept_id)), "exec"), namespace)
    return namespace, time.perf_counter() - start, out.getvalue()


def run_entry(concept_id: str) -> dict[str, Any]:
    """Exec the concept's snippet (once per session) and return its namespace."""
    return _run(concept_id)[0]


def snippet_seconds(concept_id: str) -> float:
    """Wall time of the (first, cached) snippet run, imports inside the snippet included."""
    return _run(concept_id)[1]


def snippet_output(concept_id: str) -> str:
    """What the snippet printed."""
    return _run(concept_id)[2]


def computed_value(concept_id: str, card_id: str) -> Any:
    """Evaluate the `answer` expression of the computed card `card_id` in the snippet's namespace."""
    for card in load_entry(concept_id).get("cards", []):
        if card.get("id") == card_id:
            if card["type"] != "computed":
                raise TypeError(f"{concept_id}/{card_id} is a {card['type']} card, not computed")
            return eval(card["answer"], run_entry(concept_id))
    raise LookupError(f"{concept_id} has no card {card_id!r}")


@pytest.fixture(name="run_entry")
def run_entry_fixture():
    return run_entry


@pytest.fixture(name="computed_value")
def computed_value_fixture():
    return computed_value


@pytest.fixture(name="load_entry")
def load_entry_fixture():
    return load_entry


@pytest.fixture(name="snippet_seconds")
def snippet_seconds_fixture():
    return snippet_seconds


@pytest.fixture(name="entry_path")
def entry_path_fixture():
    return entry_path


@pytest.fixture(name="snippet_output")
def snippet_output_fixture():
    return snippet_output


@pytest.fixture(name="content_root")
def content_root_fixture() -> Path:
    return CONTENT
