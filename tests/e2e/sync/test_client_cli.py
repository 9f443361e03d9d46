"""The sync layer by hand: ``syncbackbone client ...`` against ``serve --http``, and the demo's sync part."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import user_env

from syncbackbone.infra.common.net import free_port

from .harness import drop_namespace, serve

pytestmark = pytest.mark.slow


@pytest.fixture
def env(pg_dsn: str) -> Iterator[dict[str, str]]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    yield user_env(pg_dsn, namespace)
    drop_namespace(pg_dsn, namespace)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "syncbackbone.infra.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_client_edits_wait_in_the_outbox_until_pushed_and_pull_brings_the_others(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    proc = serve(env, port)
    try:
        server = ["--server", f"http://127.0.0.1:{port}"]
        mine, theirs = [*server, "--db", str(tmp_path / "a.db")], [*server, "--db", str(tmp_path / "b.db")]
        queued = cli("client", "put", "notes", "n1", "--data", '{"t": 1}', *mine, env=env)
        before = json.loads(cli("client", "status", *mine, env=env).stdout)
        pushed = cli("client", "push", *mine, env=env)
        pulled = [cli("client", "pull", *theirs, env=env) for _ in range(20)]
        got = cli("client", "get", "notes", "n1", *theirs, env=env)
    finally:
        proc.kill()
        proc.wait(10)

    assert queued.returncode == 0 and before["pending"] == 1, queued.stderr
    assert json.loads(pushed.stdout) == {"pushed": 1, "results": {"applied": 1}}
    assert any(json.loads(p.stdout)["pulled"] for p in pulled)
    assert json.loads(got.stdout) == {"t": 1}


def test_a_client_command_with_bad_json_is_refused_without_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    done = cli("client", "put", "notes", "x", "--data", "{oops", "--db", str(tmp_path / "c.db"), env=env)

    assert done.returncode == 2 and "--data is not valid JSON" in done.stderr and "Traceback" not in done.stderr


def test_the_demo_shows_two_offline_clients_converging_with_the_conflict_in_the_audit(env: dict[str, str]) -> None:
    done = cli("demo", env=env)

    assert done.returncode == 0, done.stderr
    assert "bob -> {'merged': 1}" in done.stdout and "converged: True" in done.stdout
    assert "ConflictResolved" in done.stdout and '"estimate": "both changed: max"' in done.stdout
