"""``syncbackbone client dlq list|retry|drop`` against ``serve --http``: a stale edit on the default
``strict`` policy is refused for good, shown in ``status`` and the dead letters, queued again or dropped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import shell_env, user_env

from syncbackbone.infra.common.net import free_port

from .harness import drop_namespace, serve

pytestmark = pytest.mark.slow


@pytest.fixture
def env(pg_dsn: str) -> Iterator[dict[str, str]]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    yield user_env(pg_dsn, namespace)
    drop_namespace(pg_dsn, namespace)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "syncbackbone.infra.cli", "client", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def out(*args: str, env: dict[str, str]) -> Any:
    done = cli(*args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def pull_until(doc: dict[str, Any], db: list[str], env: dict[str, str]) -> None:
    """Pull until this client sees ``doc`` as n1 (the read models may lag behind the push a little)."""
    for _ in range(50):
        out("pull", *db, env=env)
        if json.loads(cli("get", "notes", "n1", *db, env=env).stdout) == doc:
            return
    raise AssertionError(f"never saw {doc}")


def test_client_dlq_lists_retries_and_drops_the_edits_the_server_refused_for_good(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    proc = serve(env, port)
    try:
        server = ["--server", f"http://127.0.0.1:{port}"]
        alice, bob = [*server, "--db", str(tmp_path / "a.db")], [*server, "--db", str(tmp_path / "b.db")]
        out("put", "notes", "n1", "--data", '{"t": 1}', *alice, env=env)
        out("push", *alice, env=env)
        pull_until({"t": 1}, alice, env)
        pull_until({"t": 1}, bob, env)
        out("patch", "notes", "n1", "--data", '{"t": 2}', *alice, env=env)
        out("push", *alice, env=env)
        stale = [out("patch", "notes", "n1", "--data", f'{{"{k}": 1}}', *bob, env=env)["queued"] for k in "xy"]
        refused = out("push", *bob, env=env)
        status = out("status", *bob, env=env)
        listed = out("dlq", "list", *bob, env=env)
        retried = out("dlq", "retry", str(stale[0]), *bob, env=env)
        dropped = out("dlq", "drop", "all", *bob, env=env)
        after = out("dlq", "list", *bob, env=env)
        pushed = out("push", *bob, env=env)
        pull_until({"t": 2, "x": 1}, alice, env)
    finally:
        proc.kill()
        proc.wait(10)

    assert refused == {"pushed": 2, "results": {"rejected": 2}} and status["pending"] == 0
    assert status["dead_letters"]["count"] == 2 and status["dead_letters"]["latest"][0]["op"] == "patch"
    assert [(d["seq"], d["id"], d["mutation"]["data"]) for d in listed] == [
        (stale[0], "n1", {"x": 1}),
        (stale[1], "n1", {"y": 1}),
    ]
    assert list(retried["requeued"]) == [str(stale[0])] and dropped == {"dropped": [stale[1]]} and after == []
    assert pushed == {"pushed": 1, "results": {"applied": 1}}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["dlq", "frob"], "client dlq takes list, retry SEQ|all or drop SEQ|all, not 'frob'"),
        (["dlq", "retry"], "client dlq retry needs the SEQ of a dead letter"),
        (["dlq", "drop", "7"], "no dead letter has seq 7"),
        (["put", "notes", "n", "--data", '{"x": NaN}'], "data.x is nan: NaN and Infinity cannot be synced"),
    ],
)
def test_a_client_dlq_or_nan_mistake_is_one_line_and_exit_code_2(tmp_path: Path, args: list[str], says: str) -> None:
    done = cli(*args, "--db", str(tmp_path / "c.db"), "--server", "http://127.0.0.1:9", env=shell_env())

    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
