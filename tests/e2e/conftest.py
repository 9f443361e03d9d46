"""Fixtures of the end-to-end tests: the environment a user's shell would have."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import cli, shell_env, user_env


@pytest.fixture
def env(pg_dsn: str, namespace: str) -> dict[str, str]:
    """SYNC_* settings for a CLI process on the embedded log, in the test's namespace."""
    return user_env(pg_dsn, namespace)


@pytest.fixture
def zero_config(tmp_path: Path) -> Iterator[dict[str, str]]:
    """No SYNC_* settings but a data directory: the embedded default, whose PostgreSQL is stopped afterwards."""
    data = shell_env(SYNC_DATA_DIR=str(tmp_path / "data"))
    yield data
    stopped = cli("stop-embedded", env=data)
    assert stopped.returncode == 0, stopped.stderr
