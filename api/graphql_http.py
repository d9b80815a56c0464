"""GraphQL over HTTP: request parsing, authentication, execution, error masking, logging."""

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from graphql import GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import Response
from strawberry import Schema

from api.assets import graphiql_page
from api.auth import Authenticator
from api.bodies import JSON, read_json_body
from api.consistency import request_database, tell_position
from api.errors import RETRY_AFTER, RequestError, typed_error
from api.settings import Settings
from rules.values import loads_json
from schema.context import Context
from schema.execution import Executor, QueryLimits

log = logging.getLogger("segments.http")

# Request ids end up in logs: only a plain token is taken from the client.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

GRAPHQL_RESPONSE = "application/graphql-response+json"


@dataclass
class GraphQLParams:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


def _accepts(request: Request) -> str:
    """The response media type for this request's Accept header."""
    accept = request.headers.get("accept", "")
    if GRAPHQL_RESPONSE in accept:
        return GRAPHQL_RESPONSE
    if not accept or JSON in accept or "*/*" in accept or "application/*" in accept:
        return JSON
    raise RequestError(406, f"Send Accept: {GRAPHQL_RESPONSE} or {JSON}.", "NOT_ACCEPTABLE")


def _params(raw: Any) -> GraphQLParams:
    if not isinstance(raw, dict):
        raise RequestError(400, "The request body must be a JSON object.", "BAD_REQUEST")
    query = raw.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RequestError(400, "`query` must be a non-empty string.", "BAD_REQUEST")
    variables = raw.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError(400, "`variables` must be a JSON object.", "BAD_REQUEST")
    operation_name = raw.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestError(400, "`operationName` must be a string.", "BAD_REQUEST")
    extensions = raw.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError(400, "`extensions` must be a JSON object.", "BAD_REQUEST")
    return GraphQLParams(query, variables, operation_name)


async def _read_post(request: Request, max_bytes: int) -> GraphQLParams:
    return _params(await read_json_body(request, max_bytes))


def _read_get(request: Request) -> GraphQLParams:
    raw: dict[str, Any] = dict(request.query_params)
    for name in ("variables", "extensions"):
        if isinstance(raw.get(name), str):
            try:
                raw[name] = loads_json(raw[name])
            except orjson.JSONDecodeError:
                raise RequestError(400, f"`{name}` is not valid JSON.", "BAD_REQUEST") from None
    return _params(raw)


def _error_code(error: GraphQLError) -> str | None:
    extensions = error.extensions or {}
    return extensions.get("code")


def _with_code(formatted: dict[str, Any], code: str) -> dict[str, Any]:
    formatted["extensions"] = {**(formatted.get("extensions") or {}), "code": code}
    return formatted


