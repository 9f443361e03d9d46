"""The ``/sync`` routes of the HTTP gateway: push, pull (long-poll), server-sent events, policies.

Pull responses are compressed when the client accepts it: zstd before gzip. Errors are the
gateway's JSON error bodies: a malformed cursor or parameter is a 400, a body that does not
validate a 422.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import zstandard
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ...domain.names import NAME
from ...domain.policy_config import describe
from ..app.sync import MAX_WAIT_S, SyncService

MIN_COMPRESS_BYTES = 256
SSE_MAX_S = 300.0
SSE_KEEPALIVE_S = 15.0


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


def compressed_json(payload: Any, accept_encoding: str) -> Response:
    """``payload`` as JSON, compressed with the best coding the client accepts."""
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    headers = {"Vary": "Accept-Encoding"}
    if len(body) >= MIN_COMPRESS_BYTES:
        accepted = accepted_codings(accept_encoding)
        for name, encode in encoders().items():
            if name in accepted:
                body, headers["Content-Encoding"] = encode(body), name
                break
    return Response(body, media_type="application/json", headers=headers)


def split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def sync_router(service: SyncService, policies: dict[str, Any]) -> APIRouter:
    """The ``/sync`` routes over ``service``."""
    router = APIRouter(prefix="/sync", tags=["sync"])

    @router.post("/push", summary="Push mutations; each gets applied, merged or rejected")
    def push(body: PushRequest, timeout: float | None = Query(default=None, gt=0, le=MAX_WAIT_S)) -> JSONResponse:
        return JSONResponse({"results": service.push(body.client, body.mutations, timeout)})

    @router.get("/pull", summary="Changes after a cursor, paginated; long-poll with wait")
    def pull(
        request: Request,
        cursor: str | None = Query(default=None, description="the cursor of the previous pull; none to start"),
        collections: str = Query(default="", description="subscribed collections: a,b (default: the cursor's)"),
        limit: int = Query(default=500, description="changes per page, 1..1000"),
        wait: float = Query(default=0.0, ge=0, le=MAX_WAIT_S, description="seconds to wait for a change"),
    ) -> Response:
        page = service.wait_pull(cursor, split_names(collections), limit, wait)
        return compressed_json(page, request.headers.get("accept-encoding", ""))

    @router.get("/stream", summary="Server-sent events: each page of changes after the cursor, as it comes")
    def stream(
        cursor: str | None = None,
        collections: str = "",
        timeout: float = Query(default=SSE_MAX_S, gt=0, le=SSE_MAX_S, description="seconds before the stream ends"),
    ) -> StreamingResponse:
        names = split_names(collections)
        service.pull(cursor, names, 1)  # refuse a bad cursor or subscription before streaming
        return StreamingResponse(events(service, cursor, names, timeout), media_type="text/event-stream")

    @router.get("/policies", summary="The conflict policy of each collection (* = every other one)")
    def get_policies() -> dict[str, Any]:
        return describe(policies)

    return router


def events(service: SyncService, cursor: str | None, collections: list[str], timeout_s: float) -> Iterator[str]:
    """Server-sent events: ``changes`` with each non-empty page, a comment now and then to keep alive."""
    deadline = time.monotonic() + timeout_s
    last_sent = time.monotonic()
    while (left := deadline - time.monotonic()) > 0:
        page = service.wait_pull(cursor, collections, 500, min(left, SSE_KEEPALIVE_S))
        cursor = page["cursor"]
        if page["changes"]:
            yield f"event: changes\nid: {cursor}\ndata: {json.dumps(page, default=str)}\n\n"
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= SSE_KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
