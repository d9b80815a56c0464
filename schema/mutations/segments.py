"""Segment mutations: create, partial update, soft delete, restore."""

from typing import Annotated, Any

import strawberry
from strawberry import UNSET

from db import segments as db_segments
from db.segments import WriteError
from rules import validate
from schema.context import AppInfo
from schema.enums import LogicalOperator
from schema.errors import UserError, from_problems, user_error
from schema.ids import decode_id_of, encode_id
from schema.rules import SegmentRuleInput, rules_input_to_raw
from schema.segments import Segment, SegmentUsage, usage_from_rows


@strawberry.input(description="A new segment.")
class CreateSegmentInput:
    project_key: str = strawberry.field(description="Project to create it in.")
    name: str = strawberry.field(description="Display name, 1-100 characters after trimming.")
    key: str | None = strawberry.field(
        default=None, description="Unique key; derived from the name when omitted."
    )
    description: str | None = strawberry.field(default=None, description="At most 500 characters.")
    tags: list[str] | None = strawberry.field(default=None, description="At most 20 tags.")
    logical_op: LogicalOperator | None = strawberry.field(
        default=LogicalOperator.AND, description="How the top-level rules combine."
    )
    rules: list[SegmentRuleInput] | None = strawberry.field(default=None, description="The rules.")
    force: bool | None = strawberry.field(default=False, description="Match every context.")
    included: list[str] | None = strawberry.field(
        default=None, description="Targeting keys always in the segment."
    )
    excluded: list[str] | None = strawberry.field(
        default=None, description="Targeting keys never matched by the rules."
    )


@strawberry.input(
    description="Partial update: an omitted field keeps its value; description: null clears it."
)
class UpdateSegmentInput:
    id: strawberry.ID = strawberry.field(description="Global id of the segment.")
    expected_version: int | None = strawberry.field(
        default=UNSET, description="When given, the update applies only at this version."
    )
    key: str | None = strawberry.field(default=UNSET, description="New key.")
    name: str | None = strawberry.field(default=UNSET, description="New name.")
    description: str | None = strawberry.field(default=UNSET, description="New description; null clears it.")
    tags: list[str] | None = strawberry.field(default=UNSET, description="New tags (replace).")
    logical_op: LogicalOperator | None = strawberry.field(default=UNSET, description="New operator.")
    rules: list[SegmentRuleInput] | None = strawberry.field(default=UNSET, description="New rules (replace).")
    force: bool | None = strawberry.field(default=UNSET, description="New force flag.")
    included: list[str] | None = strawberry.field(default=UNSET, description="New included targets (replace).")
    excluded: list[str] | None = strawberry.field(default=UNSET, description="New excluded targets (replace).")


@strawberry.input(description="A segment to soft-delete.")
class DeleteSegmentInput:
    id: strawberry.ID = strawberry.field(description="Global id of the segment.")
    expected_version: int | None = strawberry.field(
        default=None, description="When given, the delete applies only at this version."
    )


@strawberry.input(description="A deleted segment to bring back.")
class RestoreSegmentInput:
    id: strawberry.ID = strawberry.field(description="Global id of the segment.")


@strawberry.type(description="Result of a segment mutation.")
class SegmentPayload:
    segment: Segment | None = strawberry.field(description="The segment after the change; null on error.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written; empty on success.")


@strawberry.type(description="Result of deleteSegment.")
class DeleteSegmentPayload:
    deleted_segment_id: strawberry.ID | None = strawberry.field(description="Global id of the deleted segment.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written; empty on success.")
    blocking_usage: SegmentUsage | None = strawberry.field(
        default=None, description="Set with SEGMENT_IN_USE: who still references the segment."
    )


# Fields that must not be null when given (the contract's inputs are nullable for partial updates).
_NOT_NULL = ("key", "name", "logical_op", "force")
_LISTS = ("tags", "rules", "included", "excluded")


def _checked(given: dict[str, Any], limits: validate.Limits) -> tuple[dict[str, Any], list[validate.Problem]]:
    """Validate the given fields; return stored column values and every problem found."""
    problems: list[validate.Problem] = []
    values: dict[str, Any] = {}

    def path(name: str) -> tuple[str, ...]:
        return ("input", {"logical_op": "logicalOp"}.get(name, name))

    for name in _NOT_NULL:
        if name in given and given[name] is None:
            problems.append(validate.Problem(path(name), "INVALID_INPUT", f"{path(name)[1]} cannot be null"))
    for name in _LISTS:
        if name in given and given[name] is None:
            given[name] = []  # null for a list means "none"
    if given.get("key") is not None:
        problems += validate.validate_key(given["key"], path("key"))
        values["key"] = given["key"]
    if given.get("name") is not None:
        problems += validate.validate_name(given["name"], path("name"))
        values["name"] = validate.normalize_name(given["name"])
    if "description" in given:
        problems += validate.validate_description(given["description"], path("description"))
        values["description"] = given["description"]
    if "tags" in given:
        problems += validate.validate_tags(given["tags"], path("tags"))
        values["tags"] = given["tags"]
    if given.get("logical_op") is not None:
        values["logical_op"] = given["logical_op"].value
    if "rules" in given:
        stored, rule_problems = validate.validate_rules(
            rules_input_to_raw(given["rules"]), path("rules"), limits
        )
        problems += rule_problems
        values["rules"] = stored
    if given.get("force") is not None:
        values["force"] = given["force"]
    if "included" in given or "excluded" in given:
        problems += validate.validate_targets(
            given.get("included"), given.get("excluded"), path("included"), path("excluded"), limits
        )
        for name in ("included", "excluded"):
            if name in given:
                values[name] = given[name]
    return values, problems


