"""Waiting clients on a real ``syncbackbone serve --http`` process over real PostgreSQL, driven by an asyncio
httpx client in the test process: thousands of idle long-polls cost no thread and no database connection,
a change wakes them (nothing polls), and SIGTERM drains long-polls and streams and exits promptly.

A probe tells when every long-poll is held: with SYNC_MAX_STREAMS_PER_PRINCIPAL set to their number, one
more of the same principal is refused (429) only once all of them are waiting.
"""

from __future__ import annotations

import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from support import bearer, user_env

from syncbackbone.infra.common.net import free_port, port_open

WAITER = bearer("waiter", "acme", "read")
WRITER = bearer("writer", "acme", "read write")


@contextmanager
def served(pg_dsn: str, namespace: str, max_streams: int) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A ``serve --http`` process allowing ``max_streams`` waits per principal: the process and its URL."""
    env = user_env(pg_dsn, namespace, SYNC_MAX_STREAMS_PER_PRINCIPAL=str(max_streams), SYNC_RATE_LIMIT="1000000/60s")
    port = free_port()
    command = [sys.executable, "-m", "syncbackbone.infra.cli", "serve", "--http", f"127.0.0.1:{port}"]
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stderr=log, text=True)
        try:
            deadline = time.monotonic() + 60
            while not port_open("127.0.0.1", port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"the server did not start: {log.read()}")
                time.sleep(0.1)
            yield proc, f"http://127.0.0.1:{port}"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def client(url: str, headers: dict[str, str], connections: int = 10) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=90, limits=limits)


async def cursor_now(http: httpx.AsyncClient) -> str:
    response = await http.get("/sync/pull", params={"collections": "notes", "limit": 1000})
    assert response.status_code == 200, response.text
    return str(response.json()["cursor"])


async def long_polls(http: httpx.AsyncClient, cursor: str, count: int) -> list[asyncio.Task[httpx.Response]]:
    """``count`` long-polls of one minute at ``cursor``, once the server holds every one of them."""
    tasks = [asyncio.create_task(long_poll(http, cursor)) for _ in range(count)]
    await all_held(http, cursor)
    return tasks


async def long_poll(http: httpx.AsyncClient, cursor: str) -> httpx.Response:
    """One long-poll, sent again if a probe held the last wait when it came (429)."""
    while True:
        response = await http.get("/sync/pull", params={"collections": "notes", "cursor": cursor, "wait": 60})
        if response.status_code != 429:
            return response
        await asyncio.sleep(0.01)


async def all_held(http: httpx.AsyncClient, cursor: str) -> None:
    """Return once the principal's waits are all taken (one more is a 429)."""
    deadline = time.monotonic() + 60
    while True:
        probe = await http.get("/sync/pull", params={"collections": "notes", "cursor": cursor, "wait": 0.01})
        if probe.status_code == 429:
            return
        assert time.monotonic() < deadline, "the server did not hold every long-poll within a minute"
        await asyncio.sleep(0.05)


async def put_note(url: str, doc_id: str) -> None:
    async with client(url, WRITER) as http:
        body = {"type": "PutDocument", "collection": "notes", "id": doc_id, "data": {"n": 1}}
        response = await http.post("/commands", json=body)
        assert response.status_code == 200, response.text


async def health_latencies(url: str, times: int) -> list[float]:
    async with client(url, {}) as http:
        latencies = []
        for _ in range(times):
            started = time.perf_counter()
            response = await http.get("/health")
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
        return latencies


def test_a_thousand_idle_long_polls_leave_health_answering_within_200_ms_and_one_change_wakes_them_all(
    pg_dsn: str, namespace: str
) -> None:
    async def scenario(url: str) -> tuple[list[float], list[dict[str, Any]]]:
        async with client(url, WAITER, connections=1100) as http:
            polls = await long_polls(http, await cursor_now(http), 1000)
            latencies = await health_latencies(url, 5)
            await put_note(url, "wake")
            pages = [(await task).json() for task in polls]
        return latencies, pages

    with served(pg_dsn, namespace, max_streams=1000) as (_, url):
        latencies, pages = asyncio.run(scenario(url))

    assert statistics.median(latencies) < 0.2, latencies
    assert all([c["id"] for c in page["changes"]] == ["wake"] for page in pages)


def test_waiting_long_polls_hold_no_thread_and_no_database_connection(pg_dsn: str, namespace: str) -> None:
    async def scenario(url: str, server: psutil.Process) -> tuple[tuple[int, int], tuple[int, int], int]:
        async with client(url, WAITER, connections=210) as http:
            cursor = await cursor_now(http)
            await health_latencies(url, 3)
            before = resources(server, pg_dsn)
            polls = await long_polls(http, cursor, 200)
            during = resources(server, pg_dsn)
            listeners = notice_listeners(pg_dsn, namespace)
            await put_note(url, "woken")
            pages = [(await task).json() for task in polls]
            assert all([c["id"] for c in page["changes"]] == ["woken"] for page in pages)
        return before, during, listeners

    with served(pg_dsn, namespace, max_streams=200) as (proc, url):
        (threads, connections), (threads_waiting, connections_waiting), listeners = asyncio.run(
            scenario(url, psutil.Process(proc.pid))
        )

    assert threads_waiting - threads <= 2 and connections_waiting - connections <= 1
    assert listeners == 1


def resources(server: psutil.Process, pg_dsn: str) -> tuple[int, int]:
    """The server process's threads, and its open connections to PostgreSQL."""
    port = int(conninfo_to_dict(pg_dsn).get("port") or 5432)
    to_pg = [c for c in server.net_connections(kind="tcp") if c.raddr and c.raddr.port == port]
    return server.num_threads(), len(to_pg)


def notice_listeners(pg_dsn: str, namespace: str) -> int:
    """Connections listening for the namespace's read-model notices."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [f"syncbackbone notices {namespace}"]
        ).fetchone()
    return int(row[0]) if row else 0


async def stream_events(http: httpx.AsyncClient, cursor: str) -> list[str]:
    """The event names of a stream, until the server ends it."""
    names = []
    async with http.stream("GET", "/sync/stream", params={"collections": "notes", "cursor": cursor}) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                names.append(line.removeprefix("event: "))
            if line.startswith("data: ") and names[-1] == "end":
                assert json.loads(line.removeprefix("data: "))["reason"] == "shutdown"
    return names


def test_sigterm_with_open_streams_and_long_polls_ends_them_cleanly_and_exits_within_5_s(
    pg_dsn: str, namespace: str
) -> None:
    async def scenario(url: str, proc: subprocess.Popen[str]) -> tuple[float, list[list[str]], list[int]]:
        async with client(url, WAITER, connections=40) as http:
            cursor = await cursor_now(http)
            streams = [asyncio.create_task(stream_events(http, cursor)) for _ in range(10)]
            polls = await long_polls(http, cursor, 10)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 5)
            exited = time.monotonic() - started
            return exited, [await s for s in streams], [(await p).status_code for p in polls]

    with served(pg_dsn, namespace, max_streams=20) as (proc, url):
        exited, streams, polls = asyncio.run(scenario(url, proc))

    assert exited <= 5 and proc.returncode == 0
    assert all(names == ["end"] for names in streams)
    assert polls == [200] * 10
