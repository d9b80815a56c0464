"""Change requests (DESIGN §14): propose an update or a delete of a segment against its
current version, review it, apply it now or at a time, withdraw it.

A proposal is validated by running the write it proposes (core.segments) in a savepoint that
is rolled back, so it is refused exactly as the write would be. Applying writes an ordinary
version: over the base version, or over the current one when the segment moved on only in
fields the request does not change (a rebase); otherwise the request becomes CONFLICT and
nothing is written. Requests are identified to people by their API key names: the author
may not review, and approvals count once per reviewer name.
"""

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from core import references
from core import segments as core_segments
from core.access import Forbidden, require_editor
from core.policy import Policy
from db import change_requests as db_requests
from db import projects as db_projects
from db import segments as db_segments
from db.api_keys import Principal
from db.pool import Database, Row
from rules.problems import Problem, ProblemCode, Refused

log = logging.getLogger("segments.scheduler")

MAX_NOTE_LENGTH = 1000
MAX_COMMENT_LENGTH = 1000
# Requests waiting on one segment (OPEN, APPROVED, SCHEDULED) at once.
MAX_PENDING_PER_SEGMENT = 50
MAX_SCHEDULE_AHEAD = timedelta(days=366)
# Unexpected failures applying one scheduled request before it is given up as CONFLICT.
MAX_APPLY_ATTEMPTS = 3
NO_SUCH_REQUEST = "No such change request."
# From these a request may still be withdrawn.
WITHDRAWABLE = (*db_requests.PENDING_STATES, "CONFLICT")


class _RolledBack(Exception):
    """Leaves a savepoint with what was found inside it, undoing what it wrote."""

    def __init__(self, result: Any) -> None:
        super().__init__("rolled back")
        self.result = result


def _stored(row: Row) -> dict[str, Any]:
    """The fields a request can change, as stored, plus whether the segment is deleted."""
    return {
        **{column: row[column] for column in db_segments.FIELDS},
        "deleted": row["deleted_at"] is not None,
    }


def _api_name(column: str) -> str:
    return db_segments.FIELDS.get(column, column)


def _under(refused: Refused, where: str) -> Refused:
    """Problems of the proposed write, pointed into the proposal's `update`/`delete` input."""
    return Refused(
        [
            Problem(None if p.field is None else ("input", where, *p.field[1:]), p.code, p.message)
            for p in refused.problems
        ],
        refused.blocking_usage,
    )


def _too_long(text: str | None, limit: int, path: tuple[str, ...]) -> Refused | None:
    if text is not None and len(text) > limit:
        return Refused.one(
            ProblemCode.INVALID_INPUT, f"{path[-1]} is at most {limit} characters", path
        )
    return None


def _not_found() -> Refused:
    return Refused.one(ProblemCode.NOT_FOUND, NO_SUCH_REQUEST, ("input", "id"))


def _invalid_state(row: Row, action: str) -> Refused:
    return Refused.one(
        ProblemCode.INVALID_STATE,
        f"A change request in state {row['state']} cannot be {action}.",
        ("input", "id"),
    )


def _at_id(problem: Problem) -> Problem:
    """A problem of the write a request stands for, pointed at the request's id."""
    if problem.field is None or problem.field[1:] in ((), ("id",)):
        return Problem(("input", "id"), problem.code, problem.message)
    where = ".".join(problem.field[1:])
    return Problem(("input", "id"), problem.code, f"{where}: {problem.message}")


def _require_author_or_admin(principal: Principal, row: Row, action: str) -> None:
    if not principal.is_admin and principal.name != row["author"]:
        raise Forbidden(f"Only the author of the change request or an admin key may {action} it.")


async def propose(
    db: Database,
    principal: Principal,
    policy: Policy,
    segment_id: int | None,
    *,
    deletes: bool,
    fields: dict[str, Any],
    expected_version: int | None,
    note: str | None,
) -> Row | Refused:
    """An OPEN request to update (the given fields) or delete the segment, against its
    current version (`expected_version`, when given, must be it)."""
    require_editor(principal)
    where = "delete" if deletes else "update"
    if too_long := _too_long(note, MAX_NOTE_LENGTH, ("input", "note")):
        return too_long
    if segment_id is None:
        return Refused.one(
            ProblemCode.NOT_FOUND, core_segments.NO_SUCH_SEGMENT, ("input", where, "id")
        )
    project_id = principal.project_id
    async with db.transaction() as conn:
        # The graph lock first, as every segment write takes it before row locks.
        await db_segments.lock_reference_graph(conn, project_id)
        before = await db_segments.lock_segment(conn, project_id, segment_id, expected_version)
        if isinstance(before, Refused):
            return _under(before, where)
        if await db_requests.pending_count(conn, project_id, segment_id) >= MAX_PENDING_PER_SEGMENT:
            return Refused.one(
                ProblemCode.LIMIT_EXCEEDED,
                f"A segment has at most {MAX_PENDING_PER_SEGMENT} open, approved or scheduled "
                "change requests.",
                ("input", where, "id"),
            )
        try:
            async with conn.transaction():
                written = await _write(conn, principal, policy, before, deletes, fields)
                snapshot = None
                if not isinstance(written, Refused):
                    snapshot = await db_segments.snapshot_of(conn, written)
                raise _RolledBack((written, snapshot))
        except _RolledBack as dry_run:
            written, proposed_snapshot = dry_run.result
        if isinstance(written, Refused):
            return _under(written, where)
        if written["version"] == before["version"]:
            return Refused.one(
                ProblemCode.INVALID_INPUT,
                "The proposed update changes nothing.",
                ("input", where),
            )
        base, after = _stored(before), _stored(written)
        changed = [_api_name(column) for column in base if base[column] != after[column]]
        return await db_requests.insert_request(
            conn,
            project_id,
            segment_id,
            author=principal.name,
            note=note,
            base_version=before["version"],
            deletes=deletes,
            fields={
                column: proposed_snapshot[api_name]
                for column, api_name in db_segments.FIELDS.items()
                if api_name in changed
            },
            base=base,
            base_snapshot=await db_segments.snapshot_of(conn, before),
            proposed_snapshot=proposed_snapshot,
            proposed_rules=written["rules"] if "rules" in changed else None,
            changed_fields=changed,
        )


