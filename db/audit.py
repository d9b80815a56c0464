"""Every SQL statement about the audit log."""

from typing import Any

import asyncpg

from db.pagination import PageRequest, SqlBuilder, exists_outside, keyset

AUDIT_COLUMNS = "a.project_id, a.id, a.entity_type, a.entity_id, a.action, a.actor, a.changes, a.created_at"


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
    """Write an audit event; call it inside the transaction of the change it records."""
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
        changes,
    )


def _filtered(project_id: int, entity: tuple[str, int] | None) -> SqlBuilder:
    sql = SqlBuilder(project_id)
    sql.where("a.project_id = $1")
    if entity is not None:
        sql.where(f"a.entity_type = {sql.param(entity[0])} AND a.entity_id = {sql.param(entity[1])}")
    return sql


async def list_events(
    conn: asyncpg.Connection, project_id: int, entity: tuple[str, int] | None, page: PageRequest
) -> list[asyncpg.Record]:
    """Newest first (page.descending on id); `entity` narrows to one object's history."""
    sql = _filtered(project_id, entity)
    tail = keyset(sql, "a", page)
    return await conn.fetch(
        f"SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE {sql.where_sql} {tail}", *sql.params
    )


async def count_events(
    conn: asyncpg.Connection, project_id: int, entity: tuple[str, int] | None
) -> int:
    sql = _filtered(project_id, entity)
    return await conn.fetchval(
        f"SELECT count(*) FROM audit_events a WHERE {sql.where_sql}", *sql.params
    )


async def any_event_outside(
    conn: asyncpg.Connection,
    project_id: int,
    entity: tuple[str, int] | None,
    page: PageRequest,
    before: bool,
) -> bool:
    sql = _filtered(project_id, entity)
    return await exists_outside(conn, "audit_events a", sql, page, before)


async def events_by_id(
    conn: asyncpg.Connection, project_id: int, ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE a.project_id = $1 AND a.id = ANY($2)",
        project_id,
        ids,
    )
