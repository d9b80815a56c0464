"""Every SQL statement about change requests and their reviews (sql/0012)."""

from functools import partial
from typing import Any

import asyncpg

from db.audit import record_event
from db.pagination import Listing, SqlBuilder
from db.pool import returning

CHANGE_REQUEST_COLUMNS = """
    c.project_id, c.id, c.segment_id, c.state, c.author, c.note, c.base_version, c.deletes,
    c.fields, c.base, c.base_snapshot, c.proposed_snapshot, c.proposed_rules, c.changed_fields,
    c.apply_at, c.applied_by, c.applied_version, c.conflict, c.created_at, c.updated_at
"""
REVIEW_COLUMNS = (
    "r.project_id, r.id, r.change_request_id, r.reviewer, r.decision, r.comment, r.created_at"
)

# States in which a request still waits for something (review, apply, its time).
PENDING_STATES = ("OPEN", "APPROVED", "SCHEDULED")
# The audit log's entity type; schema/audit.py turns it into the ChangeRequest node type.
ENTITY_TYPE = "changeRequest"


async def insert_request(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int,
    *,
    author: str,
    note: str | None,
    base_version: int,
    deletes: bool,
    fields: dict[str, Any],
    base: dict[str, Any],
    base_snapshot: dict[str, Any],
    proposed_snapshot: dict[str, Any],
    proposed_rules: list[Any] | None,
    changed_fields: list[str],
) -> asyncpg.Record:
    """A new OPEN request, audited as CREATED."""
    row = await returning(
        conn,
        f"""
        INSERT INTO change_requests AS c (
            project_id, segment_id, author, note, base_version, deletes, fields, base,
            base_snapshot, proposed_snapshot, proposed_rules, changed_fields
        )
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
        RETURNING {CHANGE_REQUEST_COLUMNS}
        """,
        project_id,
        segment_id,
        author,
        note,
        base_version,
        deletes,
        fields,
        base,
        base_snapshot,
        proposed_snapshot,
        proposed_rules,
        changed_fields,
    )
    await record_event(
        conn,
        project_id,
        entity_type=ENTITY_TYPE,
        entity_id=row["id"],
        action="CREATED",
        actor=author,
        changes=[
            {"field": "state", "before": None, "after": "OPEN"},
            {"field": "baseVersion", "before": None, "after": base_version},
            {"field": "changes", "before": None, "after": changed_fields},
        ],
    )
    return row


async def pending_count(conn: asyncpg.Connection, project_id: int, segment_id: int) -> int:
    count: int = await conn.fetchval(
        """
        SELECT count(*)
        FROM change_requests
        WHERE project_id = $1 AND segment_id = $2 AND state = ANY($3)
        """,
        project_id,
        segment_id,
        list(PENDING_STATES),
    )
    return count