def _payload(result: Any) -> SegmentPayload:
    if isinstance(result, WriteError):
        return SegmentPayload(segment=None, user_errors=[user_error(result.code, result.message, result.field)])
    return SegmentPayload(segment=Segment.from_row(result), user_errors=[])


def _not_found(field: str) -> list[UserError]:
    return [user_error("NOT_FOUND", "No such segment.", ["input", field])]


@strawberry.type
class SegmentMutations:
    @strawberry.mutation(description="Create a segment.")
    async def create_segment(
        self, info: AppInfo, input: Annotated[CreateSegmentInput, strawberry.argument(description="The new segment.")]
    ) -> SegmentPayload:
        ctx = info.context
        ctx.require_editor()
        project_id = ctx.project_id_for(input.project_key)
        given = {
            "name": input.name,
            "description": input.description,
            "tags": input.tags,
            "logical_op": input.logical_op or LogicalOperator.AND,
            "rules": input.rules,
            "force": bool(input.force),
            "included": input.included,
            "excluded": input.excluded,
        }
        if input.key is not None:
            given["key"] = input.key
        values, problems = _checked(given, ctx.settings.limits)
        errors = from_problems(problems)
        if not project_id:
            errors.insert(0, user_error("NOT_FOUND", "No such project.", ["input", "projectKey"]))
        if errors:
            return SegmentPayload(segment=None, user_errors=errors)
        derive_from = None if input.key is not None else validate.derive_key(values["name"])
        async with ctx.db.transaction() as conn:
            result = await db_segments.create_segment(
                conn,
                project_id,
                {"key": input.key, **values},
                actor=ctx.principal.name,
                derive_key_from=derive_from,
                max_live=ctx.settings.max_segments_per_project,
            )
        return _payload(result)

    @strawberry.mutation(description="Change some fields of a segment; omitted fields keep their value.")
    async def update_segment(
        self, info: AppInfo, input: Annotated[UpdateSegmentInput, strawberry.argument(description="The changes.")]
    ) -> SegmentPayload:
        ctx = info.context
        ctx.require_editor()
        segment_id = decode_id_of(input.id, "Segment")
        if segment_id is None:
            return SegmentPayload(segment=None, user_errors=_not_found("id"))
        given = {
            name: getattr(input, name)
            for name in ("key", "name", "description", "tags", "logical_op", "rules", "force", "included", "excluded")
            if getattr(input, name) is not UNSET
        }
        values, problems = _checked(given, ctx.settings.limits)
        if problems:
            return SegmentPayload(segment=None, user_errors=from_problems(problems))
        expected = None if input.expected_version is UNSET else input.expected_version
        async with ctx.db.transaction() as conn:
            result = await db_segments.update_segment(
                conn,
                ctx.principal.project_id,
                segment_id,
                values,
                actor=ctx.principal.name,
                expected_version=expected,
                max_targets=ctx.settings.max_targets,
            )
        return _payload(result)

    @strawberry.mutation(description="Soft-delete a segment that no live flag uses.")
    async def delete_segment(
        self, info: AppInfo, input: Annotated[DeleteSegmentInput, strawberry.argument(description="Which segment.")]
    ) -> DeleteSegmentPayload:
        ctx = info.context
        ctx.require_editor()
        segment_id = decode_id_of(input.id, "Segment")
        if segment_id is None:
            return DeleteSegmentPayload(deleted_segment_id=None, user_errors=_not_found("id"))
        async with ctx.db.transaction() as conn:
            result = await db_segments.delete_segment(
                conn,
                ctx.principal.project_id,
                segment_id,
                actor=ctx.principal.name,
                expected_version=input.expected_version,
            )
        if isinstance(result, WriteError):
            return DeleteSegmentPayload(
                deleted_segment_id=None,
                user_errors=[user_error(result.code, result.message, result.field)],
                blocking_usage=usage_from_rows(result.blocking_usage) if result.blocking_usage else None,
            )
        return DeleteSegmentPayload(
            deleted_segment_id=strawberry.ID(encode_id("Segment", segment_id)), user_errors=[]
        )

    @strawberry.mutation(description="Bring back a deleted segment, unless its key was taken meanwhile.")
    async def restore_segment(
        self, info: AppInfo, input: Annotated[RestoreSegmentInput, strawberry.argument(description="Which segment.")]
    ) -> SegmentPayload:
        ctx = info.context
        ctx.require_editor()
        segment_id = decode_id_of(input.id, "Segment")
        if segment_id is None:
            return SegmentPayload(segment=None, user_errors=_not_found("id"))
        async with ctx.db.transaction() as conn:
            result = await db_segments.restore_segment(
                conn,
                ctx.principal.project_id,
                segment_id,
                actor=ctx.principal.name,
                max_live=ctx.settings.max_segments_per_project,
            )
        return _payload(result)