async def fields_now(
    conn: asyncpg.Connection, row: Row | Mapping[str, Any], *, lock: bool
) -> dict[str, Any] | Refused:
    """The request's fields as its write takes them today: proposed rules name the segments
    they referenced when proposed by their keys now (`references.rules_input_now`; NOT_FOUND
    when one was deleted since). A request stored before sql/0017 names them as proposed."""
    fields = dict(row["fields"])
    if "rules" not in fields or row["proposed_rules"] is None:
        return fields
    rules = await references.rules_input_now(
        conn, row["project_id"], row["proposed_rules"], ("input", "id"), lock=lock
    )
    return rules if isinstance(rules, Refused) else {**fields, "rules": rules}


async def _write(
    conn: asyncpg.Connection,
    principal: Principal,
    policy: Policy,
    current: Row,
    deletes: bool,
    fields: dict[str, Any],
) -> Row | Refused:
    """The segment write a request stands for, over the (locked) current row."""
    if deletes:
        return await db_segments.delete_segment(
            conn,
            current["project_id"],
            current["id"],
            actor=principal.name,
            expected_version=current["version"],
        )
    return await core_segments.update_in(conn, principal, policy, current["id"], fields)


async def review(
    db: Database,
    principal: Principal,
    request_id: int | None,
    decision: str,
    comment: str | None,
) -> Row | Refused:
    """Record a review: one REJECT rejects; APPROVEs from `requiredApprovals` distinct
    reviewers approve an OPEN request. A reviewer who reviews again replaces their review."""
    require_editor(principal)
    if too_long := _too_long(comment, MAX_COMMENT_LENGTH, ("input", "comment")):
        return too_long
    if request_id is None:
        return _not_found()
    async with db.transaction() as conn:
        row = await db_requests.request_for_update(conn, principal.project_id, request_id)
        if row is None:
            return _not_found()
        if row["author"] == principal.name:
            return Refused.one(
                ProblemCode.SELF_REVIEW,
                "The author of a change request cannot review it.",
                ("input", "id"),
            )
        if row["state"] not in db_requests.PENDING_STATES:
            return _invalid_state(row, "reviewed")
        await db_requests.save_review(
            conn,
            principal.project_id,
            request_id,
            reviewer=principal.name,
            decision=decision,
            comment=comment,
        )
        state = row["state"]
        if decision == "REJECT":
            state = "REJECTED"
        elif state == "OPEN":
            settings = await db_projects.project_settings(conn, principal.project_id)
            approvals = await db_requests.approvals(conn, principal.project_id, request_id)
            if approvals >= settings["required_approvals"]:
                state = "APPROVED"
        return await db_requests.set_state(
            conn,
            row,
            state,
            actor=principal.name,
            extra=[
                {
                    "field": "review",
                    "before": None,
                    "after": {"reviewer": principal.name, "decision": decision, "comment": comment},
                }
            ],
        )


async def apply(
    db: Database,
    principal: Principal,
    policy: Policy,
    request_id: int | None,
    apply_at: datetime | None,
) -> Row | Refused:
    """Apply an APPROVED request now, or schedule it (`apply_at` in the future). A refusal
    coded CHANGE_CONFLICT has made the request CONFLICT; any other leaves it as it was."""
    require_editor(principal)
    if request_id is None:
        return _not_found()
    now = datetime.now(UTC)
    if apply_at is not None:
        if apply_at.tzinfo is None:
            apply_at = apply_at.replace(tzinfo=UTC)
        if apply_at > now + MAX_SCHEDULE_AHEAD:
            return Refused.one(
                ProblemCode.INVALID_INPUT,
                f"applyAt is at most {MAX_SCHEDULE_AHEAD.days} days ahead",
                ("input", "applyAt"),
            )
    async with db.transaction() as conn:
        row = await db_requests.request_for_update(conn, principal.project_id, request_id)
        if row is None:
            return _not_found()
        _require_author_or_admin(principal, row, "apply")
        if row["state"] != "APPROVED":
            return _invalid_state(row, "applied (it must be APPROVED)")
        if apply_at is not None and apply_at > now:
            return await db_requests.set_state(
                conn,
                row,
                "SCHEDULED",
                actor=principal.name,
                apply_at=apply_at,
                applied_by=principal.name,
            )
        return await _apply(conn, row, policy, principal)


