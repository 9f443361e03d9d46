"""Helpers shared by the test folders: running the CLI as a user does, and cleaning a namespace."""

from __future__ import annotations

import os
import subprocess
import sys

from syncbackbone.infra.postgres_schema import drop_namespace

__all__ = ["cli", "drop_namespace", "user_env"]


def cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``syncbackbone ARGS`` in a new process, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "syncbackbone.infra.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def user_env(pg_dsn: str, namespace: str, **more: str) -> dict[str, str]:
    """This process's environment without SYNC_* variables, plus the test's PostgreSQL and namespace."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    return dict(base, SYNC_PG_DSN=pg_dsn, SYNC_NAMESPACE=namespace, **more)
