"""The Starlette application factory."""

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import health
from api.assets import PREFIX, asset_route
from api.auth import Authenticator
from api.consistency import LSN_HEADER
from api.graphql_http import GraphQLEndpoint, graphql_route
from api.rest.openapi import openapi_document
from api.rest.routes import routes as rest_routes
from api.scheduler import Scheduler
from api.settings import Settings
from db.pool import Database
from schema.build import build_schema

log = logging.getLogger("segments")


def create_app(settings: Settings) -> Starlette:
    """An app serving `settings.database_url`, which must already be migrated."""
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url (the CLI starts one if unset)")
    schema = build_schema()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = await Database.connect(
            settings.database_url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            statement_timeout_ms=settings.statement_timeout_ms,
            connect_timeout=settings.connect_timeout_s,
            member_connections=settings.member_connections,
            replica_dsns=settings.database_replica_urls,
            replica_policy=settings.replica_policy,
        )
        app.state.db = db
        app.state.settings = settings
        authenticator = Authenticator(db, settings.token_cache_seconds, settings.database_url)
        await authenticator.start()
        app.state.authenticator = authenticator
        app.state.graphql = GraphQLEndpoint(schema, settings, authenticator)
        scheduler = Scheduler(
            settings.database_url,
            settings.policy,
            settings.scheduler_interval,
            settings.statement_timeout_ms,
        )
        await scheduler.start()
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            await scheduler.stop()
            await authenticator.stop()
            await db.close()

    graphql_methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    graphql_middleware: list[Middleware] = []
    rest_middleware: list[Middleware] = []
    if settings.cors_origins:
        graphql_methods.append("OPTIONS")  # preflights reach the route's CORS middleware
        graphql_middleware.append(_cors(settings.cors_origins, ["GET", "POST"]))
        rest_middleware.append(_cors(settings.cors_origins, ["GET", "POST", "PUT", "DELETE"]))
    return Starlette(
        routes=[
            Route(
                "/graphql", graphql_route, methods=graphql_methods, middleware=graphql_middleware
            ),
            Route(PREFIX + "/{digest}/{name:path}", asset_route, methods=["GET", "HEAD"]),
            Route("/health/live", health.live),
            Route("/health/ready", health.ready),
            Route("/openapi.json", _openapi),
            *rest_routes(rest_middleware, cors=bool(settings.cors_origins)),
        ],
        lifespan=lifespan,
    )


async def _openapi(_request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


def _cors(origins: list[str], methods: list[str]) -> Middleware:
    return Middleware(
        PreflightNoContent,
        allow_origins=origins,
        allow_methods=methods,
        allow_headers=["Authorization", "Content-Type", LSN_HEADER],
        expose_headers=[LSN_HEADER],
        max_age=600,
    )


class PreflightNoContent(CORSMiddleware):
    """Starlette's CORS middleware, answering an accepted preflight with 204 No Content
    (it sends 200 and a body "OK"); a refused one stays 400."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 200:
            return response
        headers = {
            k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")
        }
        return Response(status_code=204, headers=headers)


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` worker processes: settings from the environment."""
    return create_app(Settings())
