"""Shared fixtures: a fresh KB_HOME, tiny decks written on the fly, a fixed clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import FIXED_NOW
from kb.config import Settings


@pytest.fixture(autouse=True)
def _private_kb_home(tmp_path_factory, monkeypatch) -> None:
    """No test reaches the user's own knowledge base: KB_HOME points at a fresh directory unless a
    test sets its own."""
    monkeypatch.setenv("KB_HOME", str(tmp_path_factory.mktemp("kb-home")))
    monkeypatch.delenv("KB_DATABASE_URL", raising=False)


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    d = tmp_path / "deck"
    d.mkdir()
    return d


BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "both_backends: run the test on SQLite and on PostgreSQL (the `settings` fixture's database)"
    )
    config.addinivalue_line("markers", "sqlite_only: a test of the SQLite file itself, in a both_backends module")


def pytest_generate_tests(metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("both_backends")
    if marked and not metafunc.definition.get_closest_marker("sqlite_only") and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A throw-away PostgreSQL cluster for the session (started on first use)."""
    from pgcluster import Cluster, Unavailable

    try:
        cluster = Cluster()
    except Unavailable as exc:
        reason = str(exc)
        cluster = None
    if cluster is None:
        from helpers import require_or_skip

        require_or_skip("postgresql", reason)
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster) -> str:
    """The URL of a fresh, empty database on the session's cluster."""
    return postgres_cluster.create_database()


@pytest.fixture
def backend(request) -> str:
    """sqlite (the default), or each of BACKENDS for tests marked both_backends."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(autouse=True)
def database_url(backend: str, request, monkeypatch) -> str | None:
    """None on SQLite; on PostgreSQL a fresh database on the session's cluster, also set as
    KB_DATABASE_URL for what the test starts (a KnowledgeBase of its own, a `kb` process)."""
    if backend != "postgresql":
        return None
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("KB_DATABASE_URL", url)
    return url


@pytest.fixture
def settings(tmp_path: Path, deck: Path, database_url: str | None) -> Settings:
    """A KB_HOME in tmp_path whose bundled deck is the test's own `deck` directory; on the
    postgresql backend the database is a fresh one on the session's PostgreSQL cluster."""
    return Settings(home=tmp_path / "home", bundled_content=deck, database_url=database_url)


@pytest.fixture
def kb(settings: Settings):
    from kb.service import KnowledgeBase

    with KnowledgeBase(settings, clock=lambda: FIXED_NOW) as instance:
        yield instance
