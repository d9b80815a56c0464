"""The Segment type, its usage, and the segment queries."""

from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Self

import strawberry

from core.versioned import PerVersion
from db import segment_targets as db_targets
from db import segments as db_segments
from db.members import Definition, references_from_rows
from db.segments import ORDER_COLUMNS
from db.segments import SegmentFilter as DbSegmentFilter
from rules.models import referenced_ids
from schema.audit import AuditEventConnection, history_of
from schema.change_requests import ChangeRequestConnection, ChangeRequestState, change_requests_of
from schema.context import AppInfo, mapped
from schema.enums import LogicalOperator, OrderDirection, SegmentOrderField, TargetKind
from schema.ids import encode_id
from schema.node import Node
from schema.pagination import (
    Connection,
    decode_cursor,
    encode_cursor,
    listing_connection,
    page_request,
    text_value,
    time_value,
)
from schema.profiles import ProfileConnection, member_connection
from schema.projects import Environment, Project
from schema.revisions import SegmentRevision, SegmentRevisionConnection, revision_of, revisions_of
from schema.rules import Condition, ConditionGroup, SegmentMatch, SegmentRule, rules_from_stored

if TYPE_CHECKING:
    from schema.flags import Flag


@strawberry.type(description="A flag that uses a segment in one environment.")
class FlagUsage:
    flag: Annotated["Flag", strawberry.lazy("schema.flags")] = strawberry.field(
        description="The flag whose targeting rules reference the segment."
    )
    environment: Environment = strawberry.field(description="The environment of those rules.")
    rule_count: int = strawberry.field(
        description="Targeting rules of that flag in that environment that reference the segment."
    )


@strawberry.type(description="Where a segment is used by non-archived flags and live segments.")
class SegmentUsage:
    usage_count: int = strawberry.field(
        description="Number of (flag, environment) pairs whose targeting rules reference the "
        "segment directly (SEGMENT rules, and CUSTOM rules holding a SegmentMatch of it)."
    )
    used_in_flags: list[FlagUsage] = strawberry.field(
        description="Those pairs, by flag key then environment key."
    )
    segment_id: strawberry.Private[int]

    @strawberry.field(description="Live segments whose rules reference this one directly, by key.")
    def used_in_segments(self, info: AppInfo) -> list["Segment"]:
        return mapped(
            info.context.loaders.referencing_segments,
            self.segment_id,
            lambda rows: [Segment.from_row(row) for row in rows],
        )

    @strawberry.field(
        description="(flag, environment) pairs of non-archived flags that reach this segment "
        "only through other segments, any depth; by flag key then environment key."
    )
    def indirect_flags(self, info: AppInfo) -> list[FlagUsage]:
        return mapped(info.context.loaders.indirect_usage, self.segment_id, flag_usages)


def usage_from_rows(segment_id: int, rows: list[Mapping[str, Any]]) -> SegmentUsage:
    return SegmentUsage(
        usage_count=len(rows), used_in_flags=flag_usages(rows), segment_id=segment_id
    )


def flag_usages(rows: list[Mapping[str, Any]]) -> list[FlagUsage]:
    from schema.flags import Flag

    return [
        FlagUsage(
            flag=Flag.from_row(
                {
                    "id": row["flag_id"],
                    "key": row["flag_key"],
                    "name": row["flag_name"],
                    "description": row["flag_description"],
                    "archived_at": row["flag_archived_at"],
                }
            ),
            environment=Environment.from_row(
                {
                    "id": row["environment_id"],
                    "key": row["environment_key"],
                    "name": row["environment_name"],
                }
            ),
            rule_count=row["rule_count"],
        )
        for row in rows
    ]


@strawberry.type(description="A key in a segment's included or excluded list.")
class Target:
    targeting_key: str = strawberry.field(description="The context's targetingKey it names.")
    added_at: datetime = strawberry.field(
        description="When it was added (a standard segment's keys: its last change)."
    )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(targeting_key=row["targeting_key"], added_at=row["added_at"])


@strawberry.type(description="A page of a segment's targets, targetingKey ascending.")
class TargetConnection(Connection[Target]):
    pass


TARGET_CURSOR = "target"

_rules: PerVersion[list[Condition | ConditionGroup | SegmentMatch]] = PerVersion()


