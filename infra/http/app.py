"""The HTTP gateway on FastAPI: commands in, documents and audit out, health; OpenAPI at /docs.

Every route but ``GET /health`` needs a bearer token (``edge.py``); each route checks the
principal's scope, and every collection and aggregate is the principal's tenant's
(``tenant~collection`` in the log and the read models). Errors are ``errors.py``'s shape.
Waits (long-polls, streams, read-your-writes) are ``async`` and woken by the read models'
notices, which the app listens to while it runs (its lifespan); other routes run on worker
threads. ``serve_http`` runs the gateway (``server.py``) with the command processor and the
projection runners.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ...commands.models import MAX_VERSION, parse_command
from ...domain.documents import aggregate_id, split_aggregate_id
from ...domain.errors import ConfigurationError, InvalidInput
from ...domain.names import NAME, qualified, unqualified
from ...projections.queries import MAX_LIMIT
from ..app.auth import Principal, TokenVerifier
from ..app.limits import RateLimiter, StreamSlots
from ..app.live import LivePulls, caught_up
from ..app.queries import parse_positions, parse_where
from ..app.read_side import ReadSide
from ..app.sync import SyncService
from ..app.waiting import WaitingRoom
from ..bootstrap import Backbone, token_verifier
from .edge import Edge, principal
from .errors import ERROR_RESPONSES, ErrorBody, install_error_handlers
from .fast_pulls import FastPulls
from .health import health_report
from .server import run_gateway
from .sync_routes import sync_router

log = logging.getLogger(__name__)
STATUS_OF_REJECTION = {"version_conflict": 409, "rejected": 409}
MAX_WAIT_S = 60.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")
POSITIONS = r"^([0-9]{1,9}:[0-9]{1,18}(,[0-9]{1,9}:[0-9]{1,18})*)?$"
AGGREGATE_ID = NAME[:-1] + "/" + NAME[1:]
Filter = Annotated[
    str, StringConstraints(pattern=r"^[^=.\x00-\x1f]+(\.[^=.\x00-\x1f]+)*=[^\x00]*$", max_length=2000)
]


def not_a_bool(value: object) -> object:
    """JSON's true/false are not numbers here (pydantic would read them as 1/0)."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    return value


Version = Annotated[int, BeforeValidator(not_a_bool), Field(ge=0, le=MAX_VERSION)]


class PositionBody(BaseModel):
    """Where an event landed in the log."""

    partition: int
    offset: int


class ResultBody(BaseModel):
    """The result of a command: accepted with the events' positions, or rejected with the reason."""

    command_id: str
    status: Literal["accepted", "rejected"]
    aggregate_id: str
    version: int
    reason: str | None
    code: str | None
    positions: list[PositionBody]


Refused = ErrorBody | ResultBody
SECURED = [Depends(HTTPBearer(auto_error=False, description="a JWT: `syncbackbone token issue`, or your issuer's"))]


class CommandFields(BaseModel):
    """What every command request carries; actor, tenant and client come from the token."""

    model_config = ConfigDict(extra="forbid")

    collection: str = Field(pattern=NAME)
    id: str = Field(pattern=NAME)
    expected_version: Version | None = None
    command_id: str | None = Field(default=None, pattern=NAME, description="idempotency key, per principal")


class CreateDocumentRequest(CommandFields):
    """Create a document with ``data``; rejected if it exists."""

    type: Literal["CreateDocument"]
    data: dict[str, Any]


class PutDocumentRequest(CommandFields):
    """Replace a document's content with ``data``, creating it when missing."""

    type: Literal["PutDocument"]
    data: dict[str, Any]


class PatchDocumentRequest(CommandFields):
    """Set the fields in ``data`` and remove the fields in ``unset``."""

    type: Literal["PatchDocument"]
    data: dict[str, Any] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list, max_length=1000)


class DeleteDocumentRequest(CommandFields):
    """Delete a document."""

    type: Literal["DeleteDocument"]


CommandRequest = Annotated[
    CreateDocumentRequest | PutDocumentRequest | PatchDocumentRequest | DeleteDocumentRequest,
    Field(discriminator="type"),
]


async def caller(request: Request) -> Principal:
    """The principal the edge admitted for this request (async: no worker thread for it)."""
    return principal(request.scope.get("state", {}))


