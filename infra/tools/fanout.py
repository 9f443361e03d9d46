"""Timing a fan-out for ``bench sync --subscribers``, and its raw baseline.

``measured`` times a server while subscribers wait: its memory per subscriber, /health
(from a process of its own), and each change until every subscriber has it, with the
server's CPU per subscriber. ``bare`` is the raw baseline: an asyncio server (uvloop, a
process of its own) that holds requests to ``/wait`` and answers all of them when
``/fire/<id>`` comes, and ``/health`` at once; no framework, no database.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psutil
import uvloop

from ..common.net import free_port, port_open
from .subscriber_client import HOST, Connection, Refused, connections, health, long_polls, recorder

WAIT_FOR_SUBSCRIBERS_S = 120.0
PROBE_EVERY_S = 0.1


@dataclass
class Fanout:
    """What one server did with N+M waiting subscribers."""

    delivered: list[float] = field(default_factory=list)
    """Seconds from each write until each subscriber had it."""
    last: list[float] = field(default_factory=list)
    """Seconds from each write until the last subscriber had it."""
    missed: int = 0
    health_idle: list[float] = field(default_factory=list)
    health_busy: list[float] = field(default_factory=list)
    rss_per_subscriber: float = 0.0
    cpu_per_subscriber: float = 0.0
    """Server CPU seconds per subscriber per change (answering it and taking its next request), beyond idle."""
    exit_s: float | None = None


Subscribe = Callable[[int], Awaitable[list["asyncio.Task[None]"]]]
"""Open that many subscribers; their tasks once the server holds every one."""


async def held(tasks: list[asyncio.Task[None]], all_held: Callable[[], Awaitable[bool]]) -> list[asyncio.Task[None]]:
    """``tasks`` once ``all_held`` says the server holds every subscriber; a subscriber's error if one failed."""
    deadline = time.monotonic() + WAIT_FOR_SUBSCRIBERS_S
    while not await all_held():
        for task in tasks:
            if task.done():
                task.result()
                raise Refused("a subscriber's connection closed before the fan-out")
        if time.monotonic() > deadline:
            raise Refused(f"the server did not hold every subscriber within {WAIT_FOR_SUBSCRIBERS_S:g} s")
        await asyncio.sleep(0.05)
    return tasks


async def measured(
    server: psutil.Process,
    port: int,
    count: int,
    rounds: int,
    received: dict[str, list[float]],
    subscribe: Subscribe,
    write: Callable[[str], Awaitable[object]],
) -> tuple[Fanout, list[asyncio.Task[None]]]:
    """Memory and /health with ``count`` subscribers waiting, then ``rounds`` changes timed to all of them."""
    figures = Fanout()
    await health(port, 5)
    before = server.memory_info().rss
    tasks = await subscribe(count)
    figures.rss_per_subscriber = (server.memory_info().rss - before) / count
    idle_cpu = cpu_seconds(server)
    await asyncio.sleep(2.0)
    idle_rate, busy = (cpu_seconds(server) - idle_cpu) / 2.0, 0.0  # what the server spends doing nothing
    probe = HealthProbe(port)
    probe.phase.value = HealthProbe.IDLE
    await asyncio.sleep(2.0)
    for r in range(rounds):
        probe.phase.value = HealthProbe.BUSY
        started, cpu = time.perf_counter(), cpu_seconds(server)
        await write(f"r{r}")
        while len(received.get(f"r{r}", ())) < count and time.perf_counter() < started + 30:
            await asyncio.sleep(0.005)
        probe.phase.value = HealthProbe.OFF
        times = [t - started for t in received.get(f"r{r}", ())]
        figures.delivered += times
        figures.last.append(max(times, default=30.0))
        figures.missed += count - len(times)
        await asyncio.sleep(2.0)  # the subscribers send their next requests
        busy += cpu_seconds(server) - cpu - idle_rate * (time.perf_counter() - started)
    figures.cpu_per_subscriber = busy / rounds / count
    figures.health_idle, figures.health_busy = probe.results()
    return figures, tasks


