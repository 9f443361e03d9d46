"""LISTEN/NOTIFY of the read models: the notices a live store sends as it commits, and the one listener of a process.

The channel of a projection is the name of its live schema, ``<ns>__<projection>`` (63
characters at most, as every schema name). Payloads, one notice each::

    c <partition> <next_offset>     a batch committed: the checkpoint of the partition moved
    f <position> <collection>       the batch appended to the feed of the (tenant-qualified) collection
    *                               a rebuild swapped a new copy in: read everything again

A store sends one batch's notices in one statement inside the batch's transaction, so
PostgreSQL delivers them at commit, in commit order, or never. ``PostgresNotices`` holds
one autocommit connection that LISTENs on the channels of the namespace's projections
and turns what arrives into ``projections.notices`` objects; it reconnects after a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import psycopg

from ...projections.notices import CheckpointAdvanced, FeedAdvanced, Interrupted, Notice, NoticeSource, Resync
from .database import CONNECT_TIMEOUT_S, Conn, redacted
from .read_models.sql import copy_schema, q

log = logging.getLogger(__name__)
RESYNC = "*"
RETRY_S = 1.0
"""How long the listener waits before connecting again after a failure."""


def checkpoint_payload(partition: int, next_offset: int) -> str:
    """The notice of a committed batch of ``partition``."""
    return f"c {partition} {next_offset}"


def feed_payload(collection: str, position: int) -> str:
    """The notice of a feed that now holds positions up to ``position``."""
    return f"f {position} {collection}"


def send_notices(conn: Conn, channel: str, payloads: Sequence[str]) -> None:
    """NOTIFY ``channel`` of each payload, in one statement (delivered when the transaction commits)."""
    if payloads:
        conn.execute(b"SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", [channel, list(payloads)])


def parse_notice(projection: str, payload: str) -> Notice | None:
    """The notice of ``payload`` on the channel of ``projection``; None for one this version does not know."""
    kind, _, rest = payload.partition(" ")
    try:
        if kind == "c":
            partition, next_offset = rest.split(" ")
            return CheckpointAdvanced(projection, int(partition), int(next_offset))
        if kind == "f":
            position, collection = rest.split(" ", 1)
            return FeedAdvanced(projection, collection, int(position))
    except ValueError:
        return None
    return Resync() if kind == RESYNC else None


class PostgresNotices(NoticeSource):
    """The notices of ``projections`` of ``namespace``, heard on one LISTEN connection."""

    def __init__(
        self, dsn: str | Callable[[], str], namespace: str, projections: Sequence[str], retry_s: float = RETRY_S
    ) -> None:
        self._dsn, self.namespace, self.retry_s = dsn, namespace, retry_s
        self.channels = {copy_schema(namespace, p): p for p in projections}

    async def notices(self) -> AsyncIterator[Notice]:
        while True:
            try:
                async for notice in self._heard():
                    yield notice
            except psycopg.Error as e:
                what = f"read-model notices of {self.namespace!r}"
                log.warning("%s: %s; listening again in %g s", what, redacted(str(e)), self.retry_s)
            yield Interrupted()
            await asyncio.sleep(self.retry_s)

    async def _heard(self) -> AsyncIterator[Notice]:
        """The notices of one connection: a Resync once it listens, then what arrives until it fails."""
        dsn = self._dsn if isinstance(self._dsn, str) else self._dsn()
        name = f"syncbackbone notices {self.namespace}"
        conn = await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name=name
        )
        async with conn:
            for channel in self.channels:
                await conn.execute(f"LISTEN {q(channel)}".encode())
            yield Resync()
            async for heard in conn.notifies():
                notice = parse_notice(self.channels.get(heard.channel, ""), heard.payload)
                if notice is not None:
                    yield notice
