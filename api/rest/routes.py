"""The seed's REST API for segments (DESIGN §16), on the same core, keys and rules as GraphQL.

`projectId` in a path is the project key and `segmentId` the segment key. Problems answer
`{"error": {"code", "message", "field"}, "errors": [...]}` with the GraphQL codes.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.bodies import JSON, read_json_body
from api.consistency import request_database, tell_position
from api.errors import RETRY_AFTER, RequestError, typed_error
from api.rest import models
from api.settings import Settings
from core import segments as core_segments
from core import targets as core_targets
from core.access import Forbidden, project_id_for
from db.api_keys import Principal
from rules.problems import ProblemCode, Refused

log = logging.getLogger("segments.rest")


# The one mapping from the core's problem codes to HTTP statuses.
STATUS = {
    ProblemCode.INVALID_INPUT: 400,
    ProblemCode.INVALID_KEY: 400,
    ProblemCode.INVALID_RULE: 400,
    ProblemCode.UNKNOWN_ATTRIBUTE: 400,
    ProblemCode.SEGMENT_IN_USE: 400,
    ProblemCode.SEGMENT_CYCLE: 400,
    ProblemCode.NOT_FOUND: 404,
    ProblemCode.SEGMENT_DELETED: 404,
    ProblemCode.KEY_TAKEN: 409,
    ProblemCode.VERSION_CONFLICT: 409,
    ProblemCode.APPROVAL_REQUIRED: 409,
    ProblemCode.SELF_REVIEW: 409,
    ProblemCode.CHANGE_CONFLICT: 409,
    ProblemCode.INVALID_STATE: 409,
    ProblemCode.LIMIT_EXCEEDED: 422,
}
_TYPED_STATUS = {
    "FORBIDDEN": 403,
    "BAD_USER_INPUT": 400,
    "SERVER_BUSY": 503,
    "SERVICE_UNAVAILABLE": 503,
    "QUERY_TIMEOUT": 503,
}
_SNAKE = {
    "logicalOp": "logical_op",
    "expectedVersion": "expected_version",
    "segmentKey": "segment_id",
    "caseInsensitive": "case_insensitive",
    "addIncluded": "included.add",
    "removeIncluded": "included.remove",
    "addExcluded": "excluded.add",
    "removeExcluded": "excluded.remove",
}
_SORTS = {"name": "NAME", "key": "KEY", "created_at": "CREATED_AT", "updated_at": "UPDATED_AT"}
MAX_LIMIT = 100


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, JSON)


def _detail(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "field": field}


def _error(status: int, code: str, message: str, field: str | None = None) -> Response:
    detail = _detail(code, message, field)
    headers = RETRY_AFTER if status == 503 else None
    return _json({"error": detail, "errors": [detail]}, status, headers)


def rest_field(path: tuple[str, ...] | None) -> str | None:
    """A core problem path in the REST body's terms: ("input", "rules", "2", "condition",
    "value") is "rules.2.value"."""
    if not path:
        return None
    parts = (
        [p for p in path[1:] if p not in ("condition", "group", "segment")]
        if path[0] == "input"
        else list(path)
    )
    return ".".join(_SNAKE.get(p, p) for p in parts) or None


def _refused(refused: Refused) -> Response:
    details = [_detail(p.code.value, p.message, rest_field(p.field)) for p in refused.problems]
    body: dict[str, Any] = {"error": details[0], "errors": details}
    if refused.blocking_usage:
        body["used_in_flags"] = models.usage_out(refused.blocking_usage.flags)
        body["used_in_segments"] = models.segment_uses_out(refused.blocking_usage.segments)
    return _json(body, STATUS[refused.code])


class _Answer(Exception):
    """Stops a handler with a ready response."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def _body(request: Request, model: type[BaseModel], max_bytes: int) -> BaseModel:
    raw = await read_json_body(request, max_bytes)
    try:
        return model.model_validate(raw)
    except ValidationError as invalid:
        details = [
            _detail(
                "INVALID_INPUT",
                error["msg"],
                ".".join(
                    str(part) for part in error["loc"] if part not in ("rule", "group", "segment")
                )
                or None,
            )
            for error in invalid.errors(include_url=False, include_input=False)
        ]
        raise _Answer(_json({"error": details[0], "errors": details}, 400)) from None


