"""The HTTP gateway served by uvicorn in a background thread, on a free loopback port (demo, bench); stopping it
drains its waiting requests as a signal does (``server.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from ...domain.errors import ConfigurationError
from ..app.read_side import ReadSide
from ..bootstrap import Backbone
from ..common.net import free_port
from .app import create_app
from .server import GatewayServer


@contextmanager
def gateway_in_thread(backbone: Backbone, side: ReadSide, timeout_s: float = 30.0) -> Iterator[str]:
    """The gateway's base URL while the block runs."""
    port = free_port()
    app = create_app(backbone, side)
    server = GatewayServer(uvicorn.Config(app, "127.0.0.1", port, log_level="warning"), app.state.waiting)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ConfigurationError(f"the HTTP gateway did not start on port {port}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
