"""Fixtures of the runner tests: one warm pool per test module."""

from __future__ import annotations

import pytest

from kb.runner import WorkerPool


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(jobs=2) as shared:
        shared.start(wait=True)  # start-up time must not count against the first test
        yield shared
