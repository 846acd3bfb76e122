"""The PostgreSQL fixtures (tests/postgres.py) give what the store's tests rely on.

A fresh database per test that an ordinary role owns, distinct databases, row claims with
``FOR UPDATE SKIP LOCKED`` across connections, and password authentication that refuses a wrong
password. Skipped, with the reason, where no server can be had.
"""

import stat

import postgres
import pytest

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 not installed (the postgres extra)")


def test_fresh_database_is_empty_and_takes_a_table(postgres_url):
    with psycopg.connect(postgres_url) as conn:
        user, superuser = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert (user, superuser) == (postgres.TEST_USER, False)
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE trials (id serial PRIMARY KEY, name text NOT NULL)")
        conn.execute("INSERT INTO trials (name) VALUES ('a'), ('b')")
        conn.commit()
    with psycopg.connect(postgres_url) as conn:
        names = conn.execute("SELECT name FROM trials ORDER BY id").fetchall()
    assert names == [("a",), ("b",)]


def test_two_databases_are_distinct_and_dropped_after(postgres_server, postgres_url):
    with postgres.fresh_database(postgres_server) as other_url:
        assert other_url != postgres_url
        with psycopg.connect(postgres_url) as conn:
            conn.execute("CREATE TABLE only_here (x int)")
            conn.commit()
            first = conn.execute("SELECT current_database()").fetchone()[0]
        with psycopg.connect(other_url) as conn:
            second = conn.execute("SELECT current_database()").fetchone()[0]
            found = conn.execute("SELECT to_regclass('only_here')").fetchone()
        assert first != second
        assert found == (None,)
        left_open = psycopg.connect(other_url)  # the drop ends connections a test left open
    try:
        with psycopg.connect(postgres_server.admin_url) as admin:
            rows = admin.execute(
                "SELECT datname FROM pg_database WHERE datname = %s", (second,)
            ).fetchall()
        assert rows == []
    finally:
        left_open.close()


def test_skip_locked_gives_two_connections_different_rows(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as setup:
        setup.execute("CREATE TABLE jobs (id int PRIMARY KEY, owner text)")
        setup.execute("INSERT INTO jobs (id) VALUES (1), (2)")
    claim = "SELECT id FROM jobs WHERE owner IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    with (
        psycopg.connect(postgres_url) as one,
        psycopg.connect(postgres_url) as two,
        psycopg.connect(postgres_url) as three,
    ):
        # each connection holds its transaction open: the row it locked stays locked
        first = one.execute(claim).fetchone()
        second = two.execute(claim).fetchone()
        third = three.execute(claim).fetchone()
        assert {first, second} == {(1,), (2,)}
        assert third is None
        one.execute("UPDATE jobs SET owner = 'one' WHERE id = %s", first)
        one.commit()
        two.rollback()
        three.rollback()
        # the rolled-back claim frees its row, the committed one keeps it
        assert three.execute(claim).fetchone() == second
        three.rollback()


def test_wrong_password_is_refused(postgres_admin_url, postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    url = postgres.create_user(postgres_admin_url, "alice", "right horse", database=database)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (
            "alice",
            database,
        )
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres.url_with(url, password="wrong horse"))
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(postgres.url_with(url, user="alice"))  # no password at all


def test_url_with_quotes_credentials_and_keeps_host():
    url = "postgresql://u:p@127.0.0.1:5433/db"
    assert postgres.url_with(url, password="a b/@:") == (
        "postgresql://u:a%20b%2F%40%3A@127.0.0.1:5433/db"
    )
    assert postgres.url_with(url, user="v") == "postgresql://v@127.0.0.1:5433/db"
    assert postgres.url_with(url, database="x") == "postgresql://u:p@127.0.0.1:5433/x"


def _fake_binary(path):
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_bindir_from_environment_needs_both_binaries(tmp_path, monkeypatch):
    _fake_binary(tmp_path / "initdb")
    monkeypatch.setenv("TRAINLAB_PG_BINDIR", str(tmp_path))
    assert postgres.find_bindir() != tmp_path  # no postgres there: not taken
    _fake_binary(tmp_path / "postgres")
    assert postgres.find_bindir() == tmp_path


def test_missing_binaries_skip_with_the_reason(monkeypatch):
    monkeypatch.setattr(postgres, "find_bindir", lambda: None)
    reason = postgres.missing_prerequisite()
    assert "binaries (initdb, postgres) not found" in reason
    assert "install-postgres.sh" in reason
