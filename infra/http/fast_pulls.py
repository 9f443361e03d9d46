"""Long-polls without the framework's per-request machinery: the hot path of thousands of waiting clients.

``GET /sync/pull`` with a ``wait`` is what every idle client holds open and sends again
after each change. FastAPI's routing, dependency solving, parameter models and exit stacks
cost more than the wait itself (CPU per request, and memory per waiting request), so this
ASGI middleware, just inside the edge (the caller is authenticated and rate-limited),
answers such a request itself, through the same code as the route: the same checks
(``readable``), the same stream slots, ``LivePulls.wait``, and the same shared, compressed
page bytes. It takes only a request whose parameters are plainly valid (each known one at
most once, in the route's own patterns); anything else, and any error before it answers
(a malformed cursor, a missing scope, no slot left), goes on to the route, which answers it
as the OpenAPI document says.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import parse_qsl

from ...domain.errors import SyncBackboneError
from ..app.limits import StreamSlots
from ..app.live import LivePulls
from ..app.sync import MAX_WAIT_S
from .edge import ASGIApp, Receive, Scope, Send, principal
from .sync_routes import COLLECTIONS, CURSOR, coded_page, readable, split_names

PATH = "/sync/pull"
PATTERNS = {
    "cursor": re.compile(CURSOR),
    "collections": re.compile(COLLECTIONS),
    "limit": re.compile(r"^[0-9]{1,4}$"),
    "wait": re.compile(r"^[0-9]{1,2}(\.[0-9]{1,6})?$"),
}


@functools.lru_cache(maxsize=4096)
def plain_query(query: bytes) -> tuple[str | None, str, int, float] | None:
    """The cursor, collections, limit and wait of a long-poll the route would take as they are, or None (the
    route is to judge); remembered, as thousands of waiting clients send the same few queries."""
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    params = dict(pairs)
    if len(params) != len(pairs) or not all(k in PATTERNS and PATTERNS[k].match(v) for k, v in pairs):
        return None
    limit, wait = int(params.get("limit", "500")), float(params.get("wait", "0"))
    if "collections" not in params or not 1 <= limit <= 1000 or not 0 < wait <= MAX_WAIT_S:
        return None
    return params.get("cursor"), params["collections"], limit, wait


class FastPulls:
    """ASGI middleware answering plainly valid long-polls itself; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, pulls: LivePulls, streams: StreamSlots) -> None:
        self.app, self.pulls, self.streams = app, pulls, streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = None
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == PATH:
            params = plain_query(scope.get("query_string", b""))
        if params is None or not await self.answered(scope, params, send):
            await self.app(scope, receive, send)

    async def answered(self, scope: Scope, params: tuple[str | None, str, int, float], send: Send) -> bool:
        """Whether the long-poll was answered here (False: nothing was sent; the route is to answer it)."""
        cursor, collections, limit, wait = params
        try:
            who = principal(scope.get("state", {}))
            names = readable(who, split_names(collections))
            release = self.streams.acquire(who.key)
        except SyncBackboneError:
            return False
        try:
            page = await self.pulls.wait(cursor, names, limit, wait, who.tenant)
        except SyncBackboneError:  # e.g. a malformed cursor (the route's 400), found before any wait
            return False
        finally:
            release()
        accept = dict(scope.get("headers") or []).get(b"accept-encoding", b"").decode("latin-1")
        body, headers = await coded_page(page, accept)
        pairs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        pairs += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": 200, "headers": pairs})
        await send({"type": "http.response.body", "body": body})
        return True