async def reader(collection: str = Path(pattern=NAME), who: Principal = Depends(caller)) -> Principal:  # noqa: B008
    """The caller, allowed to read ``collection`` (checked before any wait)."""
    return who.require("read", collection)


def namespaced(who: Principal, command_id: str | None) -> str | None:
    """A command id in the principal's own namespace (unchanged when auth is off and for a fresh id)."""
    return None if command_id is None else who.id_prefix + command_id


def scoped_aggregate(who: Principal, agg_id: str) -> str:
    """``collection/id`` of the caller's tenant as the log holds it; InvalidInput if malformed."""
    collection, doc_id = split_aggregate_id(agg_id)
    return aggregate_id(qualified(who.tenant, collection), doc_id)


def as_seen(view: dict[str, Any]) -> dict[str, Any]:
    """A document view with its collection named as its tenant names it."""
    return view | {"collection": unqualified(view["collection"])}


def create_app(backbone: Backbone, side: ReadSide, verifier: TokenVerifier | None = None) -> FastAPI:
    """The gateway of ``backbone`` reading through ``side`` (tokens verified as the settings say)."""
    settings = backbone.settings
    waiting = WaitingRoom(side.notices)

    @asynccontextmanager
    async def listening(_: FastAPI) -> AsyncIterator[None]:
        await waiting.start()
        try:
            yield
        finally:
            await waiting.stop()

    app = FastAPI(
        title="syncbackbone",
        summary="Commands in, read models out.",
        responses=ERROR_RESPONSES,
        lifespan=listening,
        **own_telemetry(),
    )
    app.state.waiting = waiting
    install_error_handlers(app)
    add_command_routes(app, backbone)
    add_read_routes(app, side, waiting)

    @app.get(
        "/health",
        summary="ok / degraded / down for PostgreSQL, Kafka (when configured) and projections; no token needed",
        openapi_extra={"security": []},
        responses={503: {"description": "a component is down"}},
    )
    def health() -> JSONResponse:
        report = health_report(backbone, side)
        return JSONResponse(report, status_code=200 if report["ok"] else 503)

    add_sync_routes(app, backbone, side, waiting)
    if settings.allowed_hosts != ["*"]:  # any host: no middleware layer (each costs every request)
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    verifier = verifier if verifier is not None else token_verifier(settings)
    rate, anonymous = RateLimiter.of(settings.rate_limit), RateLimiter.of(settings.rate_limit_anonymous)
    app.add_middleware(Edge, verifier=verifier, rate=rate, anonymous=anonymous, max_body=settings.max_body_bytes)
    return app


def add_sync_routes(app: FastAPI, backbone: Backbone, side: ReadSide, waiting: WaitingRoom) -> None:
    """``/sync/*``, with plainly valid long-polls answered before the framework (``fast_pulls.py``)."""
    settings = backbone.settings
    pulls = LivePulls(SyncService(backbone, side.queries), waiting)
    streams = StreamSlots(settings.max_streams_per_principal)
    app.include_router(sync_router(pulls, settings.policies, caller, SECURED, streams))
    app.add_middleware(FastPulls, pulls=pulls, streams=streams)  # the innermost: inside the edge and host check


