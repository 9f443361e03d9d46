"""The HTTP gateway on FastAPI: commands in, documents and audit out, health; OpenAPI at /docs.

Every error is a JSON body ``{"error": {"type", "message"}}``: bad input is 400 (422
for a body that does not validate, 404 for what does not exist, 409 for a rejected
command), a read-your-writes wait that expires is 504, an unreachable store is 503.
``serve_http`` runs the gateway with the command processor and the projection runners.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from ...commands.models import parse_command
from ...domain.errors import InvalidInput, LogUnavailable, ResultTimeout, SyncBackboneError
from ...projections.errors import NotFound
from ..app.queries import parse_positions, parse_where
from ..app.read_side import ReadSide
from ..app.sync import SyncService
from ..bootstrap import Backbone
from ..common.net import port_open
from .sync_routes import sync_router

STATUS_OF_REJECTION = {"version_conflict": 409, "rejected": 409}
MAX_WAIT_S = 60.0


class CommandRequest(BaseModel):
    """A command, as ``syncbackbone submit`` takes it."""

    model_config = ConfigDict(extra="forbid")

    type: str
    collection: str
    id: str
    data: dict[str, Any] | None = None
    unset: list[str] | None = None
    expected_version: int | None = None
    command_id: str | None = None


def error_body(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def status_of(error: SyncBackboneError) -> int:
    """The HTTP status of one of our errors."""
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, InvalidInput):
        return 400
    if isinstance(error, ResultTimeout):
        return 504
    return 503 if isinstance(error, LogUnavailable) else 500


def install_error_handlers(app: FastAPI) -> None:
    """Turn every error into a JSON error body."""

    async def ours(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, SyncBackboneError)
        return error_body(status_of(e), type(e).__name__, str(e))

    async def invalid(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, RequestValidationError)
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        return error_body(422, "InvalidInput", problems)

    async def http(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, HTTPException)
        return error_body(e.status_code, "HTTPError", str(e.detail))

    app.add_exception_handler(SyncBackboneError, ours)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)


def create_app(backbone: Backbone, side: ReadSide) -> FastAPI:
    """The gateway of ``backbone`` reading through ``side``."""
    app = FastAPI(title="syncbackbone", summary="Commands in, read models out.")
    install_error_handlers(app)
    queries = side.queries

    @app.post("/commands", summary="Send a command through the bus and return its result")
    def post_command(body: CommandRequest) -> JSONResponse:
        fields = body.model_dump(exclude_none=True, exclude={"type"})
        result = backbone.submit(parse_command(body.type, fields))
        status = 200 if result.status == "accepted" else STATUS_OF_REJECTION.get(result.code or "", 422)
        return JSONResponse(result.as_dict(), status_code=status)

    @app.get("/collections/{collection}/documents", summary="Documents of a collection, by id, keyset-paginated")
    def list_documents(
        collection: str,
        where: list[str] = Query(default=[], description="field=value, JSON equality; repeatable"),  # noqa: B008
        after: str | None = Query(default=None, description="the next_after cursor of the previous page"),
        limit: int = 100,
        positions: str = Query(default="", description="read-your-writes: partition:offset,..."),
        timeout: float = Query(default=5.0, ge=0, le=MAX_WAIT_S),
    ) -> dict[str, Any]:
        queries.wait_for(parse_positions(positions), timeout)
        return queries.documents(collection, parse_where(where), after, limit).as_dict()

    @app.get("/collections/{collection}/documents/{doc_id}", summary="One document (read-your-writes optional)")
    def get_document(
        collection: str,
        doc_id: str,
        positions: str = Query(default="", description="wait until the read model passed these: p:o,p:o"),
        timeout: float = Query(default=5.0, ge=0, le=MAX_WAIT_S),
    ) -> dict[str, Any]:
        queries.wait_for(parse_positions(positions), timeout)
        return queries.document(collection, doc_id).as_dict()

    @app.get("/aggregates/{aggregate_id:path}/audit", summary="Who changed an aggregate, when, by which command")
    def get_audit(aggregate_id: str, limit: int = 1000) -> dict[str, Any]:
        return {"aggregate_id": aggregate_id, "entries": queries.audit(aggregate_id, limit)}

    @app.get("/health", summary="PostgreSQL, Kafka (when configured) and projection lag")
    def health() -> JSONResponse:
        report = health_report(backbone, side)
        return JSONResponse(report, status_code=200 if report["ok"] else 503)

    app.include_router(sync_router(SyncService(backbone, queries), backbone.settings.policies))
    return app


def health_report(backbone: Backbone, side: ReadSide) -> dict[str, Any]:
    """Whether each dependency answers, and how far behind each projection is."""
    report: dict[str, Any] = {"postgres": True, "kafka": None, "projections": {}}
    try:
        report["projections"] = {name: {"lag": lag} for name, lag in side.lag().items()}
    except SyncBackboneError as e:
        report["postgres"], report["error"] = False, str(e)
    servers = backbone.settings.kafka_bootstrap
    if servers:
        host, _, port = servers.split(",")[0].rpartition(":")
        report["kafka"] = port.isdigit() and port_open(host or "localhost", int(port))
    report["ok"] = bool(report["postgres"]) and report["kafka"] is not False
    return report


def parse_host_port(where: str) -> tuple[str, int]:
    """HOST:PORT, or InvalidInput."""
    host, sep, port = where.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"--http {where!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return host or "127.0.0.1", int(port)


def serve_http(backbone: Backbone, where: str) -> int:
    """Run the processor, the projection runners and the gateway until Ctrl-C or SIGTERM."""
    host, port = parse_host_port(where)
    side = backbone.read_side()
    try:
        with backbone.running_processor(), side.running():
            print(f"serving http://{host}:{port} (OpenAPI at /docs); Ctrl-C to stop", file=sys.stderr)
            uvicorn.run(create_app(backbone, side), host=host, port=port, log_level="warning")
    finally:
        side.close()
    return 0
