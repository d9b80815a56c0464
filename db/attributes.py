"""Every SQL statement about the attribute catalogue (sql/0013) and declared attributes."""

from collections.abc import Mapping
from functools import partial
from typing import Any

import asyncpg

from db.audit import record_event
from db.pagination import Listing, SqlBuilder, contains_pattern

# One row per path a project's profiles hold or its editors declared: the path, its
# definition (null columns when only seen) and its JSON types with counts, as
# [[json_type, profiles], ...] in type order.
ATTRIBUTE_COLUMNS = """
    a.path,
    a.type,
    a.description,
    a.allowed_values,
    coalesce(
        (
            SELECT jsonb_agg(jsonb_build_array(c.json_type, c.profiles) ORDER BY c.json_type)
            FROM attribute_counts c
            WHERE c.project_id = a.project_id AND c.path = a.path
        ),
        '[]'
    ) AS types
"""

# "name alias", as Listing wants it.
_TABLE = """
    (
        SELECT k.project_id, k.path, d.type, d.description, d.allowed_values
        FROM (
            SELECT c.project_id, c.path FROM attribute_counts c
            UNION
            SELECT d.project_id, d.path FROM attribute_definitions d
        ) k
        LEFT JOIN attribute_definitions d ON d.project_id = k.project_id AND d.path = k.path
    ) a"""


def _filtered(project_id: int, search: str | None) -> SqlBuilder:
    sql = SqlBuilder(project_id)
    sql.where("a.project_id = $1")
    if search:
        sql.where(f"a.path ILIKE {sql.param(contains_pattern(search))}")
    return sql


def attribute_listing(project_id: int, search: str | None) -> Listing:
    """Paths ascending in code point order; `search` a case-insensitive substring."""
    return Listing(_TABLE, ATTRIBUTE_COLUMNS, partial(_filtered, project_id, search))