@strawberry.type(
    description="A reusable audience definition that flags reference from their targeting rules."
)
class Segment(Node):
    key: str = strawberry.field(description="Unique among the project's live segments.")
    name: str = strawberry.field(description="Display name, 1-100 characters.")
    description: str | None = strawberry.field(description="Free text, at most 500 characters.")
    tags: list[str] = strawberry.field(description="Labels for filtering, at most 20.")
    logical_op: LogicalOperator = strawberry.field(description="How the top-level rules combine.")
    force: bool = strawberry.field(description="When true the segment matches every context.")
    included: list[str] = strawberry.field(description="Targeting keys always in the segment.")
    excluded: list[str] = strawberry.field(description="Targeting keys never matched by the rules.")
    salt: str = strawberry.field(
        description="Seeds PERCENTAGE buckets; set once at creation, changed only on request."
    )
    version: int = strawberry.field(
        description="Starts at 1, +1 on every change (a big segment's target edits are data)."
    )
    unbounded: bool = strawberry.field(
        description="A big segment: targets in their own table, up to 10,000,000; "
        "included and excluded read as empty lists."
    )
    generation: int = strawberry.field(
        description="+1 each time the target list is replaced whole; 0 until then."
    )
    included_count: int = strawberry.field(description="Keys in the included list.")
    excluded_count: int = strawberry.field(description="Keys in the excluded list.")
    created_at: datetime = strawberry.field(description="When the segment was created.")
    updated_at: datetime = strawberry.field(description="When the segment last changed.")
    deleted_at: datetime | None = strawberry.field(
        description="When it was deleted; null while live."
    )
    db_id: strawberry.Private[int]
    project_id: strawberry.Private[int]
    stored_rules: strawberry.Private[list[dict[str, Any]]]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            id=strawberry.ID(encode_id("Segment", row["id"])),
            key=row["key"],
            name=row["name"],
            description=row["description"],
            tags=row["tags"],
            logical_op=row["logical_op"],
            force=row["force"],
            included=row["included"],
            excluded=row["excluded"],
            salt=row["salt"],
            version=row["version"],
            unbounded=row["unbounded"],
            generation=row["generation"],
            included_count=row["included_count"] if row["unbounded"] else len(row["included"]),
            excluded_count=row["excluded_count"] if row["unbounded"] else len(row["excluded"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            deleted_at=row["deleted_at"],
            db_id=row["id"],
            project_id=row["project_id"],
            stored_rules=row["rules"],
        )

    @strawberry.field(description="Whether the segment is (softly) deleted.")
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @strawberry.field(description="The rules, combined with logicalOp.")
    def rules(self) -> list[SegmentRule]:
        # Read-only objects: a page of segments seen before reuses them.
        return _rules.get(
            (self.db_id, self.version, self.updated_at),
            lambda: rules_from_stored(self.stored_rules),
        )

    @strawberry.field(description="The project the segment belongs to.")
    def project(self, info: AppInfo) -> Project:
        return mapped(info.context.loaders.project, self.project_id, Project.from_row)

    @strawberry.field(
        description="Which non-archived flags reference the segment, per environment."
    )
    def usage(self, info: AppInfo) -> SegmentUsage:
        return mapped(info.context.loaders.usage, self.db_id, partial(usage_from_rows, self.db_id))

    @strawberry.field(description="Audit events of this segment, newest first.")
    async def history(
        self,
        info: AppInfo,
        first: Annotated[int | None, strawberry.argument(description="Page size, 0-100.")] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="Cursor to continue after.")
        ] = None,
    ) -> AuditEventConnection:
        return await history_of(info, ("segment", self.db_id), first, after, self.project_id)

    @strawberry.field(description="The segment's revisions, newest first.")
    async def revisions(
        self,
        info: AppInfo,
        first: Annotated[int | None, strawberry.argument(description="Page size, 0-100.")] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="Cursor to continue after.")
        ] = None,
    ) -> SegmentRevisionConnection:
        return await revisions_of(info, self.project_id, self.db_id, first, after)

    @strawberry.field(description="The revision of one version; null when there is none.")
    async def revision(
        self,
        info: AppInfo,
        version: Annotated[int, strawberry.argument(description="Which version.")],
    ) -> SegmentRevision | None:
        return await revision_of(info, self.project_id, self.db_id, version)

    @strawberry.field(description="Change requests for this segment, newest first.")
    async def change_requests(
        self,
        info: AppInfo,
        state: Annotated[
            ChangeRequestState | None, strawberry.argument(description="Only this state.")
        ] = None,
        first: Annotated[int | None, strawberry.argument(description="Page size, 0-100.")] = 20,
        after: Annotated[
            str | None, strawberry.argument(description="Cursor to continue after.")
        ] = None,
    ) -> ChangeRequestConnection:
        return await change_requests_of(info, self.project_id, self.db_id, state, first, after)

    @strawberry.field(
        description="Stored profiles the segment matches now, targetingKey ascending; "
        "totalCount equals memberCount."
    )
    async def members(
        self,
        info: AppInfo,
        first: Annotated[
            int | None, strawberry.argument(description="Page size, 0-100 (default 50).")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Cursor to continue after.")
        ] = None,
    ) -> ProfileConnection:
        return await member_connection(info, await self.definition(info), first, after)

    @strawberry.field(
        description="One target list, targetingKey ascending (code point order); `search` "
        "is a case-sensitive prefix."
    )
    async def targets(
        self,
        info: AppInfo,
        kind: Annotated[TargetKind, strawberry.argument(description="Which list.")],
        first: Annotated[
            int | None, strawberry.argument(description="Page size, 0-100 (default 50).")
        ] = None,
        after: Annotated[
            str | None, strawberry.argument(description="Cursor to continue after.")
        ] = None,
        search: Annotated[
            str | None, strawberry.argument(description="Only keys starting with this.")
        ] = None,
    ) -> TargetConnection:
        page = page_request(
            first=first,
            after=decode_cursor(after, TARGET_CURSOR) if after else None,
            last=None,
            before=None,
            column="targeting_key",
            tiebreak=None,
        )
        listing = db_targets.target_listing(
            self.project_id, self.db_id, kind.value, unbounded=self.unbounded, search=search
        )
        stored = self.included_count if kind is TargetKind.INCLUDED else self.excluded_count

        async def stored_count() -> int:
            return stored

        return await listing_connection(
            TargetConnection,
            info.context.db,
            listing,
            page,
            cursor=lambda row: encode_cursor(TARGET_CURSOR, row["targeting_key"], 0),
            node=Target.from_row,
            # Without a search, the stored count, not a count of millions of rows.
            count=None if search else stored_count,
        )

    @strawberry.field(description="Exact number of stored profiles the segment matches now.")
    async def member_count(self, info: AppInfo) -> int:
        return await info.context.loaders.member_count.load(await self.definition(info))

    async def definition(self, info: AppInfo) -> Definition:
        """Who the segment matches, as stored (a deleted segment keeps its definition), with
        the segments it references as they are now."""
        direct = tuple(sorted(set(referenced_ids(self.stored_rules))))
        closure = await info.context.loaders.closure.load(direct) if direct else {}
        return Definition.from_row(
            {
                "logical_op": LogicalOperator(self.logical_op).value,  # a stored string or the enum
                "rules": self.stored_rules,
                "force": self.force,
                "included": self.included,
                "excluded": self.excluded,
                "salt": self.salt,
                "id": self.db_id,
                "unbounded": self.unbounded,
            },
            references_from_rows(closure),
        )


