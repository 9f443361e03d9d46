"""``GET /health``: each component ``ok``, ``degraded`` or ``down``, without raw error text."""

from __future__ import annotations

from typing import Any

from ...domain.errors import SyncBackboneError
from ..app.backbone import Backbone
from ..app.read_side import ReadSide
from ..common.net import port_open

LAG_DEGRADED = 10_000
"""Events behind at which a projection counts as degraded."""


def health_report(backbone: Backbone, side: ReadSide) -> dict[str, Any]:
    """Whether each dependency answers, and how far behind each projection is."""
    components: dict[str, str] = {}
    report: dict[str, Any] = {"postgres": True, "kafka": None, "projections": {}}
    try:
        report["projections"] = {name: {"lag": lag} for name, lag in side.lag().items()}
        components["postgres"] = "ok"
    except SyncBackboneError as e:
        report["postgres"] = False
        components["postgres"] = "down"
        report["error"] = f"PostgreSQL or the log cannot be read ({type(e).__name__})"
    servers = backbone.settings.kafka_bootstrap
    if servers:
        host, _, port = servers.split(",")[0].rpartition(":")
        report["kafka"] = port.isdigit() and port_open(host or "localhost", int(port))
        components["kafka"] = "ok" if report["kafka"] else "down"
    for name, lag in report["projections"].items():
        components[f"projection:{name}"] = "ok" if lag["lag"] < LAG_DEGRADED else "degraded"
    report["ok"] = bool(report["postgres"]) and report["kafka"] is not False
    states = set(components.values())
    report["status"] = "down" if "down" in states else "degraded" if "degraded" in states else "ok"
    report["components"] = components
    return report
