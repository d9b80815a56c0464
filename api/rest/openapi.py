"""The OpenAPI 3.1 document of the REST API: paths listed here, every schema generated from
the pydantic models that parse and answer the requests."""

from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from api.rest import models

_REF = "#/components/schemas/{model}"


def _ref(model: type) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    meanings = {
        400: "Invalid input, or the segment is in use (SEGMENT_IN_USE, with used_in_flags).",
        401: "No valid API token.",
        403: "The key may only read.",
        404: "No such project or segment.",
        409: "KEY_TAKEN, VERSION_CONFLICT or APPROVAL_REQUIRED.",
        413: "The body is too large.",
        415: "The body is not application/json.",
        422: "A configured limit would be exceeded (LIMIT_EXCEEDED).",
        503: "Busy or unavailable; retry after Retry-After seconds.",
    }
    return {str(s): _json(models.ErrorBody, meanings[s]) for s in (401, 503, *statuses)}


def _param(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


_PROJECT = _param("projectId", "path", {"type": "string"}, "The project's key.")
_SEGMENT = _param("segmentId", "path", {"type": "string"}, "The segment's key.")


def _links() -> dict[str, Any]:
    """What a created segment's key addresses, so clients (and test generators) can follow."""
    parameters = {"projectId": "$request.path.projectId", "segmentId": "$response.body#/key"}
    return {
        name: {"operationId": operation, "parameters": parameters}
        for name, operation in (
            ("GetSegment", "getSegment"),
            ("UpdateSegment", "updateSegment"),
            ("DeleteSegment", "deleteSegment"),
            ("GetUsage", "getSegmentUsage"),
            ("UpdateTargets", "updateSegmentTargets"),
        )
    }


def _drop_discriminators(node: Any) -> None:
    """Rules are a oneOf whose branches a `type` constant already tells apart; the
    discriminator mapping pydantic adds says nothing more, and some generators (schemathesis
    among them) cannot build examples through it."""
    if isinstance(node, dict):
        node.pop("discriminator", None)
        for value in node.values():
            _drop_discriminators(value)
    elif isinstance(node, list):
        for value in node:
            _drop_discriminators(value)


@cache
def openapi_document() -> dict[str, Any]:
    _, schemas = models_json_schema(
        [
            (
                m,
                "validation"
                if m in (models.SegmentCreate, models.SegmentUpdate, models.TargetsUpdate)
                else "serialization",
            )
            for m in (
                models.SegmentCreate,
                models.SegmentUpdate,
                models.SegmentOut,
                models.SegmentList,
                models.SegmentUsage,
                models.TargetsUpdate,
                models.TargetsUpdated,
                models.ErrorBody,
            )
        ],
        ref_template=_REF,
    )
    _drop_discriminators(schemas)
    list_params = [
        _PROJECT,
        _param(
            "page",
            "query",
            {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1},
            "Page number, from 1.",
        ),
        _param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            "Segments per page.",
        ),
        _param(
            "search",
            "query",
            {"type": "string", "maxLength": 200},
            "Case-insensitive substring of the name or key.",
        ),
        _param(
            "sort",
            "query",
            {"enum": ["name", "key", "created_at", "updated_at"], "default": "name"},
            "Sort field; ties by creation order.",
        ),
        _param("dir", "query", {"enum": ["asc", "desc"], "default": "asc"}, "Sort direction."),
    ]

    def body(model: type) -> dict[str, Any]:
        return {
            "required": True,
            "content": {"application/json": {"schema": _ref(model)}},
        }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Segments API (REST)",
            "version": "1",
            "description": "Flagmint's segment endpoints, on the same data, keys and rules as /graphql.",
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/projects/{projectId}/segments": {
                "get": {
                    "operationId": "listSegments",
                    "summary": "List segments (paginated, searchable)",
                    "parameters": list_params,
                    "responses": {
                        "200": _json(models.SegmentList, "A page of segments."),
                        **_errors(400, 404),
                    },
                },
                "post": {
                    "operationId": "createSegment",
                    "summary": "Create a segment",
                    "parameters": [_PROJECT],
                    "requestBody": body(models.SegmentCreate),
                    "responses": {
                        "201": {**_json(models.SegmentOut, "The new segment."), "links": _links()},
                        **_errors(400, 403, 404, 409, 413, 415, 422),
                    },
                },
            },
            "/projects/{projectId}/segments/{segmentId}": {
                "get": {
                    "operationId": "getSegment",
                    "summary": "Get a segment",
                    "parameters": [_PROJECT, _SEGMENT],
                    "responses": {"200": _json(models.SegmentOut, "The segment."), **_errors(404)},
                },
                "put": {
                    "operationId": "updateSegment",
                    "summary": "Update a segment (partial: omitted fields keep their value)",
                    "parameters": [_PROJECT, _SEGMENT],
                    "requestBody": body(models.SegmentUpdate),
                    "responses": {
                        "200": _json(models.SegmentOut, "The segment after the change."),
                        **_errors(400, 403, 404, 409, 413, 415, 422),
                    },
                },
                "delete": {
                    "operationId": "deleteSegment",
                    "summary": "Soft-delete a segment that no live flag uses",
                    "parameters": [_PROJECT, _SEGMENT],
                    "responses": {"204": {"description": "Deleted."}, **_errors(400, 403, 404)},
                },
            },
            "/projects/{projectId}/segments/{segmentId}/targets": {
                "post": {
                    "operationId": "updateSegmentTargets",
                    "summary": "Add and remove target keys in one batch (1-10,000 keys, all or "
                    "nothing); for big segments too",
                    "parameters": [_PROJECT, _SEGMENT],
                    "requestBody": body(models.TargetsUpdate),
                    "responses": {
                        "200": _json(models.TargetsUpdated, "The segment after the change."),
                        **_errors(400, 403, 404, 409, 413, 415, 422),
                    },
                },
            },
            "/projects/{projectId}/segments/{segmentId}/usage": {
                "get": {
                    "operationId": "getSegmentUsage",
                    "summary": "Which live flags use the segment",
                    "parameters": [_PROJECT, _SEGMENT],
                    "responses": {"200": _json(models.SegmentUsage, "The usage."), **_errors(404)},
                },
            },
        },
    }
