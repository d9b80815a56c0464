"""Every SQL statement about flags and their per-environment targeting rules."""

from functools import partial
from typing import Any

import asyncpg

from db.audit import record_event
from db.pagination import Listing, SqlBuilder, contains_pattern
from rules.models import referenced_ids

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


def flag_listing(project_id: int, search: str | None) -> Listing:
    return Listing("flags f", FLAG_COLUMNS, partial(_filtered, project_id, search))


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


async def create_flag(
    conn: asyncpg.Connection,
    project_id: int,
    key: str,
    name: str,
    description: str | None,
    *,
    actor: str,
) -> asyncpg.Record | None:
    """Insert a flag; None when the key is taken in this project."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO flags AS f (project_id, key, name, description)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (project_id, key) DO NOTHING
        RETURNING {FLAG_COLUMNS}
        """,
        project_id,
        key,
        name,
        description,
    )
    if row is not None:
        changes = [
            {"field": field, "before": None, "after": row[field]}
            for field in ("key", "name", "description")
        ]
        await record_event(
            conn,
            project_id,
            entity_type="flag",
            entity_id=row["id"],
            action="CREATED",
            actor=actor,
            changes=changes,
        )
    return row


async def lock_flag(
    conn: asyncpg.Connection, project_id: int, flag_id: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {FLAG_COLUMNS} FROM flags f WHERE f.project_id = $1 AND f.id = $2 FOR UPDATE",
        project_id,
        flag_id,
    )


def _rule_summary(row: Any) -> dict[str, Any]:
    return {
        "kind": row["kind"],
        "segmentId": row["segment_id"],
        "logicalOp": row["logical_op"],
        "rules": row["rules"],
        "variationKey": row["variation_key"],
        "rolloutKey": row["rollout_key"],
    }


async def replace_rules(
    conn: asyncpg.Connection,
    project_id: int,
    flag_id: int,
    environment: asyncpg.Record,
    rules: list[dict[str, Any]],
    *,
    actor: str,
) -> None:
    """Replace the flag's rules in one environment; order_index is the list position.
    Call with the flag row locked and the referenced segments (SEGMENT rules' and CUSTOM
    rules' SegmentMatches) share-locked."""
    before = await conn.fetch(
        f"""
        SELECT {RULE_COLUMNS} FROM targeting_rules tr
        WHERE tr.project_id = $1 AND tr.flag_id = $2 AND tr.environment_id = $3
        ORDER BY tr.order_index
        """,
        project_id,
        flag_id,
        environment["id"],
    )
    await conn.execute(
        "DELETE FROM targeting_rules WHERE project_id = $1 AND flag_id = $2 AND environment_id = $3",
        project_id,
        flag_id,
        environment["id"],
    )
    await conn.executemany(
        """
        INSERT INTO targeting_rules (project_id, flag_id, environment_id, order_index, kind,
                                     segment_id, logical_op, rules, variation_key, rollout_key)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        """,
        [
            (
                project_id,
                flag_id,
                environment["id"],
                index,
                rule["kind"],
                rule["segment_id"],
                rule["logical_op"],
                rule["rules"],
                rule["variation_key"],
                rule["rollout_key"],
            )
            for index, rule in enumerate(rules)
        ],
    )
    references = [
        (index, referenced)
        for index, rule in enumerate(rules)
        if rule["kind"] == "CUSTOM"
        for referenced in sorted(set(referenced_ids(rule["rules"])))
    ]
    if references:
        # The CUSTOM rules' SegmentMatches, so they count as usage (sql/0007).
        await conn.execute(
            """
            INSERT INTO targeting_rule_references (project_id, rule_id, referenced_id)
            SELECT tr.project_id, tr.id, ref.referenced_id
            FROM targeting_rules tr
            JOIN unnest($4::int[], $5::bigint[]) AS ref (order_index, referenced_id)
              ON ref.order_index = tr.order_index
            WHERE tr.project_id = $1 AND tr.flag_id = $2 AND tr.environment_id = $3
            """,
            project_id,
            flag_id,
            environment["id"],
            [index for index, _ in references],
            [referenced for _, referenced in references],
        )
    old = [_rule_summary(r) for r in before]
    new = [_rule_summary(r) for r in rules]
    if old != new:
        await record_event(
            conn,
            project_id,
            entity_type="flag",
            entity_id=flag_id,
            action="UPDATED",
            actor=actor,
            changes=[
                {"field": f"targetingRules.{environment['key']}", "before": old, "after": new}
            ],
        )


async def archive_flag(
    conn: asyncpg.Connection, project_id: int, flag_id: int, *, actor: str
) -> asyncpg.Record | None:
    """Archive the flag (a no-op when it already is); None when it does not exist."""
    row = await lock_flag(conn, project_id, flag_id)
    if row is None or row["archived_at"] is not None:
        return row
    archived = await conn.fetchrow(
        f"""
        UPDATE flags AS f SET archived_at = now()
        WHERE f.project_id = $1 AND f.id = $2
        RETURNING {FLAG_COLUMNS}
        """,
        project_id,
        flag_id,
    )
    await record_event(
        conn,
        project_id,
        entity_type="flag",
        entity_id=flag_id,
        action="UPDATED",
        actor=actor,
        changes=[{"field": "archived", "before": False, "after": True}],
    )
    return archived
