"""A small real HTTP server that speaks just enough of ``/sync`` and records every request.

It stands where a gateway would, to see what the SDK sends (headers included) and to answer
as a test scripts it: ``refuse(request)`` returns a status to answer with an error body, or
None for the ordinary answer (every mutation applied at version 1, an empty change feed).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    """One request as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Recorder:
    """What the server saw, and how it answers."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    refuse: Callable[[Seen], int | None] = lambda request: None

    def authorizations(self) -> list[str | None]:
        return [request.headers.get("authorization") for request in self.seen]


def ordinary_answer(request: Seen) -> Any:
    if request.path.startswith("/sync/policies"):
        return {}
    if request.path.startswith("/sync/pull"):
        return {"changes": [], "cursor": "c1", "more": False}
    client = request.body["client"]
    return {
        "results": [
            {"seq": m["seq"], "status": "applied", "version": 1, "command_id": f"{client}:{m['seq']}"}
            for m in request.body["mutations"]
        ]
    }


def handler_for(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(None)

        def do_POST(self) -> None:
            self._answer(json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"null"))

        def _answer(self, body: Any) -> None:
            request = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            recorder.seen.append(request)
            status = recorder.refuse(request)
            payload = ordinary_answer(request) if status is None else {"error": {"message": f"refused with {status}"}}
            data = json.dumps(payload).encode()
            self.send_response(status or 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def recording_server() -> Iterator[Recorder]:
    """A recorder listening on a free loopback port until the block ends."""
    recorder = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(recorder))
    server.daemon_threads = True
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="recorder", daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
