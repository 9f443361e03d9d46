"""The client SDK never dies silently, without a server: the breaker settles on every probe outcome,
the background loop outlives any exception (a locked SQLite file included) and shows it, values that
cannot be synced are refused at the local write, and junk sync metadata cannot stop a pull.
"""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncbackbone.client import SyncClient
from syncbackbone.client.errors import ServerUnavailable
from syncbackbone.client.replica import latest_clock
from syncbackbone.client.resilience import Backoff, CircuitBreaker
from syncbackbone.domain.errors import InvalidInput
from syncbackbone.infra.common.net import free_port

STAMP = "000001700000000.00001.alice"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def half_open_breaker() -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, reset_after_s=10, clock=clock)
    with pytest.raises(ServerUnavailable):
        breaker.call(fail_with(ServerUnavailable("down")))
    clock.now = 10
    assert breaker.state == "half_open"
    return breaker, clock


def fail_with(error: Exception) -> Any:
    def action() -> None:
        raise error

    return action


def test_a_half_open_probe_answered_with_a_4xx_closes_the_breaker() -> None:
    breaker, _ = half_open_breaker()
    with pytest.raises(InvalidInput):
        breaker.call(fail_with(InvalidInput("sync server refused the request: 422 bad")))

    assert breaker.state == "closed"
    assert breaker.call(lambda: "next") == "next"


def test_a_half_open_probe_that_fails_locally_opens_the_breaker_again_and_the_next_probe_still_comes() -> None:
    breaker, clock = half_open_breaker()
    with pytest.raises(sqlite3.OperationalError):
        breaker.call(fail_with(sqlite3.OperationalError("database is locked")))

    assert breaker.state == "open"
    clock.now = 20
    assert breaker.state == "half_open" and breaker.call(lambda: "ok") == "ok" and breaker.state == "closed"


def test_a_local_failure_while_closed_does_not_count_towards_opening() -> None:
    breaker = CircuitBreaker(threshold=1, reset_after_s=10, clock=Clock())
    with pytest.raises(ValueError):
        breaker.call(fail_with(ValueError("a bug")))

    assert breaker.state == "closed"


def offline_client(tmp_path: Path, name: str = "me") -> SyncClient:
    """A client whose server is not there (nothing listens on the port)."""
    breaker = CircuitBreaker(threshold=1000, reset_after_s=0.01)
    return SyncClient(
        tmp_path / f"{name}.db", f"http://127.0.0.1:{free_port()}", ["x"], name, breaker, Backoff(0.01, 0.05)
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused_at_the_local_write_naming_the_field(tmp_path: Path, bad: float) -> None:
    client = offline_client(tmp_path)
    try:
        with pytest.raises(InvalidInput, match=r"data\.a\.b\[1\] is .*NaN and Infinity cannot be synced"):
            client.put("x", "d", {"a": {"b": [1, bad]}})
        client.put("x", "d", {"a": 1})
        with pytest.raises(InvalidInput, match=r"data\.score is"):
            client.patch("x", "d", {"score": bad})

        assert [m["seq"] for m in client.store.pending()] == [1] and client.get("x", "d") == {"a": 1}
    finally:
        client.close()


def test_a_value_that_is_not_json_is_refused_at_the_local_write(tmp_path: Path) -> None:
    client = offline_client(tmp_path)
    try:
        with pytest.raises(InvalidInput, match="data is not JSON the server can take"):
            client.put("x", "d", {"when": {1, 2}})
        assert client.store.pending() == []
    finally:
        client.close()


def wait_for(condition: Any, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_the_background_sync_outlives_a_locked_sqlite_file_and_shows_the_error(tmp_path: Path) -> None:
    client = offline_client(tmp_path, "locked")
    client.put("x", "d", {"v": 1})
    holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing: the client's writes wait, then fail
    try:
        client.start(idle_wait_s=0.01)
        wait_for(lambda: (client.status()["last_error"] or {}).get("type") == "OperationalError", str(client.status()))
        status = client.status()

        assert status["syncing"] and status["last_error"]["message"] == "database is locked"
        holder.execute("ROLLBACK")
        wait_for(lambda: (client.status()["last_error"] or {}).get("type") == "ServerUnavailable", "no next step")
        assert client.status()["syncing"] and client.status()["pending"] == 1
    finally:
        holder.close()
        client.close()


class BreaksUntilMended:
    """An HTTP client (the SDK's port to the network) that raises a bug-like error until ``mended``,
    then answers like an empty sync server."""

    def __init__(self) -> None:
        self.mended = False

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        self._check()
        return httpx.Response(
            200, json={} if url.endswith("policies") else {"changes": [], "cursor": "c", "more": False}
        )

    def post(self, url: str, *, json: Any = None, **kwargs: Any) -> httpx.Response:
        self._check()
        results = [{"seq": m["seq"], "status": "applied", "version": 1} for m in json["mutations"]]
        return httpx.Response(200, json={"results": results})

    def _check(self) -> None:
        if not self.mended:
            raise RuntimeError("first line\nsecond line")


def test_the_background_sync_outlives_any_exception_shows_its_first_line_and_clears_it_after_a_good_step(
    tmp_path: Path,
) -> None:
    http = BreaksUntilMended()
    client = SyncClient(tmp_path / "c.db", http, ["x"], "me", CircuitBreaker(1000, 0.01), Backoff(0.001, 0.01))
    client.put("x", "d", {"v": 1})
    client.start(idle_wait_s=0.01)
    try:
        wait_for(lambda: client.status()["last_error"] is not None, "no error recorded")
        error = client.status()["last_error"]

        assert error["type"] == "RuntimeError" and error["message"] == "first line" and client.status()["syncing"]
        http.mended = True
        wait_for(lambda: client.status()["pending"] == 0 and client.status()["last_error"] is None, "never synced")
        assert client.status()["syncing"] and client.store.outcomes()[1]["status"] == "applied"
    finally:
        client.close()


def test_junk_sync_metadata_in_a_pulled_document_is_ignored_when_reading_its_clocks() -> None:
    assert latest_clock({"_sync": 1}) is None
    assert latest_clock({"_sync": {"clocks": 5, "crdt": ["x"]}}) is None
    junk = {"_sync": {"clocks": {"a": "999.junk", "b": STAMP, "c": 7}, "crdt": {"n": {"c": None}, "m": 3}}}
    assert str(latest_clock(junk)) == STAMP


def test_the_backoff_stays_below_its_cap_after_any_number_of_failures() -> None:
    backoff = Backoff(base_s=0.01, cap_s=0.5)

    assert all(0 <= backoff.next_delay() <= 0.5 for _ in range(5000))
