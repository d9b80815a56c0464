"""The floor for the list scenario: the same SQL as the API's first page, with nothing around it.

A bare Starlette app whose POST handler reads the JSON body, looks the token up, fetches
the first 50 segments by name and their usage with the very functions the API uses, and
answers them as JSON. Served like the API (uvicorn, one worker), it is as fast as that page
can get from Python, so `list / floor` measures what the GraphQL layer costs.

    DATABASE_URL=... python -m uvicorn bench.floor:app --port 8001 --no-access-log
"""

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.settings import Settings
from db import api_keys, segments
from db.pagination import PageRequest
from db.pool import Database

PAGE_SIZE = 50


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


async def first_page(request: Request) -> Response:
    orjson.loads(await request.body())  # parsed, as the API parses every body
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return _json({"error": "unauthenticated"}, 401)
    db: Database = request.app.state.db
    async with db.connection() as conn:
        principal = await api_keys.principal_for_token(conn, token.strip())
        if principal is None:
            return _json({"error": "unauthenticated"}, 401)
        page = PageRequest(column="name", descending=False, limit=PAGE_SIZE)
        listing = segments.segment_listing(principal.project_id, segments.SegmentFilter())
        rows = await listing.page(conn, page)
        rows = rows[:PAGE_SIZE]
        usage = await segments.usage_of_segments(
            conn, principal.project_id, [row["id"] for row in rows]
        )
    used_in: dict[int, list[dict[str, Any]]] = {}
    for row in usage:
        used_in.setdefault(row["segment_id"], []).append(
            {
                "ruleCount": row["rule_count"],
                "flag": {"id": row["flag_id"], "key": row["flag_key"], "name": row["flag_name"]},
                "environment": {"key": row["environment_key"]},
            }
        )
    nodes = []
    for row in rows:
        node = dict(row)
        flags = used_in.get(row["id"], [])
        node["usage"] = {"usageCount": len(flags), "usedInFlags": flags}
        nodes.append(node)
    return _json({"data": {"segments": {"nodes": nodes}}})


def create_floor_app(database_url: str | None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not database_url:
            raise RuntimeError("set DATABASE_URL to the bench database")
        # The pool the API would open with the same settings.
        settings = Settings(database_url=database_url)
        app.state.db = await Database.connect(
            database_url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            statement_timeout_ms=settings.statement_timeout_ms,
            connect_timeout=settings.connect_timeout_s,
        )
        try:
            yield
        finally:
            await app.state.db.close()

    return Starlette(routes=[Route("/graphql", first_page, methods=["POST"])], lifespan=lifespan)


app = create_floor_app(os.environ.get("DATABASE_URL"))
