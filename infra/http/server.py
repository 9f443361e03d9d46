"""Serving the gateway: uvicorn on uvloop and httptools, where SIGTERM (or Ctrl-C) drains and returns.

On the signal the server stops accepting connections and wakes every waiting request
(``WaitingRoom.drain``): a long-poll returns its page, a stream ends with an ``end`` event.
It then waits up to ``GRACE_S`` for the responses to go out, cancels whatever is left, and
returns to its caller, which stops its workers and exits with 0 (uvicorn alone would raise
the signal again once done, killing the process before its workers stop).
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from ..app.waiting import WaitingRoom

GRACE_S = 3
"""How long the responses of drained requests may take to go out before their tasks are cancelled."""
BACKLOG = 4096
"""Connections the kernel queues before the gateway accepts them (thousands of clients reconnect at once)."""


class GatewayServer(uvicorn.Server):
    """A uvicorn server that drains the gateway's waiting requests when it shuts down."""

    def __init__(self, config: uvicorn.Config, waiting: WaitingRoom) -> None:
        super().__init__(config)
        self.waiting = waiting

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.waiting.drain()
        await super().shutdown(sockets)

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM shut the server down; the caller carries on afterwards (they are not raised again)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)


def run_gateway(app: ASGIApp, host: str, port: int, waiting: WaitingRoom, tls: tuple[str, str] | None = None) -> None:
    """Serve ``app`` on ``host:port`` (HTTPS with ``tls``: certificate and key files) until a signal drains it."""
    cert, key = tls or (None, None)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        ssl_certfile=cert,
        ssl_keyfile=key,
        timeout_graceful_shutdown=GRACE_S,
        backlog=BACKLOG,
    )
    GatewayServer(config, waiting).run()
