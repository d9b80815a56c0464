"""Liveness and readiness endpoints for orchestrators and load balancers."""

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse


async def live(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> JSONResponse:
    db = request.app.state.db
    try:
        async with asyncio.timeout(2):
            async with db.connection() as conn:
                await conn.fetchval("SELECT 1")
    except Exception:  # any failure means "not ready"; the reason goes to the log, not the client
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    body: dict[str, object] = {"status": "ok", "database": "ok"}
    replicas = db.report()
    if replicas is not None:
        # A replica that is down or lagging only sends its reads to the primary: still ready.
        body["replicas"] = replicas
    return JSONResponse(body)
