"""The ChangeRequest type, its reviews, and the lists of change requests (DESIGN §14)."""

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Self

import strawberry

from db import change_requests as db_requests
from schema.audit import FieldChange
from schema.context import AppInfo, mapped
from schema.ids import encode_id
from schema.node import Node
from schema.pagination import (
    Connection,
    decode_cursor,
    encode_cursor,
    id_value,
    listing_connection,
    page_request,
)
from schema.revisions import snapshot_changes

if TYPE_CHECKING:
    from schema.impact import SegmentImpact
    from schema.segments import Segment


@strawberry.enum(description="Where a change request stands.")
class ChangeRequestState(Enum):
    OPEN = strawberry.enum_value("OPEN", description="Waiting for reviews.")
    APPROVED = strawberry.enum_value(
        "APPROVED", description="Approved by enough reviewers; the author or an admin may apply it."
    )
    SCHEDULED = strawberry.enum_value(
        "SCHEDULED", description="Approved and to be applied at applyAt by the scheduler."
    )
    APPLIED = strawberry.enum_value("APPLIED", description="Written as appliedVersion.")
    REJECTED = strawberry.enum_value("REJECTED", description="A reviewer rejected it.")
    CONFLICT = strawberry.enum_value(
        "CONFLICT",
        description="Applying found a field it changes changed since baseVersion, or today's "
        "state refused the scheduled write (see conflict); nothing was written.",
    )
    WITHDRAWN = strawberry.enum_value(
        "WITHDRAWN", description="Withdrawn by its author or an admin."
    )


@strawberry.enum(description="A reviewer's decision.")
class ReviewDecision(Enum):
    APPROVE = strawberry.enum_value("APPROVE", description="Approve the change.")
    REJECT = strawberry.enum_value("REJECT", description="Reject it; one reject rejects.")


@strawberry.type(description="One reviewer's (latest) decision on a change request.")
class Review:
    reviewer: str = strawberry.field(description="Name of the API key that reviewed.")
    decision: ReviewDecision = strawberry.field(description="Approve or reject.")
    comment: str | None = strawberry.field(description="Why, in the reviewer's words.")
    created_at: datetime = strawberry.field(description="When the decision was made.")

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            reviewer=row["reviewer"],
            decision=ReviewDecision(row["decision"]),
            comment=row["comment"],
            created_at=row["created_at"],
        )


@strawberry.type(description="A proposed update or delete of a segment, with its reviews.")
class ChangeRequest(Node):
    state: ChangeRequestState = strawberry.field(description="Where the request stands.")
    author: str = strawberry.field(description="Name of the API key that proposed it.")
    note: str | None = strawberry.field(description="The author's note.")
    base_version: int = strawberry.field(
        description="The segment version the change was written against."
    )
    deletes: bool = strawberry.field(description="True: the change deletes the segment.")
    changes: list[FieldChange] = strawberry.field(
        description="The proposed fields against baseVersion, in revision snapshot shapes."
    )
    apply_at: datetime | None = strawberry.field(
        description="When it is (to be) applied, once scheduled."
    )
    applied_version: int | None = strawberry.field(
        description="The segment version that applying created."
    )
    conflict: str | None = strawberry.field(description="Why, when CONFLICT.")
    created_at: datetime = strawberry.field(description="When it was proposed.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    db_id: strawberry.Private[int]
    segment_id: strawberry.Private[int]
    # The request's row (db.change_requests.CHANGE_REQUEST_COLUMNS), for its live impact.
    row: strawberry.Private[Mapping[str, Any]]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            id=strawberry.ID(encode_id("ChangeRequest", row["id"])),
            state=ChangeRequestState(row["state"]),
            author=row["author"],
            note=row["note"],
            base_version=row["base_version"],
            deletes=row["deletes"],
            changes=snapshot_changes(row["base_snapshot"], row["proposed_snapshot"]),
            apply_at=row["apply_at"],
            applied_version=row["applied_version"],
            conflict=row["conflict"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            db_id=row["id"],
            segment_id=row["segment_id"],
            row=row,
        )

    @strawberry.field(description="The segment the change is for.")
    def segment(self, info: AppInfo) -> Annotated["Segment", strawberry.lazy("schema.segments")]:
        from schema.segments import Segment

        return mapped(info.context.loaders.segment, self.segment_id, Segment.from_row)

    @strawberry.field(
        description="Who the change would let in and out, against the segment's current "
        "version; null once applied, rejected or withdrawn, or while today's state would "
        "refuse it."
    )
    async def impact(
        self, info: AppInfo
    ) -> Annotated["SegmentImpact", strawberry.lazy("schema.impact")] | None:
        from core.impact import request_impact
        from schema.impact import SegmentImpact

        if self.state.value in ("APPLIED", "REJECTED", "WITHDRAWN"):
            return None
        ctx = info.context
        found = await request_impact(ctx.db, ctx.principal, ctx.settings.policy, self.row)
        return None if found is None else SegmentImpact.of(found)

    @strawberry.field(description="Reviews so far, one per reviewer (their latest), oldest first.")
    def reviews(self, info: AppInfo) -> list[Review]:
        return mapped(
            info.context.loaders.change_request_reviews,
            self.db_id,
            lambda rows: [Review.from_row(row) for row in rows],
        )


@strawberry.type(description="A page of change requests, newest first.")
class ChangeRequestConnection(Connection[ChangeRequest]):
    pass


async def change_requests_of(
    info: AppInfo,
    project_id: int,
    segment_id: int | None,
    state: ChangeRequestState | None,
    first: int | None,
    after: str | None,
) -> ChangeRequestConnection:
    page = page_request(
        first=first,
        after=decode_cursor(after, "changeRequest", id_value) if after else None,
        last=None,
        before=None,
        column="id",
        descending=True,
        tiebreak=None,
    )
    return await listing_connection(
        ChangeRequestConnection,
        info.context.db,
        db_requests.request_listing(project_id, segment_id, state.value if state else None),
        page,
        cursor=lambda row: encode_cursor("changeRequest", row["id"], row["id"]),
        node=ChangeRequest.from_row,
    )
