"""updateSegmentTargets: edit the target lists of a segment of either kind."""

from typing import Annotated

import strawberry

from core import targets as core_targets
from rules.problems import Refused
from schema.context import AppInfo
from schema.errors import UserError, from_problems
from schema.ids import decode_id_of
from schema.segments import Segment


@strawberry.input(
    description="1-10,000 keys over the four lists together. Adding a key already there, or "
    "removing one that is not, is no error and no change. A key may not be both added and "
    "removed."
)
class UpdateSegmentTargetsInput:
    segment_id: strawberry.ID = strawberry.field(description="Global id of the segment.")
    add_included: list[str] | None = strawberry.field(
        default=None, description="Keys to add to the included list."
    )
    remove_included: list[str] | None = strawberry.field(
        default=None, description="Keys to remove from the included list."
    )
    add_excluded: list[str] | None = strawberry.field(
        default=None, description="Keys to add to the excluded list."
    )
    remove_excluded: list[str] | None = strawberry.field(
        default=None, description="Keys to remove from the excluded list."
    )


@strawberry.type(description="Result of updateSegmentTargets.")
class UpdateSegmentTargetsPayload:
    segment: Segment | None = strawberry.field(
        description="The segment after the change; null on error."
    )
    added_count: int = strawberry.field(description="Keys that were not there and now are.")
    removed_count: int = strawberry.field(description="Keys that were there and now are not.")
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.type
class TargetMutations:
    @strawberry.mutation(
        description="Add and remove target keys of a segment, all or nothing: an ordinary "
        "write (version + 1) for a standard segment, data (no version bump) for a big one."
    )
    async def update_segment_targets(
        self,
        info: AppInfo,
        input: Annotated[
            UpdateSegmentTargetsInput, strawberry.argument(description="The changes.")
        ],
    ) -> UpdateSegmentTargetsPayload:
        ctx = info.context
        result = await core_targets.update_targets(
            ctx.db,
            ctx.principal,
            ctx.settings.policy,
            decode_id_of(input.segment_id, "Segment"),
            {
                "addIncluded": input.add_included,
                "removeIncluded": input.remove_included,
                "addExcluded": input.add_excluded,
                "removeExcluded": input.remove_excluded,
            },
        )
        if isinstance(result, Refused):
            return UpdateSegmentTargetsPayload(
                segment=None,
                added_count=0,
                removed_count=0,
                user_errors=from_problems(result.problems),
            )
        return UpdateSegmentTargetsPayload(
            segment=Segment.from_row(result.segment),
            added_count=result.added,
            removed_count=result.removed,
            user_errors=[],
        )
