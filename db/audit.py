"""Every SQL statement about the audit log."""

from functools import partial
from typing import Any

import asyncpg
import orjson

from db.pagination import Listing, SqlBuilder

# An event's stored changes stay small whatever was written: a list longer than SAMPLE_SIZE
# (15,000 targets, 200 targeting rules, an IN list of 1,000 values), at any depth, is stored as
# {"count": N, "sample": [its first SAMPLE_SIZE items]}; shorter lists and scalars are kept as
# they are. Should a change still take more than CHANGE_BYTES as JSON (many long rules), the
# samples shrink until it fits, down to {"count": N, "sample": []}.
SAMPLE_SIZE = 20
CHANGE_BYTES = 16 * 1024
_SMALLER_SAMPLES = (5, 1, 0)


def _bounded(value: Any, sample: int) -> Any:
    if type(value) is list:
        items = [_bounded(item, sample) for item in value[:sample]]
        return {"count": len(value), "sample": items} if len(value) > sample else items
    if type(value) is dict:
        return {key: _bounded(item, sample) for key, item in value.items()}
    return value


def bounded_change(change: dict[str, Any]) -> dict[str, Any]:
    """A change ({"field", "before", "after"}) as stored: lists summarised as count and sample."""
    bounded = _bounded(change, SAMPLE_SIZE)
    for sample in _SMALLER_SAMPLES:
        if len(orjson.dumps(bounded)) <= CHANGE_BYTES:
            break
        bounded = _bounded(change, sample)
    return bounded


AUDIT_COLUMNS = (
    "a.project_id, a.id, a.entity_type, a.entity_id, a.action, a.actor, a.changes, a.created_at"
)


async def record_event(
    conn: asyncpg.Connection,
    project_id: int,
    *,
    entity_type: str,
    entity_id: int,
    action: str,
    actor: str,
    changes: list[dict[str, Any]],
) -> None:
    """Write an audit event; call it inside the transaction of the change it records. The
    one writer of audit events, so every event's changes are bounded here."""
    await conn.execute(
        """
        INSERT INTO audit_events (project_id, entity_type, entity_id, action, actor, changes)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        project_id,
        entity_type,
        entity_id,
        action,
        actor,
        [bounded_change(change) for change in changes],
    )


def _filtered(project_id: int, entity: tuple[str, int] | None) -> SqlBuilder:
    sql = SqlBuilder(project_id)
    sql.where("a.project_id = $1")
    if entity is not None:
        sql.where(
            f"a.entity_type = {sql.param(entity[0])} AND a.entity_id = {sql.param(entity[1])}"
        )
    return sql


def event_listing(project_id: int, entity: tuple[str, int] | None) -> Listing:
    return Listing("audit_events a", AUDIT_COLUMNS, partial(_filtered, project_id, entity))


async def events_by_id(
    conn: asyncpg.Connection, project_id: int, ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE a.project_id = $1 AND a.id = ANY($2)",
        project_id,
        ids,
    )
