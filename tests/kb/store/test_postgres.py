"""PostgreSQL as the store: choosing it, what happens when the server is wrong or goes away."""

from __future__ import annotations

import pytest

from helpers import FIXED_NOW, db_execute, write_concept
from kb.cli import main
from kb.config import SettingsError, load_settings

CARDS = "cards:\n  - {type: basic, id: b, front: 'Front?', back: Back.}\n"


def test_unset_keeps_the_sqlite_file(tmp_path):
    settings = load_settings({"KB_HOME": str(tmp_path)})
    assert settings.database_url is None and settings.db_path == tmp_path / "kb.sqlite"


def test_the_variable_and_the_setting_choose_postgresql(tmp_path):
    url = "postgresql+psycopg://kb:secret@db.example:5432/kb"
    assert load_settings({"KB_HOME": str(tmp_path), "KB_DATABASE_URL": url}).database_url == url
    (tmp_path / "settings.toml").write_text(f'database_url = "{url}"\n', encoding="utf-8")
    assert load_settings({"KB_HOME": str(tmp_path)}).database_url == url


def test_a_url_that_is_not_postgresql_is_refused_in_one_line(tmp_path):
    with pytest.raises(SettingsError, match="KB_DATABASE_URL='mysql://x/y': .* is not a PostgreSQL URL"):
        load_settings({"KB_HOME": str(tmp_path), "KB_DATABASE_URL": "mysql://x/y"})


def _cli(capsys, monkeypatch, url: str, deck, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("KB_DATABASE_URL", url)
    monkeypatch.setenv("KB_BUNDLED_CONTENT", str(deck))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_wrong_password_is_one_line_without_the_password(postgres_cluster, postgres_url, deck, capsys, monkeypatch):
    url = postgres_url.replace(postgres_cluster.password, "not-the-password")
    code, _, err = _cli(capsys, monkeypatch, url, deck, "stats")
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert "password authentication failed" in err and "Traceback" not in err
    assert "not-the-password" not in err and "***" in err


def test_no_server_listening_is_one_line(postgres_cluster, deck, capsys, monkeypatch):
    from pgcluster import _free_port

    url = f"postgresql+psycopg://kb:pw@127.0.0.1:{_free_port()}/kb"
    code, _, err = _cli(capsys, monkeypatch, url, deck, "stats")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "refused the connection or went away" in err and "Traceback" not in err


def test_a_database_of_something_else_is_left_alone(postgres_url, deck, capsys, monkeypatch):
    import psycopg

    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    code, _, err = _cli(capsys, monkeypatch, postgres_url, deck, "stats")
    assert code == 1 and "has tables but is not a kb database" in err
    with psycopg.connect(postgres_url.replace("+psycopg", "")) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"invoices"}


def test_a_newer_schema_is_refused(postgres_url, deck, capsys, monkeypatch):
    code, _, _ = _cli(capsys, monkeypatch, postgres_url, deck, "sync")
    assert code == 0
    import psycopg

    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("UPDATE kb_schema SET version = version + 1")
    code, _, err = _cli(capsys, monkeypatch, postgres_url, deck, "stats")
    assert code == 1 and "written by a newer kb" in err


def test_the_server_gone_mid_answer_stores_nothing_of_it(settings, postgres_url, deck):
    """The connection dies between reading the card and writing its answer: one clear error,
    no review-log row and no new schedule; the next answer (a new connection) is stored."""
    import dataclasses

    import psycopg

    from kb.service import KnowledgeBase
    from kb.store.errors import StoreError
    from kb.store.reviews import NextState, record_answer

    kb = KnowledgeBase(dataclasses.replace(settings, database_url=postgres_url), clock=lambda: FIXED_NOW)
    write_concept(deck, "alpha", extra=CARDS)
    kb.sync()
    url = kb.settings.database_url.replace("+psycopg", "")

    def decide_after_the_server_is_gone(state):
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        return NextState({"state": "review"}, "review", FIXED_NOW, 0, 1, False)

    with pytest.raises(StoreError) as caught:
        record_answer(
            kb.engine, "alpha/b", rating=3, now=FIXED_NOW, duration_ms=100, decide=decide_after_the_server_is_gone
        )
    message = str(caught.value)
    assert "\n" not in message and "the answer was not stored" in message, message
    assert db_execute(kb, "SELECT count(*) FROM review_log") == [(0,)]
    assert db_execute(kb, "SELECT count(*) FROM card_state") == [(0,)]
    kb.answer("alpha/b", 3)
    assert db_execute(kb, "SELECT count(*) FROM review_log") == [(1,)]
    kb.close()