Handler = Callable[[Request, Principal, Settings], Awaitable[Response]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticates, runs the handler, and answers every failure in the REST error shape."""

    async def endpoint(request: Request) -> Response:
        settings: Settings = request.app.state.settings
        try:
            principal = await request.app.state.authenticator.require(
                request.headers.get("authorization")
            )
            db = request_database(request.app.state.db, request, writes=request.method != "GET")
            request.state.db = db
            return tell_position(await handler(request, principal, settings), db)
        except RequestError as failed:
            response = _error(failed.status, failed.code, str(failed))
            response.headers.update(failed.headers)
            return response
        except _Answer as answer:
            return answer.response
        except Forbidden as forbidden:
            return _error(403, "FORBIDDEN", str(forbidden))
        except Exception as error:
            typed = typed_error(error)
            if typed is not None:
                message, code = typed
                return _error(_TYPED_STATUS.get(code, 503), code, message)
            log.exception("unexpected error in %s %s", request.method, request.url.path)
            return _error(500, "INTERNAL_SERVER_ERROR", "Internal server error.")

    return endpoint


def _no_segment(key: str) -> Response:
    return _error(404, "NOT_FOUND", f"No segment {key!r} in this project.")


def _no_project() -> Response:
    return _error(404, "NOT_FOUND", "No such project.")


async def _segment_or_404(request: Request, principal: Principal) -> Any:
    params = request.path_params
    if project_id_for(principal, params["projectId"]) is None:
        raise _Answer(_no_project())
    row = await core_segments.find_segment(
        request.state.db, principal, params["projectId"], params["segmentId"]
    )
    if row is None:
        raise _Answer(_no_segment(params["segmentId"]))
    return row


async def _segments_out(request: Request, principal: Principal, rows: list[Any]) -> list[Any]:
    """Segment rows in the REST shape, referenced segments named by key (one read)."""
    keys = await core_segments.referenced_keys(request.state.db, principal, rows)
    return [models.segment_out(row, keys) for row in rows]


async def _written(
    request: Request, principal: Principal, result: Any, status: int = 200
) -> Response:
    if isinstance(result, Refused):
        return _refused(result)
    return _json((await _segments_out(request, principal, [result]))[0], status)


async def create_segment(request: Request, principal: Principal, settings: Settings) -> Response:
    project = request.path_params["projectId"]
    if project_id_for(principal, project) is None:
        return _no_project()
    body = await _body(request, models.SegmentCreate, settings.max_body_bytes)
    assert isinstance(body, models.SegmentCreate)
    fields = body.model_dump(exclude={"rules"})
    fields["rules"] = models.rules_to_core(body.rules)
    result = await core_segments.create_segment(
        request.state.db, principal, settings.policy, project, fields
    )
    return await _written(request, principal, result, 201)


def _query_int(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit() and low <= int(raw) and (high is None or int(raw) <= high):
        return int(raw)
    bounds = f"{low}-{high}" if high is not None else f"at least {low}"
    raise _Answer(_error(400, "INVALID_INPUT", f"{name} must be an integer, {bounds}.", name))


async def list_segments(request: Request, principal: Principal, settings: Settings) -> Response:
    page = _query_int(request, "page", 1, 1, 1_000_000)
    limit = _query_int(request, "limit", 20, 1, MAX_LIMIT)
    sort = request.query_params.get("sort", "name")
    direction = request.query_params.get("dir", "asc")
    if sort not in _SORTS:
        return _error(
            400, "INVALID_INPUT", "sort must be name, key, created_at or updated_at.", "sort"
        )
    if direction not in ("asc", "desc"):
        return _error(400, "INVALID_INPUT", "dir must be asc or desc.", "dir")
    search = request.query_params.get("search") or None
    if search is not None and len(search) > 200:
        return _error(400, "INVALID_INPUT", "search is at most 200 characters.", "search")
    found = await core_segments.segment_page(
        request.state.db,
        principal,
        request.path_params["projectId"],
        search=search,
        order=_SORTS[sort],
        descending=direction == "desc",
        offset=(page - 1) * limit,
        limit=limit,
    )
    if found is None:
        return _no_project()
    rows, total = found
    return _json(
        {
            "data": await _segments_out(request, principal, rows),
            "page": page,
            "limit": limit,
            "total": total,
        }
    )


async def get_segment(request: Request, principal: Principal, _settings: Settings) -> Response:
    row = await _segment_or_404(request, principal)
    return _json((await _segments_out(request, principal, [row]))[0])


async def update_segment(request: Request, principal: Principal, settings: Settings) -> Response:
    row = await _segment_or_404(request, principal)
    body = await _body(request, models.SegmentUpdate, settings.max_body_bytes)
    assert isinstance(body, models.SegmentUpdate)
    given = body.model_fields_set - {"expected_version"}
    fields = {name: getattr(body, name) for name in given if name != "rules"}
    if "rules" in given:
        fields["rules"] = None if body.rules is None else models.rules_to_core(body.rules)
    result = await core_segments.update_segment(
        request.state.db,
        principal,
        settings.policy,
        row["id"],
        fields,
        expected_version=body.expected_version,
    )
    return await _written(request, principal, result)


async def segment_usage(request: Request, principal: Principal, _settings: Settings) -> Response:
    row = await _segment_or_404(request, principal)
    usage = await core_segments.usage(request.state.db, principal, row["id"])
    return _json(
        {
            "usage_count": len(usage.flags),
            "used_in_flags": models.usage_out(usage.flags),
            "used_in_segments": models.segment_uses_out(usage.segments),
        }
    )


async def delete_segment(request: Request, principal: Principal, _settings: Settings) -> Response:
    row = await _segment_or_404(request, principal)
    result = await core_segments.delete_segment(request.state.db, principal, row["id"])
    if isinstance(result, Refused):
        return _refused(result)
    return Response(status_code=204)


async def update_targets(request: Request, principal: Principal, settings: Settings) -> Response:
    """A batch of target edits through the one core of updateSegmentTargets: standard
    segments keep their lists in the row (version + 1), big ones as rows (counts change)."""
    row = await _segment_or_404(request, principal)
    body = await _body(request, models.TargetsUpdate, settings.max_body_bytes)
    assert isinstance(body, models.TargetsUpdate)
    changes = {
        "addIncluded": body.included.add,
        "removeIncluded": body.included.remove,
        "addExcluded": body.excluded.add,
        "removeExcluded": body.excluded.remove,
    }
    result = await core_targets.update_targets(
        request.state.db, principal, settings.policy, row["id"], changes
    )
    if isinstance(result, Refused):
        return _refused(result)
    segment = (await _segments_out(request, principal, [result.segment]))[0]
    return _json({"segment": segment, "added_count": result.added, "removed_count": result.removed})


_create, _list = _endpoint(create_segment), _endpoint(list_segments)
_item = {
    "GET": _endpoint(get_segment),
    "PUT": _endpoint(update_segment),
    "DELETE": _endpoint(delete_segment),
}


async def segments_collection(request: Request) -> Response:
    return await (_create if request.method == "POST" else _list)(request)


async def segment_item(request: Request) -> Response:
    return await _item[request.method](request)


def routes(middleware: Sequence[Middleware] = (), cors: bool = False) -> list[Route]:
    """The REST routes; with `cors`, OPTIONS preflights reach the given CORS middleware."""
    extra = ["OPTIONS"] if cors else []
    return [
        Route(
            "/projects/{projectId}/segments",
            segments_collection,
            methods=["GET", "POST", *extra],
            middleware=middleware,
        ),
        Route(
            "/projects/{projectId}/segments/{segmentId}",
            segment_item,
            methods=["GET", "PUT", "DELETE", *extra],
            middleware=middleware,
        ),
        Route(
            "/projects/{projectId}/segments/{segmentId}/targets",
            _endpoint(update_targets),
            methods=["POST", *extra],
            middleware=middleware,
        ),
        Route(
            "/projects/{projectId}/segments/{segmentId}/usage",
            _endpoint(segment_usage),
            methods=["GET", *extra],
            middleware=middleware,
        ),
    ]
