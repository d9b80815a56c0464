"""Every SQL statement about flags and their per-environment targeting rules."""

import asyncpg

from db.pagination import (
    PageRequest,
    SqlBuilder,
    contains_pattern,
    exists_outside,
    keyset,
)

FLAG_COLUMNS = "f.project_id, f.id, f.key, f.name, f.description, f.archived_at"

RULE_COLUMNS = """
    tr.id, tr.flag_id, tr.environment_id, tr.order_index, tr.kind, tr.segment_id,
    tr.logical_op, tr.rules, tr.variation_key, tr.rollout_key
"""


def _filtered(project_id: int, search: str | None) -> SqlBuilder:
    sql = SqlBuilder(project_id)
    sql.where("f.project_id = $1")
    if search:
        pattern = sql.param(contains_pattern(search))
        sql.where(f"(f.name ILIKE {pattern} OR f.key ILIKE {pattern})")
    return sql


async def list_flags(
    conn: asyncpg.Connection, project_id: int, search: str | None, page: PageRequest
) -> list[asyncpg.Record]:
    sql = _filtered(project_id, search)
    tail = keyset(sql, "f", page)
    return await conn.fetch(
        f"SELECT {FLAG_COLUMNS} FROM flags f WHERE {sql.where_sql} {tail}", *sql.params
    )


async def count_flags(conn: asyncpg.Connection, project_id: int, search: str | None) -> int:
    sql = _filtered(project_id, search)
    return await conn.fetchval(f"SELECT count(*) FROM flags f WHERE {sql.where_sql}", *sql.params)


async def any_flag_outside_window(
    conn: asyncpg.Connection, project_id: int, search: str | None, page: PageRequest, before: bool
) -> bool:
    return await exists_outside(conn, "flags f", _filtered(project_id, search), page, before)


async def flags_by_id(
    conn: asyncpg.Connection, project_id: int, ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {FLAG_COLUMNS} FROM flags f WHERE f.project_id = $1 AND f.id = ANY($2)",
        project_id,
        ids,
    )


async def flag_by_key(conn: asyncpg.Connection, project_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {FLAG_COLUMNS} FROM flags f WHERE f.project_id = $1 AND f.key = $2",
        project_id,
        key,
    )


async def rules_of_flags(
    conn: asyncpg.Connection, project_id: int, keys: list[tuple[int, str]]
) -> list[asyncpg.Record]:
    """Targeting rules for (flag id, environment key) pairs, in order."""
    return await conn.fetch(
        f"""
        SELECT {RULE_COLUMNS}, e.key AS environment_key
        FROM targeting_rules tr
        JOIN environments e ON e.project_id = tr.project_id AND e.id = tr.environment_id
        JOIN unnest($2::bigint[], $3::text[]) AS k (flag_id, environment_key)
          ON k.flag_id = tr.flag_id AND k.environment_key = e.key
        WHERE tr.project_id = $1
        ORDER BY tr.flag_id, e.key, tr.order_index
        """,
        project_id,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
