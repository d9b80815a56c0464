"""Segment mutations: create, partial update, soft delete, restore, revert."""

from typing import Annotated, Any

import strawberry
from strawberry import UNSET

from core import segments as core_segments
from core.segments import Row
from rules.problems import Refused
from schema.analysis import INPUT_PATHS, RuleWarning
from schema.context import AppInfo
from schema.enums import LogicalOperator
from schema.errors import UserError, from_problems
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
    salt: str | None = strawberry.field(
        default=None,
        description="Seeds PERCENTAGE buckets, 1-100 characters; default: the segment's key.",
    )
    unbounded: bool | None = strawberry.field(
        default=False,
        description="A big segment, fixed at creation: its targets are rows, up to "
        "10,000,000, changed by updateSegmentTargets.",
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
    description: str | None = strawberry.field(
        default=UNSET, description="New description; null clears it."
    )
    tags: list[str] | None = strawberry.field(default=UNSET, description="New tags (replace).")
    logical_op: LogicalOperator | None = strawberry.field(
        default=UNSET, description="New operator."
    )
    rules: list[SegmentRuleInput] | None = strawberry.field(
        default=UNSET, description="New rules (replace)."
    )
    force: bool | None = strawberry.field(default=UNSET, description="New force flag.")
    included: list[str] | None = strawberry.field(
        default=UNSET, description="New included targets (replace)."
    )
    excluded: list[str] | None = strawberry.field(
        default=UNSET, description="New excluded targets (replace)."
    )
    salt: str | None = strawberry.field(
        default=UNSET,
        description="New salt: reshuffles every PERCENTAGE bucket of the segment.",
    )


@strawberry.input(description="A segment to soft-delete.")
class DeleteSegmentInput:
    id: strawberry.ID = strawberry.field(description="Global id of the segment.")
    expected_version: int | None = strawberry.field(
        default=None, description="When given, the delete applies only at this version."
    )


@strawberry.input(description="A deleted segment to bring back.")
class RestoreSegmentInput:
    id: strawberry.ID = strawberry.field(description="Global id of the segment.")


@strawberry.input(description="A segment to bring back to the definition of an earlier version.")
class RevertSegmentInput:
    id: strawberry.ID = strawberry.field(description="Global id of the segment.")
    to_version: int = strawberry.field(description="The version whose snapshot to write again.")
    expected_version: int | None = strawberry.field(
        default=None, description="When given, the revert applies only at this version."
    )


@strawberry.type(description="Result of a segment mutation.")
class SegmentPayload:
    segment: Segment | None = strawberry.field(
        description="The segment after the change; null on error."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )

    @strawberry.field(
        description="Findings about the segment as written (DESIGN §15), paths into the "
        "input; never blocks the write; empty on errors."
    )
    async def warnings(self, info: AppInfo) -> list[RuleWarning]:
        if self.segment is None:
            return []
        return await self.segment.rule_warnings(info, INPUT_PATHS)


@strawberry.type(description="Result of deleteSegment.")
class DeleteSegmentPayload:
    deleted_segment_id: strawberry.ID | None = strawberry.field(
        description="Global id of the deleted segment."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )
    blocking_usage: SegmentUsage | None = strawberry.field(
        default=None, description="Set with SEGMENT_IN_USE: who still references the segment."
    )


def _payload(result: Row | Refused) -> SegmentPayload:
    if isinstance(result, Refused):
        return SegmentPayload(segment=None, user_errors=from_problems(result.problems))
    return SegmentPayload(segment=Segment.from_row(result, single=True), user_errors=[])


def _fields(input: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The given fields of a GraphQL input as plain values, as `core` takes them."""
    fields: dict[str, Any] = {}
    for name in names:
        value = getattr(input, name)
        if value is UNSET:
            continue
        if name == "logical_op" and value is not None:
            value = value.value
        elif name == "rules" and value is not None:
            value = rules_input_to_raw(value)
        fields[name] = value
    return fields


@strawberry.type
class SegmentMutations:
    @strawberry.mutation(description="Create a segment.")
    async def create_segment(
        self,
        info: AppInfo,
        input: Annotated[CreateSegmentInput, strawberry.argument(description="The new segment.")],
    ) -> SegmentPayload:
        ctx = info.context
        fields = {**_fields(input, core_segments.FIELDS), "unbounded": input.unbounded}
        return _payload(
            await core_segments.create_segment(
                ctx.db, ctx.principal, ctx.settings.policy, input.project_key, fields
            )
        )

    @strawberry.mutation(
        description="Change some fields of a segment; omitted fields keep their value."
    )
    async def update_segment(
        self,
        info: AppInfo,
        input: Annotated[UpdateSegmentInput, strawberry.argument(description="The changes.")],
    ) -> SegmentPayload:
        ctx = info.context
        expected = None if input.expected_version is UNSET else input.expected_version
        result = await core_segments.update_segment(
            ctx.db,
            ctx.principal,
            ctx.settings.policy,
            decode_id_of(input.id, "Segment"),
            _fields(input, core_segments.FIELDS),
            expected_version=expected,
        )
        return _payload(result)

    @strawberry.mutation(description="Soft-delete a segment that no live flag uses.")
    async def delete_segment(
        self,
        info: AppInfo,
        input: Annotated[DeleteSegmentInput, strawberry.argument(description="Which segment.")],
    ) -> DeleteSegmentPayload:
        ctx = info.context
        result = await core_segments.delete_segment(
            ctx.db, ctx.principal, decode_id_of(input.id, "Segment"), input.expected_version
        )
        if isinstance(result, Refused):
            usage = result.blocking_usage
            blocking = None
            if usage:
                # Who blocked the delete, as the refusing transaction saw it.
                segment_id = decode_id_of(input.id, "Segment")
                ctx.loaders.referencing_segments.prime(segment_id, usage.segments)
                blocking = usage_from_rows(segment_id, usage.flags)
            return DeleteSegmentPayload(
                deleted_segment_id=None,
                user_errors=from_problems(result.problems),
                blocking_usage=blocking,
            )
        return DeleteSegmentPayload(
            deleted_segment_id=strawberry.ID(encode_id("Segment", result["id"])), user_errors=[]
        )

    @strawberry.mutation(
        description="Bring back a deleted segment, unless its key was taken meanwhile."
    )
    async def restore_segment(
        self,
        info: AppInfo,
        input: Annotated[RestoreSegmentInput, strawberry.argument(description="Which segment.")],
    ) -> SegmentPayload:
        ctx = info.context
        result = await core_segments.restore_segment(
            ctx.db, ctx.principal, ctx.settings.policy, decode_id_of(input.id, "Segment")
        )
        return _payload(result)

    @strawberry.mutation(
        description="Write a new version equal to an earlier version's snapshot, validated "
        "like an update against today's state."
    )
    async def revert_segment(
        self,
        info: AppInfo,
        input: Annotated[RevertSegmentInput, strawberry.argument(description="Which version.")],
    ) -> SegmentPayload:
        ctx = info.context
        result = await core_segments.revert_segment(
            ctx.db,
            ctx.principal,
            ctx.settings.policy,
            decode_id_of(input.id, "Segment"),
            input.to_version,
            input.expected_version,
        )
        return _payload(result)