def _json(
    body: dict[str, Any], status: int, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(_dumps(body), status, headers, f"{media_type}; charset=utf-8")


def _isoformat(value: Any) -> str:
    # The fast path leaves UTC datetimes for orjson to write (schema/fast_path.py).
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except (TypeError, orjson.JSONEncodeError):
        # A client's own JSON can come back (evaluateSegment's `actual`) with integers beyond
        # 64 bits or deeper nesting than orjson writes; the standard library writes both.
        try:
            return json.dumps(body, ensure_ascii=False, default=_isoformat).encode()
        except (ValueError, TypeError, RecursionError):
            log.exception("response not serialisable")
            masked = {
                "message": "Internal server error.",
                "extensions": {"code": "INTERNAL_SERVER_ERROR"},
            }
            return orjson.dumps({"errors": [masked]})


def _error(
    message: str, code: str, status: int, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    return _json(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status,
        media_type,
        headers,
    )


async def graphql_route(request: Request) -> Response:
    endpoint: GraphQLEndpoint = request.app.state.graphql
    return await endpoint(request)


class GraphQLEndpoint:
    """The /graphql route. GraphiQL's page is public; everything else needs a token."""

    def __init__(self, schema: Schema, settings: Settings, authenticator: Authenticator) -> None:
        self.settings = settings
        self.authenticator = authenticator
        self.executor = Executor(
            schema,
            QueryLimits(
                max_tokens=settings.max_tokens,
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_fields=settings.max_query_fields,
            ),
            fast_path=settings.fast_path,
        )

    async def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id", "")
        if not _REQUEST_ID.fullmatch(request_id):
            request_id = uuid.uuid4().hex
        operation_name = None
        status = 500
        try:
            response = await self._handle(request, request_id)
            status = response.status_code
            operation_name = getattr(response, "operation_name", None)
        finally:
            log.info(
                "graphql request_id=%s operation=%s status=%s duration_ms=%.1f",
                request_id,
                operation_name or "-",
                status,
                (time.perf_counter() - started) * 1000,
            )
        response.headers["x-request-id"] = request_id
        return response

    async def _handle(self, request: Request, request_id: str) -> Response:
        media_type = JSON
        try:
            accept = request.headers.get("accept", "")
            if request.method == "GET" and not request.query_params and "text/html" in accept:
                return graphiql_page()
            media_type = _accepts(request)
            if request.method == "POST":
                params = await _read_post(request, self.settings.max_body_bytes)
            elif request.method == "GET":
                params = _read_get(request)
            else:
                raise RequestError(
                    405, "Use GET or POST.", "METHOD_NOT_ALLOWED", {"allow": "GET, POST"}
                )
            principal = await self.authenticator.require(request.headers.get("authorization"))
        except RequestError as exc:
            return _error(str(exc), exc.code, exc.status, media_type, exc.headers)

        # Errors found before execution are "request errors": no `data` in the response, and
        # 400 for graphql-response+json clients (200 for legacy application/json ones).
        request_error_status = 400 if media_type == GRAPHQL_RESPONSE else 200
        prepared = self.executor.prepare(params.query)
        if prepared.document is None:
            code = "GRAPHQL_PARSE_FAILED" if prepared.parse_failed else "GRAPHQL_VALIDATION_FAILED"
            # A guard may name its own code (the expanded-size limit says BAD_USER_INPUT).
            errors = [
                _with_code(error.formatted, _error_code(error) or code) for error in prepared.errors
            ]
            return _json({"errors": errors}, request_error_status, media_type)
        operation = Executor.operation_type(prepared.document, params.operation_name)
        if operation is None:
            message = "Name the operation to run with operationName."
            return _error(message, "BAD_REQUEST", request_error_status, media_type)
        if request.method == "GET" and operation is not OperationType.QUERY:
            return _error(
                "Mutations need POST.", "METHOD_NOT_ALLOWED", 405, media_type, {"allow": "POST"}
            )

        try:
            db = request_database(
                self.authenticator.db, request, writes=operation is OperationType.MUTATION
            )
        except RequestError as exc:
            return _error(str(exc), exc.code, exc.status, media_type, exc.headers)
        context = Context(
            db=db,
            settings=self.settings,
            principal=principal,
            request_id=request_id,
        )
        result = await self.executor.execute(
            prepared,
            variables=params.variables,
            operation_name=params.operation_name,
            context=context,
        )
        errors = [self._format_error(e, request_id) for e in result.errors or []]
        # Variable values that do not coerce stop execution before it starts.
        if result.data is None and errors and all(e.path is None for e in result.errors or []):
            return _json({"errors": errors}, request_error_status, media_type)
        body: dict[str, Any] = {"data": result.data}
        status, headers = 200, None
        if errors:
            body["errors"] = errors
            if any((e.get("extensions") or {}).get("code") == "SERVER_BUSY" for e in errors):
                status, headers = 503, RETRY_AFTER
        response = tell_position(_json(body, status, media_type, headers), db)
        response.operation_name = params.operation_name  # type: ignore[attr-defined]
        return response

    def _format_error(self, error: GraphQLError, request_id: str) -> dict[str, Any]:
        code = _error_code(error)
        if code is not None:  # raised on purpose by a resolver: NOT_FOUND, FORBIDDEN, ...
            return error.formatted
        if error.path is None and (
            error.original_error is None or isinstance(error.original_error, GraphQLError)
        ):  # variable values that do not coerce
            return _with_code(error.formatted, "BAD_USER_INPUT")
        typed = typed_error(error.original_error)
        if typed is not None:
            message, code = typed
            return {**error.formatted, "message": message, "extensions": {"code": code}}
        original = error.original_error or error
        log.error(
            "unexpected error request_id=%s path=%s",
            request_id,
            error.path,
            exc_info=(type(original), original, original.__traceback__),
        )
        masked: dict[str, Any] = {
            "message": "Internal server error.",
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        }
        if error.path is not None:
            masked["path"] = error.path
        if error.locations:
            masked["locations"] = [loc._asdict() for loc in error.locations]
        return masked
