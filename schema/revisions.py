"""Segment revisions: the definition at each version, and what changed from the one before."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

import strawberry
from strawberry.scalars import JSON

from db import segments as db_segments
from schema.audit import FieldChange
from schema.context import AppInfo
from schema.pagination import (
    Connection,
    decode_cursor,
    encode_cursor,
    id_value,
    listing_connection,
    page_request,
)


@strawberry.type(description="A segment as one version left it.")
class SegmentRevision:
    version: int = strawberry.field(description="The version this revision is of.")
    actor: str = strawberry.field(description="Name of the API key that made this version.")
    created_at: datetime = strawberry.field(description="When the version was written.")
    snapshot: JSON = strawberry.field(
        description="The definition at that version, in the input shapes of updateSegment "
        "(rules as SegmentRuleInput, references by segmentKey), plus `deleted`."
    )
    changes: list[FieldChange] = strawberry.field(
        description="Fields changed against the previous version; every field for the first "
        "revision recorded."
    )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            version=row["version"],
            actor=row["actor"],
            created_at=row["created_at"],
            snapshot=row["snapshot"],
            changes=snapshot_changes(row["previous"], row["snapshot"]),
        )


def snapshot_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> list[FieldChange]:
    """The fields that differ between two snapshots, in snapshot order (all of them, with
    before null, when there is no earlier snapshot)."""
    return [
        FieldChange(field=name, before=before.get(name) if before else None, after=after.get(name))
        for name in db_segments.SNAPSHOT_FIELDS
        if before is None or before.get(name) != after.get(name)
    ]


@strawberry.type(description="A page of a segment's revisions, newest first.")
class SegmentRevisionConnection(Connection[SegmentRevision]):
    pass


async def revisions_of(
    info: AppInfo, project_id: int, segment_id: int, first: int | None, after: str | None
) -> SegmentRevisionConnection:
    page = page_request(
        first=first,
        after=decode_cursor(after, "revision", id_value) if after else None,
        last=None,
        before=None,
        column="version",
        descending=True,
    )
    return await listing_connection(
        SegmentRevisionConnection,
        info.context.db,
        db_segments.revision_listing(project_id, segment_id),
        page,
        cursor=lambda row: encode_cursor("revision", row["version"], row["id"]),
        node=SegmentRevision.from_row,
    )


async def revision_of(
    info: AppInfo, project_id: int, segment_id: int, version: int
) -> SegmentRevision | None:
    row = await info.context.db.run(db_segments.revision, project_id, segment_id, version)
    return SegmentRevision.from_row(row) if row else None
