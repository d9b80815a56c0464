"""Every SQL statement about segments: listing, lookups, usage, and writes."""

from dataclasses import dataclass

import asyncpg

from db.pagination import (
    PageRequest,
    SqlBuilder,
    contains_pattern,
    exists_outside,
    keyset,
)

SEGMENT_COLUMNS = """
    s.project_id, s.id, s.key, s.name, s.description, s.tags, s.logical_op, s.rules,
    s.force, s.included, s.excluded, s.version, s.created_at, s.updated_at, s.deleted_at
"""

ORDER_COLUMNS = {
    "NAME": "name",
    "KEY": "key",
    "CREATED_AT": "created_at",
    "UPDATED_AT": "updated_at",
}

# A flag's rule is "usage" only while the flag is not archived (DESIGN §5).
_LIVE_USAGE = """
    EXISTS (
        SELECT 1
        FROM targeting_rules tr
        JOIN flags f ON f.project_id = tr.project_id AND f.id = tr.flag_id
        WHERE tr.project_id = s.project_id
          AND tr.segment_id = s.id
          AND f.archived_at IS NULL
    )
"""


@dataclass(frozen=True)
class SegmentFilter:
    search: str | None = None
    tags: list[str] | None = None
    in_use: bool | None = None
    include_deleted: bool = False


def _filtered(project_id: int, flt: SegmentFilter) -> SqlBuilder:
    sql = SqlBuilder(project_id)
    sql.where("s.project_id = $1")
    if not flt.include_deleted:
        sql.where("s.deleted_at IS NULL")
    if flt.search:
        pattern = sql.param(contains_pattern(flt.search))
        sql.where(f"(s.name ILIKE {pattern} OR s.key ILIKE {pattern})")
    if flt.tags is not None:
        sql.where(f"s.tags && {sql.param(flt.tags)}::text[]")
    if flt.in_use is not None:
        sql.where(_LIVE_USAGE if flt.in_use else f"NOT {_LIVE_USAGE}")
    return sql


async def list_segments(
    conn: asyncpg.Connection, project_id: int, flt: SegmentFilter, page: PageRequest
) -> list[asyncpg.Record]:
    """One page of segments in the requested order (rows of a `from_end` page come reversed)."""
    sql = _filtered(project_id, flt)
    tail = keyset(sql, "s", page)
    return await conn.fetch(
        f"SELECT {SEGMENT_COLUMNS} FROM segments s WHERE {sql.where_sql} {tail}", *sql.params
    )


async def count_segments(conn: asyncpg.Connection, project_id: int, flt: SegmentFilter) -> int:
    sql = _filtered(project_id, flt)
    return await conn.fetchval(f"SELECT count(*) FROM segments s WHERE {sql.where_sql}", *sql.params)


async def any_outside_window(
    conn: asyncpg.Connection, project_id: int, flt: SegmentFilter, page: PageRequest, before: bool
) -> bool:
    return await exists_outside(conn, "segments s", _filtered(project_id, flt), page, before)


async def segments_by_id(
    conn: asyncpg.Connection, project_id: int, ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {SEGMENT_COLUMNS} FROM segments s WHERE s.project_id = $1 AND s.id = ANY($2)",
        project_id,
        ids,
    )


async def segment_by_key(
    conn: asyncpg.Connection, project_id: int, key: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""
        SELECT {SEGMENT_COLUMNS}
        FROM segments s
        WHERE s.project_id = $1 AND s.key = $2 AND s.deleted_at IS NULL
        """,
        project_id,
        key,
    )


async def usage_of_segments(
    conn: asyncpg.Connection, project_id: int, segment_ids: list[int]
) -> list[asyncpg.Record]:
    """(segment, flag, environment, rule count) for live flags, with the flag and environment."""
    return await conn.fetch(
        """
        SELECT tr.segment_id, count(*)::int AS rule_count,
               f.id AS flag_id, f.key AS flag_key, f.name AS flag_name,
               f.description AS flag_description, f.archived_at AS flag_archived_at,
               e.id AS environment_id, e.key AS environment_key, e.name AS environment_name
        FROM targeting_rules tr
        JOIN flags f ON f.project_id = tr.project_id AND f.id = tr.flag_id
        JOIN environments e ON e.project_id = tr.project_id AND e.id = tr.environment_id
        WHERE tr.project_id = $1
          AND tr.segment_id = ANY($2)
          AND f.archived_at IS NULL
        GROUP BY tr.segment_id, f.project_id, f.id, e.project_id, e.id
        ORDER BY tr.segment_id, f.key, e.key
        """,
        project_id,
        segment_ids,
    )
