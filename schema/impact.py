"""SegmentImpact (who a change lets in and out) and the segmentChangeImpact query.

`SegmentImpact.of(impact)` turns a `core.impact.Impact` into the GraphQL object: a change
request's `impact` field builds one with `core.impact.impact_of` and returns this. Its
fields load lazily through the request's loaders: the four counts share one scan, each
sample is a member page of the difference, affected flags are the segment's usage.
"""

from typing import Annotated

import strawberry

from core import impact as core_impact
from core import segments as core_segments
from db.members import ImpactCounts, Membership
from rules.problems import Refused
from schema.context import AppInfo
from schema.errors import UserError, bad_user_input, from_problems
from schema.ids import decode_id_of
from schema.mutations.segments import UpdateSegmentInput, _fields
from schema.profiles import DEFAULT_SAMPLE_SIZE, MAX_SAMPLE_SIZE, Profile
from schema.segments import FlagUsage, flag_usages

SampleSize = Annotated[
    int | None,
    strawberry.argument(
        description=f"How many, 0-{MAX_SAMPLE_SIZE} (null: {DEFAULT_SAMPLE_SIZE}), "
        "targetingKey ascending."
    ),
]


@strawberry.type(
    description="Who a change of a segment would let in and out, over the stored profiles, "
    "compared with the segment as it is now."
)
class SegmentImpact:
    impact: strawberry.Private[core_impact.Impact]

    @classmethod
    def of(cls, impact: core_impact.Impact) -> "SegmentImpact":
        return cls(impact=impact)

    async def _counts(self, info: AppInfo) -> ImpactCounts:
        return await info.context.loaders.impact_counts.load(
            (self.impact.before, self.impact.after)
        )

    @strawberry.field(description="Stored profiles matching the segment as it is now.")
    async def member_count_before(self, info: AppInfo) -> int:
        return (await self._counts(info)).before

    @strawberry.field(description="Stored profiles matching the segment as it would be.")
    async def member_count_after(self, info: AppInfo) -> int:
        return (await self._counts(info)).after

    @strawberry.field(description="Members after the change that are not members now.")
    async def entering(self, info: AppInfo) -> int:
        return (await self._counts(info)).entering

    @strawberry.field(description="Members now that are not members after the change.")
    async def leaving(self, info: AppInfo) -> int:
        return (await self._counts(info)).leaving

    @strawberry.field(description="The first profiles that would enter, targetingKey ascending.")
    async def sample_entering(
        self, info: AppInfo, first: SampleSize = DEFAULT_SAMPLE_SIZE
    ) -> list[Profile]:
        return await _sample(info, self.impact.entering(), first)

    @strawberry.field(description="The first profiles that would leave, targetingKey ascending.")
    async def sample_leaving(
        self, info: AppInfo, first: SampleSize = DEFAULT_SAMPLE_SIZE
    ) -> list[Profile]:
        return await _sample(info, self.impact.leaving(), first)

    @strawberry.field(
        description="(flag, environment) pairs of non-archived flags that use the segment, "
        "directly or through other segments; by flag key then environment key."
    )
    async def affected_flags(self, info: AppInfo) -> list[FlagUsage]:
        loaders = info.context.loaders
        segment_id = self.impact.segment_id
        direct = await loaders.usage.load(segment_id)
        indirect = await loaders.indirect_usage.load(segment_id)
        # Disjoint: indirect usage holds only the pairs that do not use the segment directly.
        rows = sorted(
            [*direct, *indirect], key=lambda row: (row["flag_key"], row["environment_key"])
        )
        return flag_usages(rows)


async def _sample(info: AppInfo, difference: Membership | None, first: int | None) -> list[Profile]:
    first = DEFAULT_SAMPLE_SIZE if first is None else first
    if not 0 <= first <= MAX_SAMPLE_SIZE:
        raise bad_user_input(f"`first` must be between 0 and {MAX_SAMPLE_SIZE}.")
    if difference is None or first == 0:
        return []
    rows = await info.context.loaders.member_page.load((difference, None, first))
    # A member page carries one row more than asked for.
    return [Profile.from_row(row) for row in rows[:first]]


@strawberry.type(description="Result of segmentChangeImpact.")
class SegmentImpactPayload:
    impact: SegmentImpact | None = strawberry.field(
        description="Who the update would let in and out; null when userErrors is not empty."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why updateSegment would refuse the update; empty otherwise."
    )


async def segment_change_impact(info: AppInfo, input: UpdateSegmentInput) -> SegmentImpactPayload:
    ctx = info.context
    result = await core_impact.change_impact(
        ctx.db,
        ctx.principal,
        ctx.settings.policy,
        decode_id_of(input.id, "Segment"),
        _fields(input, core_segments.FIELDS),
        expected_version=None
        if input.expected_version is strawberry.UNSET
        else input.expected_version,
    )
    if isinstance(result, Refused):
        return SegmentImpactPayload(impact=None, user_errors=from_problems(result.problems))
    return SegmentImpactPayload(impact=SegmentImpact.of(result), user_errors=[])
