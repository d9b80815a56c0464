"""Segment use cases: create, partial update, soft delete, restore, and the reads REST needs.

Fields arrive as plain values under their stored names (`key`, `name`, `description`,
`tags`, `logical_op`, `rules`, `force`, `included`, `excluded`); `rules` in the shape
`rules.validate` checks (`{"condition": {...}}` / `{"group": {"logicalOp", "rules"}}`). A
field that is absent is left alone by an update. Problem paths use the GraphQL input's
spelling (("input", "logicalOp")); the REST face translates them.
"""

from typing import Any

from core.access import project_id_for, project_problems, require_editor
from core.policy import Policy
from db import segments as db_segments
from db.api_keys import Principal
from db.pool import Database, Row
from db.segments import SegmentFilter
from rules import validate
from rules.models import LOGICAL_OPS, Limits
from rules.problems import Problem, ProblemCode, Refused

# The stored fields a segment write may set (db.segments.FIELDS maps them to API names).
FIELDS = tuple(db_segments.FIELDS)
# Fields that must not be null when given (the GraphQL inputs are nullable for partial updates).
_NOT_NULL = ("key", "name", "logical_op", "force")
_LISTS = ("tags", "rules", "included", "excluded")
_CREATE_DEFAULTS: dict[str, Any] = {
    "description": None,
    "tags": [],
    "logical_op": "AND",
    "rules": [],
    "force": False,
    "included": [],
    "excluded": [],
}
NO_SUCH_SEGMENT = "No such segment."


def _path(name: str) -> tuple[str, ...]:
    return ("input", {"logical_op": "logicalOp"}.get(name, name))


def check_fields(given: dict[str, Any], limits: Limits) -> tuple[dict[str, Any], list[Problem]]:
    """Validate the given fields; return the stored column values and every problem found."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    given = dict(given)
    for name in _NOT_NULL:
        if name in given and given[name] is None:
            problems.append(
                Problem(_path(name), ProblemCode.INVALID_INPUT, f"{_path(name)[1]} cannot be null")
            )
    for name in _LISTS:
        if name in given and given[name] is None:
            given[name] = []  # null for a list means "none"
    if given.get("key") is not None:
        problems += validate.validate_key(given["key"], _path("key"))
        values["key"] = given["key"]
    if given.get("name") is not None:
        problems += validate.validate_name(given["name"], _path("name"))
        values["name"] = validate.normalize_name(given["name"])
    if "description" in given:
        problems += validate.validate_description(given["description"], _path("description"))
        values["description"] = given["description"]
    if "tags" in given:
        problems += validate.validate_tags(given["tags"], _path("tags"))
        values["tags"] = given["tags"]
    if given.get("logical_op") is not None:
        if given["logical_op"] in LOGICAL_OPS:
            values["logical_op"] = given["logical_op"]
        else:
            problems.append(
                Problem(
                    _path("logical_op"),
                    ProblemCode.INVALID_INPUT,
                    "logicalOp must be AND, OR or NOT",
                )
            )
    if "rules" in given:
        stored, rule_problems = validate.validate_rules(given["rules"], _path("rules"), limits)
        problems += rule_problems
        values["rules"] = stored
    if given.get("force") is not None:
        if isinstance(given["force"], bool):
            values["force"] = given["force"]
        else:
            problems.append(
                Problem(_path("force"), ProblemCode.INVALID_INPUT, "force must be a boolean")
            )
    if "included" in given or "excluded" in given:
        problems += validate.validate_targets(
            given.get("included"),
            given.get("excluded"),
            _path("included"),
            _path("excluded"),
            limits,
        )
        for name in ("included", "excluded"):
            if name in given:
                values[name] = given[name]
    return values, problems


async def create_segment(
    db: Database, principal: Principal, policy: Policy, project_key: str, fields: dict[str, Any]
) -> Row | Refused:
    """A new segment; a missing key is derived from the name (made unique)."""
    require_editor(principal)
    project_id = project_id_for(principal, project_key)
    given = {
        **_CREATE_DEFAULTS,
        **{name: value for name, value in fields.items() if value is not None or name == "name"},
    }
    values, problems = check_fields(given, policy.rules)
    problems = project_problems(project_id) + problems
    if problems or project_id is None:
        return Refused(problems)
    derive_from = None if "key" in values else validate.derive_key(values["name"])
    async with db.transaction() as conn:
        return await db_segments.create_segment(
            conn,
            project_id,
            {"key": values.get("key"), **values},
            actor=principal.name,
            derive_key_from=derive_from,
            max_live=policy.max_live_segments,
        )


def _no_such_segment() -> Refused:
    return Refused.one(ProblemCode.NOT_FOUND, NO_SUCH_SEGMENT, ("input", "id"))


async def update_segment(
    db: Database,
    principal: Principal,
    policy: Policy,
    segment_id: int | None,
    fields: dict[str, Any],
    expected_version: int | None = None,
) -> Row | Refused:
    """Change the given fields; a change that changes nothing writes nothing."""
    require_editor(principal)
    if segment_id is None:
        return _no_such_segment()
    values, problems = check_fields(fields, policy.rules)
    if problems:
        return Refused(problems)
    async with db.transaction() as conn:
        return await db_segments.update_segment(
            conn,
            principal.project_id,
            segment_id,
            values,
            actor=principal.name,
            expected_version=expected_version,
            max_targets=policy.rules.max_targets,
        )


async def delete_segment(
    db: Database, principal: Principal, segment_id: int | None, expected_version: int | None = None
) -> Row | Refused:
    """Soft-delete a segment no live flag uses; SEGMENT_IN_USE lists who does."""
    require_editor(principal)
    if segment_id is None:
        return _no_such_segment()
    async with db.transaction() as conn:
        return await db_segments.delete_segment(
            conn,
            principal.project_id,
            segment_id,
            actor=principal.name,
            expected_version=expected_version,
        )


async def restore_segment(
    db: Database, principal: Principal, policy: Policy, segment_id: int | None
) -> Row | Refused:
    """Bring back a deleted segment, unless its key was taken meanwhile."""
    require_editor(principal)
    if segment_id is None:
        return _no_such_segment()
    async with db.transaction() as conn:
        return await db_segments.restore_segment(
            conn,
            principal.project_id,
            segment_id,
            actor=principal.name,
            max_live=policy.max_live_segments,
        )


async def find_segment(
    db: Database, principal: Principal, project_key: str, key: str
) -> Row | None:
    """The live segment with this key in the caller's project."""
    project_id = project_id_for(principal, project_key)
    if project_id is None:
        return None
    return await db.run(db_segments.segment_by_key, project_id, key)


async def segment_page(
    db: Database,
    principal: Principal,
    project_key: str,
    *,
    search: str | None,
    order: str,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[list[Row], int] | None:
    """A numbered page of live segments and the total, or None for an unknown project."""
    project_id = project_id_for(principal, project_key)
    if project_id is None:
        return None
    return await db.run(
        db_segments.numbered_page,
        project_id,
        SegmentFilter(search=search),
        order,
        descending,
        offset,
        limit,
    )


async def usage(db: Database, principal: Principal, segment_id: int) -> list[Row]:
    """(flag, environment) pairs of live flags whose targeting rules use the segment."""
    return await db.run(db_segments.usage_of_segments, principal.project_id, [segment_id])