async def attribute(conn: asyncpg.Connection, project_id: int, path: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""
        SELECT {ATTRIBUTE_COLUMNS}
        FROM {_TABLE}
        WHERE a.project_id = $1 AND a.path = $2
        """,
        project_id,
        path,
    )


async def top_values(
    conn: asyncpg.Connection, project_id: int, paths: list[str], limit: int
) -> list[asyncpg.Record]:
    """The `limit` most frequent non-null values at each of `paths` over the project's
    stored profiles, most frequent first (ties in value order), as (path, value, profiles).
    One scan of the project's profiles for all paths, computed when asked; the statement
    timeout bounds it."""
    paths = [path for path in paths if path != "targetingKey"]
    if limit <= 0 or not paths:
        return []
    return await conn.fetch(
        """
        SELECT t.path, t.value, t.profiles
        FROM (
            SELECT v.path,
                   v.value,
                   count(*) AS profiles,
                   row_number() OVER (PARTITION BY v.path ORDER BY count(*) DESC, v.value) AS rank
            FROM profiles p
            CROSS JOIN LATERAL (
                SELECT w.path, p.context -> w.path AS value
                FROM unnest($2::text[]) AS w (path)
            ) v
            WHERE p.project_id = $1
              AND v.value IS NOT NULL
              AND jsonb_typeof(v.value) <> 'null'
            GROUP BY v.path, v.value
        ) t
        WHERE t.rank <= $3
        ORDER BY t.path, t.rank
        """,
        project_id,
        paths,
        limit,
    )


async def segments_naming(
    conn: asyncpg.Connection, project_id: int, paths: list[str]
) -> list[asyncpg.Record]:
    """How many live segments' rules (conditions, nested groups included) name each path:
    one statement for a page of paths, each count read from the rule_attributes index."""
    return await conn.fetch(
        """
        SELECT w.path,
               (
                   SELECT count(*)
                   FROM segments s
                   WHERE s.project_id = $1
                     AND s.deleted_at IS NULL
                     AND rule_attributes(s.rules) @> ARRAY[w.path]
               ) AS segments
        FROM unnest($2::text[]) AS w (path)
        """,
        project_id,
        list(paths),
    )


async def definitions(conn: asyncpg.Connection, project_id: int) -> dict[str, asyncpg.Record]:
    """Every declared attribute of the project, by path."""
    rows = await conn.fetch(
        """
        SELECT path, type, description, allowed_values
        FROM attribute_definitions
        WHERE project_id = $1
        """,
        project_id,
    )
    return {row["path"]: row for row in rows}


async def strict_definitions(
    conn: asyncpg.Connection, project_id: int
) -> dict[str, asyncpg.Record] | None:
    """The project's declared attributes by path when its strictAttributes is on; None when
    off. One statement either way."""
    rows = await conn.fetch(
        """
        SELECT d.path, d.type, d.description, d.allowed_values
        FROM project_settings s
        LEFT JOIN attribute_definitions d ON d.project_id = s.project_id
        WHERE s.project_id = $1 AND s.strict_attributes
        """,
        project_id,
    )
    if not rows:
        return None
    return {row["path"]: row for row in rows if row["path"] is not None}


# Paths read for the rule warnings; a catalogue beyond it is read in path order up to it.
KNOWN_PATHS_LIMIT = 10_000


async def known_types(conn: asyncpg.Connection, project_id: int) -> dict[str, set[str]]:
    """Every path stored profiles hold or the project declares, with the JSON types seen
    there or declared (what UNKNOWN_ATTRIBUTE and TYPE_MISMATCH warnings compare rules
    with): one statement, at most KNOWN_PATHS_LIMIT paths."""
    rows = await conn.fetch(
        """
        SELECT path, array_agg(DISTINCT json_type) AS types
        FROM (
            SELECT path, json_type FROM attribute_counts WHERE project_id = $1
          UNION ALL
            SELECT path, CASE type WHEN 'NUMBER' THEN 'number' WHEN 'BOOLEAN' THEN 'boolean'
                                   WHEN 'STRING_LIST' THEN 'array' ELSE 'string' END
            FROM attribute_definitions WHERE project_id = $1
        ) known
        GROUP BY path
        ORDER BY path
        LIMIT $2
        """,
        project_id,
        KNOWN_PATHS_LIMIT,
    )
    return {row["path"]: set(row["types"]) for row in rows}


_DEFINITION_FIELDS = {
    "type": "type",
    "description": "description",
    "allowed_values": "allowedValues",
}


async def define(
    conn: asyncpg.Connection, project_id: int, path: str, fields: dict[str, Any], *, actor: str
) -> None:
    """Declare or redeclare a path (`type`, `description`, `allowed_values`), audited."""
    before = await conn.fetchrow(
        """
        SELECT id, type, description, allowed_values
        FROM attribute_definitions
        WHERE project_id = $1 AND path = $2
        FOR UPDATE
        """,
        project_id,
        path,
    )
    definition_id = await conn.fetchval(
        """
        INSERT INTO attribute_definitions (project_id, path, type, description, allowed_values)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (project_id, path) DO UPDATE
        SET type = EXCLUDED.type,
            description = EXCLUDED.description,
            allowed_values = EXCLUDED.allowed_values,
            updated_at = now()
        RETURNING id
        """,
        project_id,
        path,
        fields["type"],
        fields["description"],
        fields["allowed_values"],
    )
    changes = [
        {"field": api_name, "before": before[column] if before else None, "after": fields[column]}
        for column, api_name in _DEFINITION_FIELDS.items()
        if before is None or before[column] != fields[column]
    ]
    if changes:
        action = "UPDATED" if before else "CREATED"
        await _audit(conn, project_id, definition_id, path, action, actor, changes)


async def remove_definition(
    conn: asyncpg.Connection, project_id: int, path: str, *, actor: str
) -> bool:
    """Forget a path's declaration, audited; False when it had none."""
    before = await conn.fetchrow(
        """
        DELETE FROM attribute_definitions
        WHERE project_id = $1 AND path = $2
        RETURNING id, type, description, allowed_values
        """,
        project_id,
        path,
    )
    if before is None:
        return False
    changes = [
        {"field": api_name, "before": before[column], "after": None}
        for column, api_name in _DEFINITION_FIELDS.items()
    ]
    await _audit(conn, project_id, before["id"], path, "DELETED", actor, changes)
    return True


async def _audit(
    conn: asyncpg.Connection,
    project_id: int,
    definition_id: int,
    path: str,
    action: str,
    actor: str,
    changes: list[dict[str, Any]],
) -> None:
    # The path is the definition's name; the event's changes carry it, unchanged.
    await record_event(
        conn,
        project_id,
        entity_type="attribute",
        entity_id=definition_id,
        action=action,
        actor=actor,
        changes=[{"field": "path", "before": path, "after": path}, *changes],
    )


async def defer_counts(conn: asyncpg.Connection) -> None:
    """Prepare an import's deferred catalogue deltas (sql/0013): the transaction's temporary
    table the triggers add to while `segments.deferred_count_project` is set."""
    await conn.execute(
        """
        CREATE TEMPORARY TABLE IF NOT EXISTS attribute_count_deltas (
            path       text COLLATE "C" NOT NULL,
            json_type  text NOT NULL,
            delta      bigint NOT NULL,
            PRIMARY KEY (path, json_type)
        ) ON COMMIT DELETE ROWS
        """
    )
    await conn.execute("TRUNCATE attribute_count_deltas")


async def add_import_paths(
    conn: asyncpg.Connection, project_id: int, paths: Mapping[tuple[str, str], int]
) -> None:
    """Add to an import's deferred deltas how many of the rows it wrote hold each (path, JSON
    type), as the import counted them from its rows (sql/0015: the triggers leave those to it)."""
    if not paths:
        return
    counted = sorted(paths.items())
    await conn.execute(
        "SELECT attribute_counts_apply($1::bigint[], $2::text[], $3::text[], $4::bigint[])",
        [project_id] * len(counted),
        [path for (path, _), _ in counted],
        [json_type for (_, json_type), _ in counted],
        [count for _, count in counted],
    )


async def add_deferred_counts(conn: asyncpg.Connection, project_id: int) -> None:
    """Add an import's deferred deltas to the catalogue in one statement (rows locked in path
    order, as the triggers lock them), after `segments.deferred_count_project` is cleared."""
    await conn.execute(
        """
        SELECT attribute_counts_apply(
            array_agg($1::bigint ORDER BY path, json_type),
            array_agg(path ORDER BY path, json_type),
            array_agg(json_type ORDER BY path, json_type),
            array_agg(delta ORDER BY path, json_type)
        )
        FROM pg_temp.attribute_count_deltas
        WHERE delta <> 0
        """,
        project_id,
    )
    await conn.execute("TRUNCATE attribute_count_deltas")


async def recount(conn: asyncpg.Connection, project_id: int) -> list[asyncpg.Record]:
    """The catalogue counted afresh from the project's stored profiles (a scan: for tests and
    tools), in the catalogue's order."""
    return await conn.fetch(
        """
        SELECT a.path, a.json_type, count(*) AS profiles
        FROM profiles p, attribute_paths(p.context) a
        WHERE p.project_id = $1
        GROUP BY 1, 2
        ORDER BY a.path COLLATE "C", a.json_type
        """,
        project_id,
    )


async def stored_counts(conn: asyncpg.Connection, project_id: int) -> list[asyncpg.Record]:
    """The catalogue as stored, in `recount`'s order."""
    return await conn.fetch(
        """
        SELECT path, json_type, profiles
        FROM attribute_counts
        WHERE project_id = $1
        ORDER BY 1, 2
        """,
        project_id,
    )
