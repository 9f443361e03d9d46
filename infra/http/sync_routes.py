"""The ``/sync`` routes of the HTTP gateway: push, pull (long-poll), server-sent events, policies.

Pull responses are compressed when the client accepts it: zstd before gzip. Errors are the
gateway's JSON error bodies: a malformed cursor or parameter is a 400, a body that does not
validate a 422. Pull and stream are ``async``: a waiting one holds no thread and no database
connection (``app/live.py``); when the process stops, a long-poll returns its page at once
and a stream ends with an ``end`` event carrying the cursor to resume from.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import nullcontext
from typing import Any

import zstandard
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask

from ...domain.errors import Forbidden
from ...domain.names import NAME
from ...domain.policy_config import describe
from ..app.auth import Principal
from ..app.limits import StreamSlots
from ..app.live import LivePulls, SharedPage
from ..app.sync import MAX_WAIT_S

MIN_COMPRESS_BYTES = 256
SSE_MAX_S = 300.0
SSE_KEEPALIVE_S = 15.0
SSE_PAGE = 500
CURSOR = r"^[A-Za-z0-9_-]{1,8000}={0,2}$"
COLLECTIONS = NAME[:-1] + "(," + NAME[1:-1] + ")*$"


class PushRequest(BaseModel):
    """A batch of mutations of one client."""

    model_config = ConfigDict(extra="forbid")

    client: str = Field(pattern=NAME, description="the client's id: with seq, the idempotency key of a mutation")
    mutations: list[Any] = Field(max_length=1000, description="each checked on its own; see the Mutation schema")


def encoders() -> dict[str, Callable[[bytes], bytes]]:
    """The content codings this server can produce, preferred first."""
    return {
        "zstd": zstandard.ZstdCompressor(level=3).compress,
        "gzip": lambda body: gzip.compress(body, compresslevel=6, mtime=0),
    }


def accepted_codings(header: str) -> set[str]:
    """The codings an Accept-Encoding header accepts (q=0 refuses one)."""
    out = set()
    for part in header.split(","):
        name, _, params = part.strip().partition(";")
        if name and params.replace(" ", "") not in ("q=0", "q=0.0"):
            out.add(name.strip().lower())
    return out


ENCODERS = encoders()


async def coded_page(page: SharedPage, accept_encoding: str) -> tuple[bytes, dict[str, str]]:
    """``page`` as JSON, compressed with the best coding the client accepts (shared by its readers), and the
    headers that say so."""
    body, headers = page.json, {"Vary": "Accept-Encoding"}
    if len(body) >= MIN_COMPRESS_BYTES:
        accepted = accepted_codings(accept_encoding)
        for name, encode in ENCODERS.items():
            if name in accepted:
                body, headers["Content-Encoding"] = await page.coded(name, encode), name
                break
    return body, headers


async def compressed_page(page: SharedPage, accept_encoding: str) -> Response:
    """``page`` as a JSON response, compressed as ``coded_page`` says."""
    body, headers = await coded_page(page, accept_encoding)
    return Response(body, media_type="application/json", headers=headers)


def split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def sync_router(
    pulls: LivePulls,
    policies: dict[str, Any],
    caller: Callable[..., Any],
    secured: Sequence[Any] = (),
    streams: StreamSlots | None = None,
) -> APIRouter:
    """The ``/sync`` routes over ``pulls`` (and its service), for the principal ``caller`` gives; long-polls and
    streams count in ``streams`` (8 per principal unless given)."""
    router = APIRouter(prefix="/sync", tags=["sync"], dependencies=secured)
    streams = streams or StreamSlots(8)
    service = pulls.service

    @router.post("/push", summary="Push mutations; each gets applied, merged or rejected")
    def push(
        body: PushRequest,
        timeout: float | None = Query(default=None, gt=0, le=MAX_WAIT_S),
        who: Principal = Depends(caller),  # noqa: B008
    ) -> JSONResponse:
        client = device(who, body.client)
        for collection in mutated_collections(body.mutations):
            who.require("write", collection)
        return JSONResponse({"results": service.push(client, body.mutations, timeout, who)})

    @router.get("/pull", summary="Changes after a cursor, paginated; long-poll with wait")
    async def pull(
        request: Request,
        cursor: str | None = Query(default=None, pattern=CURSOR, description="the previous cursor; none to start"),
        collections: str = Query(pattern=COLLECTIONS, description="subscribed collections: a,b"),
        limit: int = Query(default=500, ge=1, le=1000, description="changes per page"),
        wait: float = Query(default=0.0, ge=0, le=MAX_WAIT_S, description="seconds to wait for a change"),
        who: Principal = Depends(caller),  # noqa: B008
    ) -> Response:
        names = readable(who, split_names(collections))
        with streams.held(who.key) if wait > 0 else nullcontext():
            page = await pulls.wait(cursor, names, limit, wait, who.tenant)
        return await compressed_page(page, request.headers.get("accept-encoding", ""))

    @router.get(
        "/stream",
        summary="Server-sent events: each page of changes after the cursor, as it comes",
        response_class=StreamingResponse,
        responses={200: {"description": "an event stream", "content": {"text/event-stream": {}}}},
    )
    async def stream(
        cursor: str | None = Query(default=None, pattern=CURSOR, description="the previous cursor; none to start"),
        collections: str = Query(pattern=COLLECTIONS, description="subscribed collections: a,b"),
        timeout: float = Query(default=SSE_MAX_S, gt=0, le=SSE_MAX_S, description="seconds before the stream ends"),
        who: Principal = Depends(caller),  # noqa: B008
    ) -> StreamingResponse:
        names = readable(who, split_names(collections))
        first = await pulls.read(cursor, names, SSE_PAGE, who.tenant)  # a bad cursor is refused before streaming
        release = streams.acquire(who.key)  # given back when the stream ends, even if it never started
        chunks = held_while(release, events(pulls, first, names, timeout, who.tenant))
        return StreamingResponse(chunks, media_type="text/event-stream", background=BackgroundTask(aclose, release))

    @router.get("/policies", summary="The conflict policy of each collection (* = every other one)")
    def get_policies(who: Principal = Depends(caller)) -> dict[str, Any]:  # noqa: B008
        return describe(policies)

    return router


async def events(
    pulls: LivePulls, page: SharedPage, collections: list[str], timeout_s: float, tenant: str = ""
) -> AsyncIterator[bytes]:
    """Server-sent events: ``changes`` with each page that has any, a comment now and then to keep alive, and
    ``end`` with the cursor to resume from when the stream ends (its timeout, or the process stopping)."""
    loop = asyncio.get_running_loop()
    last_sent = loop.time()
    deadline = last_sent + timeout_s
    while True:
        if page.page["changes"]:
            yield page.frame()
            last_sent = loop.time()
        elif loop.time() - last_sent >= SSE_KEEPALIVE_S:
            yield b": keep-alive\n\n"
            last_sent = loop.time()
        cursor, left = page.cursor, deadline - loop.time()
        if left <= 0 or pulls.waiting.draining:
            break
        page = await pulls.wait(cursor, collections, SSE_PAGE, min(left, SSE_KEEPALIVE_S), tenant)
    reason = "shutdown" if pulls.waiting.draining else "timeout"
    yield f"event: end\ndata: {json.dumps({'cursor': cursor, 'reason': reason})}\n\n".encode()


def device(who: Principal, body_client: str) -> str:
    """The pushing client: the token's ``client`` when it names one (the body must agree), else the body's."""
    if who.client is not None and body_client != who.client:
        raise Forbidden(f"this token is for client {who.client!r}, not {body_client[:60]!r}")
    return body_client


def mutated_collections(mutations: list[Any]) -> set[str]:
    """The collections a push's mutations name (malformed ones are refused later, one by one)."""
    return {m["collection"] for m in mutations if isinstance(m, dict) and isinstance(m.get("collection"), str)}


def readable(who: Principal, collections: list[str]) -> list[str]:
    """``collections``, each checked readable by ``who``."""
    for collection in collections:
        who.require("read", collection)
    return collections


async def held_while(release: Callable[[], None], chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``chunks``, calling ``release`` when the stream ends or the client goes."""
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        release()


async def aclose(release: Callable[[], None]) -> None:
    """``release`` on the loop (a background task after the response)."""
    release()