async def requests_by_id(
    conn: asyncpg.Connection, project_id: int, ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT {CHANGE_REQUEST_COLUMNS}
        FROM change_requests c
        WHERE c.project_id = $1 AND c.id = ANY($2)
        """,
        project_id,
        ids,
    )


async def request_for_update(
    conn: asyncpg.Connection, project_id: int, request_id: int
) -> asyncpg.Record | None:
    """The request, locked until the transaction ends (None: not in this project)."""
    return await conn.fetchrow(
        f"""
        SELECT {CHANGE_REQUEST_COLUMNS}
        FROM change_requests c
        WHERE c.project_id = $1 AND c.id = $2
        FOR UPDATE
        """,
        project_id,
        request_id,
    )


async def due_request(conn: asyncpg.Connection, skipped: list[int]) -> asyncpg.Record | None:
    """One SCHEDULED request of any project whose time has come (but `skipped`), locked;
    requests another process holds are skipped, so each is applied by exactly one scheduler."""
    return await conn.fetchrow(
        f"""
        SELECT {CHANGE_REQUEST_COLUMNS}
        FROM change_requests c
        WHERE c.state = 'SCHEDULED'
          AND c.apply_at <= now()
          AND NOT c.id = ANY($1::bigint[])
        ORDER BY c.apply_at
        LIMIT 1
        FOR UPDATE SKIP LOCKED
        """,
        skipped,
    )


async def set_state(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    state: str,
    *,
    actor: str,
    extra: list[dict[str, Any]] | None = None,
    apply_at: Any = None,
    applied_by: str | None = None,
    applied_version: int | None = None,
    conflict: str | None = None,
) -> asyncpg.Record:
    """Move a (locked) request to `state`, setting the given columns, audited as UPDATED
    with the state change and `extra` changes."""
    updated = await returning(
        conn,
        f"""
        UPDATE change_requests AS c
        SET state = $3,
            apply_at = coalesce($4, c.apply_at),
            applied_by = coalesce($5, c.applied_by),
            applied_version = coalesce($6, c.applied_version),
            conflict = coalesce($7, c.conflict),
            updated_at = now()
        WHERE c.project_id = $1 AND c.id = $2
        RETURNING {CHANGE_REQUEST_COLUMNS}
        """,
        row["project_id"],
        row["id"],
        state,
        apply_at,
        applied_by,
        applied_version,
        conflict,
    )
    changes = list(extra or [])
    if state != row["state"]:
        changes.append({"field": "state", "before": row["state"], "after": state})
    for column, api_name in (
        ("apply_at", "applyAt"),
        ("applied_version", "appliedVersion"),
        ("conflict", "conflict"),
    ):
        if updated[column] != row[column]:
            # orjson writes datetimes as ISO 8601 text.
            changes.append({"field": api_name, "before": row[column], "after": updated[column]})
    await record_event(
        conn,
        row["project_id"],
        entity_type=ENTITY_TYPE,
        entity_id=row["id"],
        action="UPDATED",
        actor=actor,
        changes=changes,
    )
    return updated


async def save_review(
    conn: asyncpg.Connection,
    project_id: int,
    request_id: int,
    *,
    reviewer: str,
    decision: str,
    comment: str | None,
) -> None:
    """Record a reviewer's decision; a later review by the same reviewer replaces theirs."""
    await conn.execute(
        """
        INSERT INTO change_request_reviews (project_id, change_request_id, reviewer, decision, comment)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (project_id, change_request_id, reviewer)
        DO UPDATE SET decision = EXCLUDED.decision, comment = EXCLUDED.comment, created_at = now()
        """,
        project_id,
        request_id,
        reviewer,
        decision,
        comment,
    )


async def approvals(conn: asyncpg.Connection, project_id: int, request_id: int) -> int:
    """Distinct reviewers whose (latest) decision on the request is APPROVE."""
    count: int = await conn.fetchval(
        """
        SELECT count(*)
        FROM change_request_reviews
        WHERE project_id = $1 AND change_request_id = $2 AND decision = 'APPROVE'
        """,
        project_id,
        request_id,
    )
    return count


async def reviews_of(
    conn: asyncpg.Connection, project_id: int, request_ids: list[int]
) -> list[asyncpg.Record]:
    """The reviews of these requests, oldest first."""
    return await conn.fetch(
        f"""
        SELECT {REVIEW_COLUMNS}
        FROM change_request_reviews r
        WHERE r.project_id = $1 AND r.change_request_id = ANY($2)
        ORDER BY r.change_request_id, r.created_at, r.id
        """,
        project_id,
        request_ids,
    )


def _filtered(project_id: int, segment_id: int | None, state: str | None) -> SqlBuilder:
    sql = SqlBuilder(project_id)
    sql.where("c.project_id = $1")
    if segment_id is not None:
        sql.where(f"c.segment_id = {sql.param(segment_id)}")
    if state is not None:
        sql.where(f"c.state = {sql.param(state)}")
    return sql


def request_listing(project_id: int, segment_id: int | None, state: str | None) -> Listing:
    """A project's (or one segment's) change requests, optionally in one state."""
    return Listing(
        "change_requests c",
        CHANGE_REQUEST_COLUMNS,
        partial(_filtered, project_id, segment_id, state),
    )