def cpu_seconds(process: psutil.Process) -> float:
    """CPU time the process used so far (user and system)."""
    times = process.cpu_times()
    return float(times.user + times.system)


class HealthProbe:
    """/health latencies, ``PROBE_EVERY_S`` apart (each costs the gateway about 15 queries), measured from a
    process of its own (the load generator's loop, busy with thousands of subscribers, would add its own delay),
    each labelled with the phase it was taken in."""

    OFF, IDLE, BUSY, STOP = range(4)

    def __init__(self, port: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.phase = context.Value("i", self.OFF)
        self._results, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=probe_health, args=(port, self.phase, sender), daemon=True)
        self._process.start()

    def results(self) -> tuple[list[float], list[float]]:
        """Stop; the latencies taken while idle, and while busy."""
        self.phase.value = self.STOP
        taken: list[tuple[int, float]] = self._results.recv()
        self._process.join(10)
        return [s for p, s in taken if p == self.IDLE], [s for p, s in taken if p == self.BUSY]


def probe_health(port: int, phase: Any, results: Any) -> None:
    """Probe /health until told to stop, then send back (phase, seconds) of each probe."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    taken = []
    while (now := phase.value) != HealthProbe.STOP:
        if now == HealthProbe.OFF:
            time.sleep(0.005)
            continue
        started = time.perf_counter()
        conn.request("GET", "/health")
        conn.getresponse().read()
        taken.append((now, time.perf_counter() - started))
        time.sleep(PROBE_EVERY_S)
    results.send(taken)


def bare(count: int, rounds: int) -> Fanout:
    """The same fan-out on the bare asyncio server, in a process of its own."""
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(target=serve_bare, args=(port,), daemon=True)
    proc.start()
    try:
        while not port_open(HOST, port):
            time.sleep(0.05)
        assert proc.pid is not None
        return uvloop.run(fan_out_bare(psutil.Process(proc.pid), port, count, rounds))
    finally:
        proc.kill()
        proc.join(10)


async def fan_out_bare(server: psutil.Process, port: int, count: int, rounds: int) -> Fanout:
    received: dict[str, list[float]] = {}
    probe = await Connection(HOST, port, {}).open()

    async def subscribe(count: int) -> list[asyncio.Task[None]]:
        conns = await connections(port, count)
        tasks = [asyncio.create_task(long_polls(c, lambda _: "/wait", recorder(received))) for c in conns]
        return await held(tasks, lambda: waiting(count))

    async def waiting(count: int) -> bool:
        return int((await probe.request("GET", "/held"))[1]) >= count

    async def fire(change: str) -> object:
        return await probe.request("GET", f"/fire/{change}")

    figures, tasks = await measured(server, port, count, rounds, received, subscribe, fire)
    for task in tasks:
        task.cancel()
    return figures


def serve_bare(port: int) -> None:
    """Run the raw baseline server on 127.0.0.1:``port`` until killed (in a process of its own)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        pass
    asyncio.run(bare_server(port))


async def bare_server(port: int) -> None:
    """``/wait`` waits for the next ``/fire/<id>``, which answers every waiter with that change;
    ``/held`` says how many wait; anything else (``/health``) is answered at once."""
    fired: list[asyncio.Future[bytes]] = [asyncio.get_running_loop().create_future()]
    held = [0]

    async def answer(path: str) -> bytes:
        if path.startswith("/fire/"):
            fired[0].set_result(json.dumps({"changes": [{"id": path[6:]}], "cursor": ""}).encode())
            fired[0] = asyncio.get_running_loop().create_future()
        if not path.startswith("/wait"):
            return str(held[0]).encode() if path == "/held" else b'{"status":"ok"}'
        held[0] += 1
        try:
            return await asyncio.shield(fired[0])
        finally:
            held[0] -= 1

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readuntil(b"\r\n"):
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                body = await answer(line.split()[1].decode())
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
        except (OSError, asyncio.IncompleteReadError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()
