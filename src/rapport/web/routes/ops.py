"""Operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import text
from starlette.responses import JSONResponse, Response

from rapport.db.migrate import current_revisions, head_revisions
from rapport.web.deps import Svc

router = APIRouter(include_in_schema=False)

CONNECTED_SOCKETS = Gauge("rapport_websockets_connected", "Open realtime sockets on this node")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: Svc) -> Response:
    """The database answers and its schema is at the code's migration head."""
    try:
        async with services.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            current = await conn.run_sync(current_revisions)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, status_code=503)
    heads = head_revisions()
    if current != heads:
        return JSONResponse(
            {"status": "migrations pending", "current": sorted(current), "head": sorted(heads)},
            status_code=503,
        )
    return JSONResponse({"status": "ready", "revision": sorted(current)})


@router.get("/metrics")
async def metrics(services: Svc) -> Response:
    if services.hub is not None:
        CONNECTED_SOCKETS.set(services.hub.connected_count())
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
