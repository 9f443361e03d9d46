"""The gateway's edge, before any route: body size, authentication and rate limits (pure ASGI).

Every request but ``GET /health...`` needs ``Authorization: Bearer <token>``; the verified
``Principal`` is put in ``scope["state"]["principal"]`` for the routes. Requests without a
valid token are rate-limited per remote address, verified ones per principal. A body over
the limit is refused (413) from its Content-Length, or as soon as more bytes arrive than
allowed, without reading it whole.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ...domain.errors import RateLimited, SyncBackboneError, Unauthenticated
from ..app.auth import ANONYMOUS_ADMIN, Principal, TokenVerifier
from ..app.limits import RateLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
OPEN_PATHS = ("/health",)


class TooLargeBody(Exception):
    """A request body that passed the limit while being read."""


Reply = tuple[int, bytes, list[tuple[bytes, bytes]]]


def error_response(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """Status, body and headers of the gateway's JSON error shape."""
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    pairs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    pairs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return status, body, pairs


def challenge_headers() -> dict[str, str]:
    """The WWW-Authenticate header of a 401."""
    return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def error_of(e: SyncBackboneError) -> Reply:
    """The response to an edge error: 401, 429."""
    if isinstance(e, RateLimited):
        retry = {"Retry-After": str(max(1, math.ceil(e.retry_after_s)))}
        return error_response(429, "RateLimited", str(e), retry)
    return error_response(401, "Unauthenticated", str(e), challenge_headers())


class Edge:
    """ASGI middleware: body limit, then (off the open paths) token and rate limit."""

    def __init__(
        self, app: ASGIApp, verifier: TokenVerifier | None, rate: RateLimiter, anonymous: RateLimiter, max_body: int
    ) -> None:
        self.app, self.verifier, self.rate, self.anonymous, self.max_body = app, verifier, rate, anonymous, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_body:
            await respond(send, *self.too_large())
            return
        if not scope["path"].startswith(OPEN_PATHS):
            try:
                scope.setdefault("state", {})["principal"] = self.admit(scope)
            except SyncBackboneError as e:
                await respond(send, *error_of(e))
                return
        await self.guarded(scope, receive, send)

    def too_large(self) -> Reply:
        """The 413 of a body over the limit."""
        return error_response(413, "TooLarge", f"the request body is over {self.max_body:,} bytes")

    def admit(self, scope: Scope) -> Principal:
        """The caller's principal, having spent one request of its rate; or Unauthenticated / RateLimited."""
        if self.verifier is None:
            return ANONYMOUS_ADMIN
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("this route needs Authorization: Bearer <token>")
            principal = self.verifier.verify(token.strip())
        except Unauthenticated:
            client = scope.get("client") or ("unknown", 0)
            self.anonymous.take(f"ip:{client[0]}")
            raise
        self.rate.take(principal.key)
        return principal

    async def guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, with the body counted as it arrives (413 past the limit)."""
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise TooLargeBody
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except TooLargeBody:
            if not started:
                await respond(
                    send, *error_response(413, "TooLarge", f"the request body is over {self.max_body:,} bytes")
                )


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Send a whole response."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def principal(scope_state: dict[str, Any]) -> Principal:
    """The principal the edge admitted (the anonymous admin when auth is off)."""
    found = scope_state.get("principal")
    if not isinstance(found, Principal):
        raise Unauthenticated("this route needs Authorization: Bearer <token>")
    return found
