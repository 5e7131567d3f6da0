"""Fixtures of the runner tests: warm pools per test module, one per sandbox layer.

`pool` is what `kb verify` uses here (bubblewrap where it works). `bwrap_pool` requires bubblewrap
(skipped without it, a failure when KB_TESTS_REQUIRE names it), `fallback_pool` never uses it, and
`layered_pool` runs a test once on each.
"""

from __future__ import annotations

import pytest

from helpers import require_or_skip
from kb.runner import WorkerPool, bwrap


def _started(pool: WorkerPool) -> WorkerPool:
    pool.start(wait=True)  # start-up time must not count against the first test
    return pool


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(jobs=2) as shared:
        yield _started(shared)


@pytest.fixture(scope="module")
def bwrap_pool():
    reason = bwrap.reason_unusable()
    if reason is not None:
        require_or_skip("bubblewrap", f"bubblewrap cannot be used here: {reason}")
    with WorkerPool(jobs=2, bubblewrap=True) as shared:
        yield _started(shared)


@pytest.fixture(scope="module")
def fallback_pool():
    with WorkerPool(jobs=2, bubblewrap=False) as shared:
        yield _started(shared)


@pytest.fixture(params=["bubblewrap", "fallback"])
def layered_pool(request):
    return request.getfixturevalue("bwrap_pool" if request.param == "bubblewrap" else "fallback_pool")
