"""Change request mutations: propose, review, apply (now or at a time), withdraw."""

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import UNSET

from core import change_requests as core_requests
from core import segments as core_segments
from db.pool import Row
from rules.problems import ProblemCode, Refused
from schema.change_requests import ChangeRequest, ReviewDecision
from schema.context import AppInfo
from schema.errors import UserError, from_problems
from schema.ids import decode_id_of
from schema.mutations.segments import DeleteSegmentInput, UpdateSegmentInput, _fields


@strawberry.input(description="Exactly one of update / delete.")
class ProposeSegmentChangeInput:
    update: UpdateSegmentInput | None = strawberry.field(
        default=None,
        description="The update to propose; its expectedVersion is the base version "
        "(current when omitted).",
    )
    delete: DeleteSegmentInput | None = strawberry.field(
        default=None, description="The delete to propose."
    )
    note: str | None = strawberry.field(
        default=None, description="Why, for the reviewers; at most 1000 characters."
    )


@strawberry.input(description="A review of a change request.")
class ReviewChangeRequestInput:
    id: strawberry.ID = strawberry.field(description="Global id of the change request.")
    decision: ReviewDecision = strawberry.field(description="Approve or reject.")
    comment: str | None = strawberry.field(
        default=None, description="Why; at most 1000 characters."
    )


@strawberry.input(description="An approved change request to apply.")
class ApplyChangeRequestInput:
    id: strawberry.ID = strawberry.field(description="Global id of the change request.")
    apply_at: datetime | None = strawberry.field(
        default=None, description="Omitted: now; in the future: SCHEDULED until then."
    )


@strawberry.input(description="A change request to withdraw.")
class WithdrawChangeRequestInput:
    id: strawberry.ID = strawberry.field(description="Global id of the change request.")


@strawberry.type(description="Result of a change request mutation.")
class ChangeRequestPayload:
    change_request: ChangeRequest | None = strawberry.field(
        description="The request after the mutation; null on error, except CHANGE_CONFLICT "
        "(the request, now CONFLICT)."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


async def _payload(
    info: AppInfo, request_id: int | None, result: Row | Refused
) -> ChangeRequestPayload:
    if not isinstance(result, Refused):
        return ChangeRequestPayload(change_request=ChangeRequest.from_row(result), user_errors=[])
    shown = None
    if result.code == ProblemCode.CHANGE_CONFLICT and request_id is not None:
        row = await info.context.loaders.change_request.load(request_id)
        shown = ChangeRequest.from_row(row) if row else None
    return ChangeRequestPayload(change_request=shown, user_errors=from_problems(result.problems))


def _request_id(global_id: str) -> int | None:
    return decode_id_of(global_id, "ChangeRequest")


@strawberry.type
class ChangeRequestMutations:
    @strawberry.mutation(
        description="Propose an update or a delete of a segment, validated like that write; "
        "opens a change request against the segment's current version."
    )
    async def propose_segment_change(
        self,
        info: AppInfo,
        input: Annotated[ProposeSegmentChangeInput, strawberry.argument(description="The change.")],
    ) -> ChangeRequestPayload:
        ctx = info.context
        if (input.update is None) == (input.delete is None):
            return ChangeRequestPayload(
                change_request=None,
                user_errors=from_problems(
                    Refused.one(
                        ProblemCode.INVALID_INPUT,
                        "Give exactly one of update and delete.",
                        ("input",),
                    ).problems
                ),
            )
        if input.update is not None:
            expected = input.update.expected_version
            result = await core_requests.propose(
                ctx.db,
                ctx.principal,
                ctx.settings.policy,
                decode_id_of(input.update.id, "Segment"),
                deletes=False,
                fields=_fields(input.update, core_segments.FIELDS),
                expected_version=None if expected is UNSET else expected,
                note=input.note,
            )
        else:
            assert input.delete is not None
            result = await core_requests.propose(
                ctx.db,
                ctx.principal,
                ctx.settings.policy,
                decode_id_of(input.delete.id, "Segment"),
                deletes=True,
                fields={},
                expected_version=input.delete.expected_version,
                note=input.note,
            )
        return await _payload(info, None, result)

    @strawberry.mutation(
        description="Approve or reject a change request (anyone but its author); one reject "
        "rejects, requiredApprovals distinct approvers approve."
    )
    async def review_change_request(
        self,
        info: AppInfo,
        input: Annotated[ReviewChangeRequestInput, strawberry.argument(description="The review.")],
    ) -> ChangeRequestPayload:
        ctx = info.context
        request_id = _request_id(input.id)
        result = await core_requests.review(
            ctx.db, ctx.principal, request_id, input.decision.value, input.comment
        )
        return await _payload(info, request_id, result)

    @strawberry.mutation(
        description="Apply an APPROVED change request now, or schedule it (author or admin)."
    )
    async def apply_change_request(
        self,
        info: AppInfo,
        input: Annotated[ApplyChangeRequestInput, strawberry.argument(description="Which, when.")],
    ) -> ChangeRequestPayload:
        ctx = info.context
        request_id = _request_id(input.id)
        result = await core_requests.apply(
            ctx.db, ctx.principal, ctx.settings.policy, request_id, input.apply_at
        )
        return await _payload(info, request_id, result)

    @strawberry.mutation(
        description="Withdraw a change request not yet applied, rejected or withdrawn "
        "(author or admin)."
    )
    async def withdraw_change_request(
        self,
        info: AppInfo,
        input: Annotated[WithdrawChangeRequestInput, strawberry.argument(description="Which.")],
    ) -> ChangeRequestPayload:
        ctx = info.context
        request_id = _request_id(input.id)
        result = await core_requests.withdraw(ctx.db, ctx.principal, request_id)
        return await _payload(info, request_id, result)
