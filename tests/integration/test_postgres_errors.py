"""The one PostgreSQL ``Database``: every psycopg error comes out as ours, as the tree in database.py draws it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from syncbackbone.domain.errors import ConcurrencyConflict, InvalidInput, LogError, LogUnavailable
from syncbackbone.infra.postgres.database import RETRY_OPEN_S, Database, redacted

REFUSED_DSN = "postgresql://postgres:s3cret@127.0.0.1:1/test?connect_timeout=1"


@pytest.fixture
def database(pg_dsn: str) -> Iterator[Database]:
    db = Database(pg_dsn, "the test database")
    yield db
    db.close()


def ours(error: BaseException) -> BaseException:
    """``error``, checked to be translated from a psycopg error."""
    assert isinstance(error.__cause__, psycopg.Error) and not isinstance(error, psycopg.Error)
    return error


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("23505", ConcurrencyConflict),  # unique_violation
        ("23502", InvalidInput),  # not_null_violation: other integrity errors
        ("22P05", InvalidInput),  # untranslatable_character: a DataError
        ("54000", InvalidInput),  # program_limit_exceeded, though psycopg files it under OperationalError
        ("40P01", LogUnavailable),  # deadlock_detected: an OperationalError
        ("57014", LogUnavailable),  # query_canceled: an OperationalError
        ("42P01", LogError),  # undefined_table: anything else
        ("XX000", LogError),  # internal_error
    ],
)
def test_each_sqlstate_comes_out_as_the_error_the_tree_names(
    database: Database, sqlstate: str, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as caught:
        database.execute(f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END $$")
    assert type(ours(caught.value)) is expected
    assert str(caught.value).startswith("the test database: ")


def test_a_unique_violation_is_a_concurrency_conflict(database: Database, namespace: str) -> None:
    database.execute(f'CREATE SCHEMA "{namespace}"')
    database.execute(f'CREATE TABLE "{namespace}".t (id integer PRIMARY KEY)')
    database.execute(f'INSERT INTO "{namespace}".t VALUES (1)')
    with pytest.raises(ConcurrencyConflict) as caught:
        database.execute(f'INSERT INTO "{namespace}".t VALUES (1)')
    assert "(id)=(1) already exists" in str(ours(caught.value))


def test_data_postgresql_refuses_is_invalid_input(database: Database) -> None:
    with pytest.raises(InvalidInput) as caught:
        database.fetchone("SELECT %s::jsonb", ['{"private-marker": "\\u0000"}'])
    assert "unsupported Unicode escape sequence" in str(ours(caught.value))
    assert "private-marker" not in str(caught.value)  # PostgreSQL's CONTEXT quotes the data: never in an error
    with pytest.raises(InvalidInput):
        database.fetchone("SELECT %s::text", ["a\x00b"])


def test_a_generic_sql_error_is_a_log_error(database: Database) -> None:
    with pytest.raises(LogError) as caught:
        database.fetchall("SELECT * FROM no_such_table")
    assert type(ours(caught.value)) is LogError
    assert "UndefinedTable" in str(caught.value)


def test_a_refused_connection_is_log_unavailable_and_never_shows_the_password() -> None:
    with pytest.raises(LogUnavailable) as made:
        Database(REFUSED_DSN, "a log", setup=lambda conn: None)
    with pytest.raises(LogUnavailable) as connected:
        Database(REFUSED_DSN, "claims").connect()
    for caught in (made, connected):
        assert "s3cret" not in str(ours(caught.value))
    assert redacted("postgresql://u:s3cret@h/db password=s3cret x") == "postgresql://u:***@h/db password=*** x"


def test_a_lazy_database_fails_fast_after_a_failed_open_and_for_good_once_closed(pg_dsn: str) -> None:
    dsns = iter([REFUSED_DSN, pg_dsn])
    database = Database(lambda: next(dsns), "a lazy store", setup=lambda conn: None, lazy=True)
    with pytest.raises(LogUnavailable, match="PostgreSQL is unavailable"):
        database.fetchone("SELECT 1")
    started = time.monotonic()
    with pytest.raises(LogUnavailable, match="unreachable just now"):
        database.fetchone("SELECT 1")
    assert time.monotonic() - started < 0.5
    time.sleep(RETRY_OPEN_S)
    assert database.fetchone("SELECT 1") == (1,)  # the DSN is asked for again
    database.close()
    with pytest.raises(LogUnavailable, match="is closed"):
        database.fetchone("SELECT 1")


def test_a_closed_database_is_unavailable(database: Database) -> None:
    assert database.fetchone("SELECT 1") == (1,)
    database.close()
    with pytest.raises(LogUnavailable, match="is closed"):
        database.fetchone("SELECT 1")