async def _apply(
    conn: asyncpg.Connection, row: Row, policy: Policy, principal: Principal
) -> Row | Refused:
    """Write the (locked) request's change and mark it APPLIED; or mark it CONFLICT when a
    field it changes changed since its base (CHANGE_CONFLICT); or, when today's state refuses
    the write (a key taken since, a flag using a segment to delete), write nothing."""
    project_id = row["project_id"]
    # The graph lock before the segment's row lock, in the order every segment write takes them.
    await db_segments.lock_reference_graph(conn, project_id)
    current = await db_segments.lock_segment(conn, project_id, row["segment_id"], None)
    if isinstance(current, Refused):
        return current
    now = _stored(current)
    moved = [_api_name(column) for column, value in row["base"].items() if now[column] != value]
    overlap = [name for name in row["changed_fields"] if name in moved]
    if overlap:
        why = f"Changed since version {row['base_version']}: {', '.join(overlap)}."
        await db_requests.set_state(conn, row, "CONFLICT", actor=principal.name, conflict=why)
        return Refused.one(ProblemCode.CHANGE_CONFLICT, why, ("input", "id"))
    fields = await fields_now(conn, row, lock=True)
    if isinstance(fields, Refused):
        return fields
    try:
        async with conn.transaction():
            written = await _write(conn, principal, policy, current, row["deletes"], fields)
            if isinstance(written, Refused):
                raise _RolledBack(written)
    except _RolledBack as refused:
        return Refused([_at_id(problem) for problem in refused.result.problems])
    return await db_requests.set_state(
        conn, row, "APPLIED", actor=principal.name, applied_version=written["version"]
    )


async def withdraw(db: Database, principal: Principal, request_id: int | None) -> Row | Refused:
    """Withdraw a request that is not applied, rejected or withdrawn yet."""
    require_editor(principal)
    if request_id is None:
        return _not_found()
    async with db.transaction() as conn:
        row = await db_requests.request_for_update(conn, principal.project_id, request_id)
        if row is None:
            return _not_found()
        _require_author_or_admin(principal, row, "withdraw")
        if row["state"] not in WITHDRAWABLE:
            return _invalid_state(row, "withdrawn")
        return await db_requests.set_state(conn, row, "WITHDRAWN", actor=principal.name)


async def apply_due(
    conn: asyncpg.Connection,
    policy: Policy,
    limit: int = 20,
    failures: dict[int, int] | None = None,
) -> int:
    """Apply up to `limit` SCHEDULED requests whose time has come, each in its own
    transaction; one the write refuses becomes CONFLICT with the reason. Returns how many
    were handled. Safe with any number of processes polling (FOR UPDATE SKIP LOCKED).

    A request whose apply fails unexpectedly is logged and skipped for the rest of the poll,
    so it cannot hold up the others; `failures` (kept by the caller across polls) counts
    such failures, and after MAX_APPLY_ATTEMPTS the request becomes CONFLICT."""
    failures = {} if failures is None else failures
    skipped: list[int] = []
    handled = 0
    while handled < limit:
        row = None
        try:
            async with conn.transaction():
                row = await db_requests.due_request(conn, skipped)
                if row is None:
                    break
                await _apply_scheduled(conn, row, policy)
            failures.pop(row["id"], None)
        except Exception:
            if row is None or conn.is_closed():
                raise
            skipped.append(row["id"])
            failures[row["id"]] = attempts = failures.get(row["id"], 0) + 1
            log.exception("applying scheduled change request %s failed", row["id"])
            if attempts >= MAX_APPLY_ATTEMPTS:
                await _give_up(conn, row)
                failures.pop(row["id"], None)
        handled += 1
    return handled


async def _apply_scheduled(conn: asyncpg.Connection, row: Row, policy: Policy) -> None:
    # The write is made in the name of whoever scheduled it.
    principal = Principal(row["project_id"], "", "editor", row["applied_by"] or row["author"])
    result = await _apply(conn, row, policy, principal)
    if isinstance(result, Refused) and result.code != ProblemCode.CHANGE_CONFLICT:
        await db_requests.set_state(
            conn, row, "CONFLICT", actor=principal.name, conflict=result.problems[0].message
        )


async def _give_up(conn: asyncpg.Connection, row: Row) -> None:
    async with conn.transaction():
        locked = await db_requests.request_for_update(conn, row["project_id"], row["id"])
        if locked is not None and locked["state"] == "SCHEDULED":
            await db_requests.set_state(
                conn,
                locked,
                "CONFLICT",
                actor=locked["applied_by"] or locked["author"],
                conflict="It could not be applied (an internal error, logged by the server).",
            )
