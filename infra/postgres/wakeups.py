"""Wake-ups from PostgreSQL notifications: a waiter sleeps until a writer's commit says something changed.

A writer calls ``notify(conn, channel)`` inside its transaction; PostgreSQL delivers the
notification when (and only if) the transaction commits. ``Wakeups`` keeps one connection
``LISTEN``ing on the channel, read by a thread of its own, and counts the notifications:
its *generation*. The rule that makes a wake-up never missed: read the generation *before*
looking (``poll_woken``); whatever commits after the look began notifies after it, so the
generation moves past the one read, and ``wait`` returns. While the listener is not
listening (not started yet, or its connection lost), ``generation`` is None and waiters
fall back to polling with back-off; a listener that listens again moves the generation on,
so nothing a waiter looked at before is trusted across the gap.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import sql

from ..common.backoff import pauses
from .database import Conn

log = logging.getLogger(__name__)
T = TypeVar("T")
RELISTEN_PAUSE_S = 1.0
"""How long the listener waits before it connects again after losing its connection."""


def channel(namespace: str, topic: str) -> str:
    """The notification channel of ``topic`` (``commands``, ``command-results``) of ``namespace``."""
    return f"{namespace}.{topic}"


def notify(conn: Conn, channel_name: str) -> None:
    """Wake the listeners of ``channel_name`` when the transaction open on ``conn`` commits."""
    conn.execute("SELECT pg_notify(%s, '')", [channel_name])


class Wakeups:
    """Counts the notifications of one channel on a listening connection of its own (a daemon thread,
    started by the first ``generation``); ``wait`` sleeps until the count moves."""

    def __init__(self, connect: Callable[[], Conn], channel_name: str) -> None:
        self._connect, self._channel = connect, channel_name
        self._changed = threading.Condition()
        self._generation: int | None = None
        self._count = 0
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = os.pipe()
        self._closed = False

    def generation(self) -> int | None:
        """How many wake-ups so far, or None while not listening (then poll)."""
        with self._changed:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._listen, name=f"wakeups {self._channel}", daemon=True)
                self._thread.start()
            return self._generation

    def wait(self, seen: int, timeout_s: float) -> None:
        """Sleep until the generation moves past ``seen`` (or listening stops), at most ``timeout_s``."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != seen, timeout_s)

    def close(self) -> None:
        """Stop listening and close the listening connection."""
        with self._changed:
            if self._closed:
                return
            self._closed, thread = True, self._thread
        os.write(self._stop_w, b"x")
        if thread is not None:
            thread.join(5)
        os.close(self._stop_r)
        os.close(self._stop_w)

    def _listen(self) -> None:
        """Listen until closed, connecting again after a lost connection."""
        while not self._closed:
            try:
                with self._connect() as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._moved(listening=True)
                    self._read(conn)
            except Exception as e:  # the listener never dies: its waiters poll until it listens again
                log.info("listening on %s stopped (%s); polling meanwhile", self._channel, e)
            self._moved(listening=False)
            if not self._closed:
                self._sleep(RELISTEN_PAUSE_S)

    def _read(self, conn: Conn) -> None:
        """Count the notifications arriving on ``conn`` until closed (raises when the connection is lost)."""
        pgconn = conn.pgconn
        with selectors.DefaultSelector() as selector:
            selector.register(conn.fileno(), selectors.EVENT_READ)
            selector.register(self._stop_r, selectors.EVENT_READ)
            while not self._closed:
                arrived = 0
                while pgconn.notifies() is not None:  # those already read, then those the socket brings
                    arrived += 1
                if arrived:
                    self._moved(listening=True)
                if pgconn.status != psycopg.pq.ConnStatus.OK:
                    raise psycopg.OperationalError("the listening connection was closed")
                if self._stop_r in {key.fd for key, _ in selector.select()}:
                    return
                pgconn.consume_input()

    def _moved(self, listening: bool) -> None:
        with self._changed:
            self._count += 1
            self._generation = self._count if listening else None
            self._changed.notify_all()

    def _sleep(self, seconds: float) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._stop_r, selectors.EVENT_READ)
            selector.select(seconds)


def poll_woken(attempt: Callable[[int | None], T], timeout_s: float, wakeups: Wakeups) -> T:
    """``attempt(generation)`` until it is truthy or ``timeout_s`` passed; again after each wake-up, or with
    back-off while not listening. It always calls ``attempt`` at least once and returns its last answer."""
    deadline = time.monotonic() + timeout_s
    pause = pauses(0.002, 0.05)
    while True:
        seen = wakeups.generation()
        answer = attempt(seen)
        remaining = deadline - time.monotonic()
        if answer or remaining <= 0:
            return answer
        if seen is None:
            time.sleep(min(pause(), remaining))
        else:
            wakeups.wait(seen, remaining)
