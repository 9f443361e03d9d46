"""Fixtures of the end-to-end tests: the environment a user's shell would have."""

from __future__ import annotations

import pytest
from support import user_env


@pytest.fixture
def env(pg_dsn: str, namespace: str) -> dict[str, str]:
    """SYNC_* settings for a CLI process on the embedded log, in the test's namespace."""
    return user_env(pg_dsn, namespace)
