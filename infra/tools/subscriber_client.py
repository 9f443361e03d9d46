"""A bare HTTP/1.1 client for thousands of subscribers: what ``bench sync --subscribers`` drives them with.

``Connection`` is one keep-alive connection on asyncio streams, a request at a time,
bodies by Content-Length or chunked: thousands of them cost the load generator far less
than a full HTTP client, so more of the machine is left to the server. ``long_polls`` and
``streams`` keep one long-poll (or one server-sent event stream) open, again and again,
and report each change they receive with the time it arrived.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

HOST = "127.0.0.1"


class Refused(Exception):
    """A subscriber's request was answered with an error."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


Seen = Callable[[list[str], float], None]
"""Told the ids of the changes a subscriber received, and when (perf_counter)."""


class Connection:
    """One keep-alive HTTP/1.1 connection to ``host:port``."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self._head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    async def request(self, method: str, target: str, body: Any = None) -> tuple[int, bytes]:
        """Status and body of one request (JSON ``body`` if given)."""
        reader = self._send(method, target, body)
        status, headers = await self._head_of(reader)
        if "content-length" in headers:
            return status, await reader.readexactly(int(headers["content-length"]))
        return status, b"".join([chunk async for chunk in self._chunks(reader)])

    async def events(self, target: str) -> AsyncIterator[bytes]:
        """The server-sent events of a streamed response, one ``event: ...`` block at a time."""
        reader = self._send("GET", target, None)
        status, headers = await self._head_of(reader)
        if status != 200:
            body = await reader.readexactly(int(headers.get("content-length", 0)))
            raise Refused(f"a stream was refused: {status} {body[:200]!r}", status)
        buffer = b""
        async for chunk in self._chunks(reader):
            buffer += chunk
            *blocks, buffer = buffer.split(b"\n\n")
            for block in blocks:
                yield block

    def _send(self, method: str, target: str, body: Any) -> asyncio.StreamReader:
        assert self._reader is not None and self._writer is not None, "open the connection first"
        data = b"" if body is None else json.dumps(body).encode()
        extra = f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n" if body is not None else ""
        self._writer.write(f"{method} {target} HTTP/1.1\r\n{self._head}{extra}\r\n".encode() + data)
        return self._reader

    @staticmethod
    async def _head_of(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
        status = int((await reader.readuntil(b"\r\n")).split()[1])
        headers = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    @staticmethod
    async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            yield await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readexactly(2)


async def long_polls(conn: Connection, target: Callable[[str], str], seen: Seen, cursor: str = "") -> None:
    """Long-poll again and again (a 429 is tried again), reporting the changes, until the connection goes."""
    try:
        while True:
            status, body = await conn.request("GET", target(cursor))
            arrived = time.perf_counter()
            if status == 429:
                await asyncio.sleep(0.01)
                continue
            if status != 200:
                raise Refused(f"a long-poll was refused: {status} {body[:200]!r}")
            page = json.loads(body)
            if ids := [str(c["id"]) for c in page.get("changes", ())]:
                seen(ids, arrived)
            cursor = page.get("cursor", cursor)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        return


async def streams(conn: Connection, target: Callable[[str], str], seen: Seen, cursor: str = "") -> None:
    """Follow a server-sent event stream (opened again when it ends), reporting the changes."""
    while True:
        try:
            async for block in conn.events(target(cursor)):
                arrived = time.perf_counter()
                data = json.loads(block.partition(b"data: ")[2] or b"{}")
                cursor = data.get("cursor", cursor)
                if block.startswith(b"event: changes"):
                    seen([str(c["id"]) for c in data["changes"]], arrived)
                elif block.startswith(b"event: end") and data.get("reason") == "shutdown":
                    return
        except Refused as e:
            if e.status != 429:
                raise
            await asyncio.sleep(0.01)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            return


def recorder(received: dict[str, list[float]]) -> Callable[[list[str], float], None]:
    def seen(ids: list[str], arrived: float) -> None:
        for change in ids:
            received.setdefault(change, []).append(arrived)

    return seen


async def connections(port: int, count: int, headers: dict[str, str] | None = None) -> list[Connection]:
    """``count`` open connections, at most 200 connecting at once."""
    gate = asyncio.Semaphore(200)

    async def one() -> Connection:
        async with gate:
            return await Connection(HOST, port, headers or {}).open()

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def health(port: int, times: int) -> None:
    """``times`` /health requests, one after the other (warming the server up)."""
    conn = await Connection(HOST, port, {}).open()
    for _ in range(times):
        await conn.request("GET", "/health")
    conn.close()
