"""The Flag and TargetingRule types and the flag queries."""

from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Self

import strawberry

from db import flags as db_flags
from schema.context import AppInfo, mapped
from schema.enums import LogicalOperator
from schema.ids import encode_id
from schema.node import Node
from schema.pagination import (
    Connection,
    decode_cursor,
    encode_cursor,
    listing_connection,
    page_request,
)
from schema.rules import SegmentRule, rules_from_stored

if TYPE_CHECKING:
    from schema.segments import Segment


@strawberry.enum(
    description="Whether a targeting rule points at a segment or carries its own conditions."
)
class TargetingRuleKind(Enum):
    SEGMENT = strawberry.enum_value("SEGMENT", description="Matches the members of a segment.")
    CUSTOM = strawberry.enum_value("CUSTOM", description="Matches inline conditions.")


@strawberry.type(description="One ordered rule of a flag in one environment.")
class TargetingRule:
    id: strawberry.ID = strawberry.field(description="Opaque id of the rule.")
    order_index: int = strawberry.field(description="Position in the environment's list, from 0.")
    kind: TargetingRuleKind = strawberry.field(description="SEGMENT or CUSTOM.")
    logical_op: LogicalOperator | None = strawberry.field(description="Set when kind = CUSTOM.")
    variation_key: str | None = strawberry.field(
        description="Variation served on match; exactly one of variationKey / rolloutKey is set."
    )
    rollout_key: str | None = strawberry.field(description="Rollout served on match.")
    segment_id: strawberry.Private[int | None]
    stored_rules: strawberry.Private[list[dict[str, Any]]]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            id=strawberry.ID(encode_id("TargetingRule", row["id"])),
            order_index=row["order_index"],
            kind=row["kind"],
            logical_op=row["logical_op"],
            variation_key=row["variation_key"],
            rollout_key=row["rollout_key"],
            segment_id=row["segment_id"],
            stored_rules=row["rules"],
        )

    @strawberry.field(description="The segment, when kind = SEGMENT.")
    def segment(
        self, info: AppInfo
    ) -> Annotated["Segment", strawberry.lazy("schema.segments")] | None:
        from schema.segments import Segment

        if self.segment_id is None:
            return None
        return mapped(
            info.context.loaders.segment,
            self.segment_id,
            lambda row: Segment.from_row(row) if row else None,
        )

    @strawberry.field(description="Inline conditions when kind = CUSTOM, else empty.")
    def rules(self) -> list[SegmentRule]:
        return rules_from_stored(self.stored_rules)


@strawberry.type(
    description="A feature flag; its per-environment targeting rules may reference segments."
)
class Flag(Node):
    key: str = strawberry.field(description="Unique within the project.")
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(description="Free text.")
    archived: bool = strawberry.field(
        description="Archived flags no longer count as segment usage."
    )
    db_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            id=strawberry.ID(encode_id("Flag", row["id"])),
            key=row["key"],
            name=row["name"],
            description=row["description"],
            archived=row["archived_at"] is not None,
            db_id=row["id"],
        )

    @strawberry.field(description="The flag's ordered targeting rules in one environment.")
    def targeting_rules(
        self,
        info: AppInfo,
        environment_key: Annotated[
            str, strawberry.argument(description='Environment key, e.g. "production".')
        ],
    ) -> list[TargetingRule]:
        return mapped(
            info.context.loaders.targeting_rules,
            (self.db_id, environment_key),
            lambda rows: [TargetingRule.from_row(row) for row in rows],
        )


@strawberry.type(description="A page of flags, by key.")
class FlagConnection(Connection[Flag]):
    pass


async def list_flags(
    info: AppInfo, project_key: str, first: int | None, after: str | None, search: str | None
) -> FlagConnection:
    ctx = info.context
    page = page_request(
        first=first,
        after=decode_cursor(after, "flag") if after else None,
        last=None,
        before=None,
        column="key",
    )
    project_id = ctx.project_id_for(project_key)
    search = search or None
    return await listing_connection(
        FlagConnection,
        ctx.db,
        db_flags.flag_listing(project_id, search),
        page,
        cursor=lambda row: encode_cursor("flag", row["key"], row["id"]),
        node=Flag.from_row,
    )


async def flag_by_key(info: AppInfo, project_key: str, key: str) -> Flag | None:
    ctx = info.context
    row = await ctx.db.run(db_flags.flag_by_key, ctx.project_id_for(project_key), key)
    return Flag.from_row(row) if row else None