@strawberry.type(description="A page of segments.")
class SegmentConnection(Connection[Segment]):
    pass


@strawberry.input(description="Order of a segment list.")
class SegmentOrder:
    field: SegmentOrderField = strawberry.field(
        default=SegmentOrderField.NAME, description="Sort key; ties break by id."
    )
    direction: OrderDirection = strawberry.field(
        default=OrderDirection.ASC, description="Sort direction."
    )


@strawberry.input(description="Narrows a segment list.")
class SegmentFilter:
    tags: list[str] | None = strawberry.field(
        default=None, description="Segments carrying any of these tags."
    )
    in_use: bool | None = strawberry.field(
        default=None,
        description="true: only segments a non-archived flag references; false: only unreferenced ones.",
    )
    include_deleted: bool | None = strawberry.field(
        default=False, description="Also list soft-deleted segments."
    )
    unbounded: bool | None = strawberry.field(
        default=None, description="true: only big segments; false: only standard ones."
    )


_CURSOR_VALUE = {
    "NAME": text_value,
    "KEY": text_value,
    "CREATED_AT": time_value,
    "UPDATED_AT": time_value,
}


async def list_segments(
    info: AppInfo,
    project_key: str,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    search: str | None,
    order_by: SegmentOrder | None,
    flt: SegmentFilter | None,
) -> SegmentConnection:
    ctx = info.context
    order = order_by or SegmentOrder()
    field = order.field.value
    column = ORDER_COLUMNS[field]
    parse = _CURSOR_VALUE[field]
    page = page_request(
        first=first,
        after=decode_cursor(after, field, parse) if after else None,
        last=last,
        before=decode_cursor(before, field, parse) if before else None,
        column=column,
        descending=order.direction is OrderDirection.DESC,
    )
    project_id = ctx.project_id_for(project_key)
    flt = flt or SegmentFilter()
    db_filter = DbSegmentFilter(
        search=search or None,
        tags=flt.tags,
        in_use=flt.in_use,
        include_deleted=bool(flt.include_deleted),
        unbounded=flt.unbounded,
    )
    return await listing_connection(
        SegmentConnection,
        ctx.db,
        db_segments.segment_listing(project_id, db_filter),
        page,
        cursor=lambda row: encode_cursor(field, row[column], row["id"]),
        node=Segment.from_row,
    )


async def segment_by_key(info: AppInfo, project_key: str, key: str) -> Segment | None:
    ctx = info.context
    row = await ctx.db.run(db_segments.segment_by_key, ctx.project_id_for(project_key), key)
    return Segment.from_row(row) if row else None
