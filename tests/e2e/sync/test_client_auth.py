"""The SDK and ``syncbackbone client`` authenticate: a bearer token on every request, and on a 401
one new token from ``fetch_token()`` and one more try. Seen from a small recording HTTP server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syncbackbone.client import SyncClient
from syncbackbone.client.errors import Unauthorized
from syncbackbone.client.resilience import Backoff, CircuitBreaker

from .recorder import Recorder, recording_server


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with recording_server() as r:
        yield r


def client_of(
    tmp_path: Path, recorder: Recorder, token: str | None = None, fetch_token: Callable[[], str] | None = None
) -> SyncClient:
    breaker, backoff = CircuitBreaker(50, 0.01), Backoff(0.001, 0.01)
    return SyncClient(
        tmp_path / "c.db", recorder.url, ["notes"], "me", breaker, backoff, token=token, fetch_token=fetch_token
    )


def test_every_request_of_the_sdk_carries_its_token_as_a_bearer_header(tmp_path: Path, recorder: Recorder) -> None:
    client = client_of(tmp_path, recorder, token="t-123")
    try:
        client.put("notes", "n1", {"t": 1})
        report = client.sync_once()
    finally:
        client.close()

    assert report.statuses == {"applied": 1}
    assert {r.path.split("?")[0] for r in recorder.seen} == {"/sync/policies", "/sync/push", "/sync/pull"}
    assert set(recorder.authorizations()) == {"Bearer t-123"}


def test_on_a_401_the_sdk_fetches_a_new_token_once_and_sends_the_request_again(
    tmp_path: Path, recorder: Recorder
) -> None:
    recorder.refuse = lambda request: None if request.headers.get("authorization") == "Bearer fresh" else 401
    fetched: list[str] = []

    def fetch_token() -> str:
        fetched.append("fresh")
        return "fresh"

    client = client_of(tmp_path, recorder, token="expired", fetch_token=fetch_token)
    try:
        client.put("notes", "n1", {"t": 1})
        report = client.sync_once()
    finally:
        client.close()

    assert report.statuses == {"applied": 1} and fetched == ["fresh"]
    assert recorder.authorizations() == ["Bearer expired", "Bearer fresh", "Bearer fresh", "Bearer fresh"]


def test_a_second_401_is_unauthorized_and_the_outbox_waits_with_nothing_dead_lettered(
    tmp_path: Path, recorder: Recorder
) -> None:
    recorder.refuse = lambda request: 401
    fetched: list[int] = []

    def fetch_token() -> str:
        fetched.append(1)
        return "still-bad"

    client = client_of(tmp_path, recorder, token="bad", fetch_token=fetch_token)
    try:
        client.put("notes", "n1", {"t": 1})
        with pytest.raises(Unauthorized, match="401"):
            client.sync_once()
        status = client.status()
    finally:
        client.close()

    assert recorder.authorizations() == ["Bearer bad", "Bearer still-bad"] and fetched == [1]
    assert status["pending"] == 1 and status["dead_letters"]["count"] == 0 and status["breaker"] == "closed"


def test_without_a_token_the_sdk_sends_no_authorization_header(tmp_path: Path, recorder: Recorder) -> None:
    client = client_of(tmp_path, recorder)
    try:
        client.pull()
    finally:
        client.close()

    assert recorder.authorizations() == [None]


def pull_with(tmp_path: Path, recorder: Recorder, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    shell = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")} | env
    command = [sys.executable, "-m", "syncbackbone.infra.cli", "client", "pull", "--server", recorder.url, *args]
    return subprocess.run(
        [*command, "--db", str(tmp_path / "cli.db")], env=shell, capture_output=True, text=True, timeout=120
    )


def test_the_client_command_sends_the_token_of_its_flag_or_of_sync_token(tmp_path: Path, recorder: Recorder) -> None:
    flag = pull_with(tmp_path, recorder, "--token", "from-flag")
    from_env = pull_with(tmp_path, recorder, SYNC_TOKEN="from-env")

    assert flag.returncode == 0 and from_env.returncode == 0, flag.stderr + from_env.stderr
    assert json.loads(flag.stdout) == {"pulled": 0}
    assert recorder.authorizations() == ["Bearer from-flag", "Bearer from-env"]


def test_the_client_command_refused_for_its_token_says_so_in_one_line(tmp_path: Path, recorder: Recorder) -> None:
    recorder.refuse = lambda request: 401
    done = pull_with(tmp_path, recorder, "--token", "wrong")

    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "401" in done.stderr and "token" in done.stderr
