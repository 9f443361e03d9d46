"""Helpers shared by the test folders: running the CLI as a user does, and cleaning a namespace."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg


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


def drop_namespace(pg_dsn: str, namespace: str) -> None:
    """Drop the namespace's schema and its read models' schemas (``<ns>__<projection>``)."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = %s OR nspname LIKE %s", [namespace, f"{namespace}\\_\\_%"]
        ).fetchall()
        for (schema,) in rows:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())