def own_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry instrumentation, where it has one: on when OTEL_* variables configure
    OpenTelemetry, else off (it would look for providers on every request, a tenth of the event loop's time
    with thousands of waiting clients)."""
    if "telemetry" not in inspect.signature(FastAPI).parameters or any(k.startswith("OTEL_") for k in os.environ):
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def add_command_routes(app: FastAPI, backbone: Backbone) -> None:
    """``POST /commands``."""

    @app.post(
        "/commands",
        summary="Send a command through the bus and return its result",
        dependencies=SECURED,
        response_model=ResultBody,
        responses={
            409: {"description": "rejected: a stale expected_version, or a business rule", "model": ResultBody},
            422: {"description": "a body that does not validate, or a command refused as invalid", "model": Refused},
        },
    )
    def post_command(body: CommandRequest, who: Principal = Depends(caller)) -> JSONResponse:  # noqa: B008
        who.require("write", body.collection)
        fields = body.model_dump(exclude_none=True, exclude={"type"})
        fields |= {"collection": qualified(who.tenant, body.collection), "tenant": who.tenant or None}
        fields |= {"actor": who.subject, "client_id": who.client, "command_id": namespaced(who, body.command_id)}
        command = parse_command(body.type, {k: v for k, v in fields.items() if v is not None})
        result = backbone.submit(command).as_dict()
        result |= {"command_id": body.command_id or command.command_id, "aggregate_id": f"{body.collection}/{body.id}"}
        status = 200 if result["status"] == "accepted" else STATUS_OF_REJECTION.get(str(result["code"]), 422)
        return JSONResponse(result, status_code=status)


def add_read_routes(app: FastAPI, side: ReadSide, waiting: WaitingRoom) -> None:
    """Documents and audit trails of the caller's tenant."""
    queries = side.queries

    async def waited(
        who: Principal = Depends(reader),  # noqa: B008
        positions: str = Query(default="", pattern=POSITIONS, description="read-your-writes: partition:offset,..."),
        timeout: float = Query(default=5.0, ge=0, le=MAX_WAIT_S, description="how long to wait for them"),
    ) -> None:
        """Read-your-writes: return once the read models passed ``positions`` (the caller checked first); the
        wait is woken by the projection's commits, holding no thread."""
        if wanted := parse_positions(positions):
            checked = await run_in_threadpool(side.checked_positions, wanted)
            await caught_up(queries, waiting, checked, timeout)

    documents = APIRouter(prefix="/collections/{collection}/documents", dependencies=[*SECURED, Depends(waited)])

    @documents.get("", summary="Documents of a collection, by id, keyset-paginated")
    def list_documents(
        collection: str = Path(pattern=NAME),
        where: list[Filter] = Query(default=[], description="field=value, JSON equality; repeatable"),  # noqa: B008
        after: str | None = Query(default=None, pattern=NAME, description="the next_after cursor of the previous page"),
        limit: int = Query(default=100, ge=1, le=MAX_LIMIT),
        who: Principal = Depends(reader),  # noqa: B008
    ) -> dict[str, Any]:
        page = queries.documents(qualified(who.tenant, collection), parse_where(where), after, limit).as_dict()
        return page | {"items": [as_seen(d) for d in page["items"]]}

    @documents.get("/{doc_id}", summary="One document (read-your-writes optional)")
    def get_document(
        collection: str = Path(pattern=NAME),
        doc_id: str = Path(pattern=NAME),
        who: Principal = Depends(reader),  # noqa: B008
    ) -> dict[str, Any]:
        return as_seen(queries.document(qualified(who.tenant, collection), doc_id).as_dict())

    app.include_router(documents)

    @app.get(
        "/aggregates/{aggregate_id:path}/audit",
        summary="Who changed an aggregate, when, by which command (admin)",
        dependencies=SECURED,
    )
    def get_audit(
        aggregate_id: str = Path(pattern=AGGREGATE_ID, description="collection/id"),
        limit: int = Query(default=1000, ge=1, le=MAX_LIMIT),
        who: Principal = Depends(caller),  # noqa: B008
    ) -> dict[str, Any]:
        who.require("admin")
        return {"aggregate_id": aggregate_id, "entries": queries.audit(scoped_aggregate(who, aggregate_id), limit)}


def parse_host_port(where: str) -> tuple[str, int]:
    """HOST:PORT, or InvalidInput."""
    host, sep, port = where.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"--http {where!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return host or "127.0.0.1", int(port)


def serve_http(backbone: Backbone, where: str, tls: tuple[str, str] | None = None) -> int:
    """Run the processor, the projection runners and the gateway until Ctrl-C or SIGTERM."""
    host, port = parse_host_port(where)
    if backbone.settings.auth == "off":
        if host not in LOOPBACK:
            raise ConfigurationError(f"SYNC_AUTH=off serves loopback only; {host!r} is not (use 127.0.0.1)")
        log.warning("SYNC_AUTH=off: every caller is an admin of every collection; serving loopback only")
    app = create_app(backbone, side := backbone.read_side())
    scheme = "https" if tls else "http"
    try:
        with backbone.running_processor(), side.running():
            print(f"serving {scheme}://{host}:{port} (OpenAPI at /docs); Ctrl-C to stop", file=sys.stderr)
            run_gateway(app, host, port, app.state.waiting, tls)
    finally:
        side.close()
    return 0
