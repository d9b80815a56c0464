"""SQL about projects and their environments."""

from typing import Any

import asyncpg

from db.audit import record_event
from db.pool import returning

DEFAULT_ENVIRONMENTS = (("production", "Production"), ("staging", "Staging"))


class ProjectExists(Exception):
    pass


async def create_project(conn: asyncpg.Connection, key: str, name: str) -> asyncpg.Record:
    """Create a project with its default environments, in one transaction."""
    async with conn.transaction():
        try:
            project = await returning(
                conn,
                "INSERT INTO projects (key, name) VALUES ($1, $2) RETURNING id, key, name",
                key,
                name,
            )
        except asyncpg.UniqueViolationError:
            raise ProjectExists(key) from None
        await conn.executemany(
            "INSERT INTO environments (project_id, key, name) VALUES ($1, $2, $3)",
            [(project["id"], k, n) for k, n in DEFAULT_ENVIRONMENTS],
        )
    return project


async def project_by_key(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT id, key, name FROM projects WHERE key = $1", key)


async def list_projects(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, key, name, created_at FROM projects ORDER BY key")


async def only_project(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The project when the database holds exactly one (CLI commands default to it)."""
    rows = await conn.fetch("SELECT id, key, name FROM projects ORDER BY id LIMIT 2")
    return rows[0] if len(rows) == 1 else None


async def projects_by_id(conn: asyncpg.Connection, ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, key, name FROM projects WHERE id = ANY($1)", ids)


async def environments_of_projects(
    conn: asyncpg.Connection, project_ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT project_id, id, key, name
        FROM environments
        WHERE project_id = ANY($1)
        ORDER BY project_id, id
        """,
        project_ids,
    )


async def environments_by_id(
    conn: asyncpg.Connection, project_id: int, ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT project_id, id, key, name
        FROM environments
        WHERE project_id = $1 AND id = ANY($2)
        """,
        project_id,
        ids,
    )


async def environment_by_key(
    conn: asyncpg.Connection, project_id: int, key: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT project_id, id, key, name FROM environments WHERE project_id = $1 AND key = $2",
        project_id,
        key,
    )


async def create_environment(
    conn: asyncpg.Connection, project_id: int, key: str, name: str, *, actor: str
) -> asyncpg.Record | None:
    """Insert an environment; None when the key is taken in this project."""
    row = await conn.fetchrow(
        """
        INSERT INTO environments (project_id, key, name)
        VALUES ($1, $2, $3)
        ON CONFLICT (project_id, key) DO NOTHING
        RETURNING project_id, id, key, name
        """,
        project_id,
        key,
        name,
    )
    if row is not None:
        await record_event(
            conn,
            project_id,
            entity_type="environment",
            entity_id=row["id"],
            action="CREATED",
            actor=actor,
            changes=[{"field": f, "before": None, "after": row[f]} for f in ("key", "name")],
        )
    return row


# Project settings (DESIGN §14): stored column -> API name, and the value of a project
# without a settings row.
SETTINGS = {
    "require_approval": "requireApproval",
    "required_approvals": "requiredApprovals",
    "strict_attributes": "strictAttributes",
}
DEFAULT_SETTINGS = {"require_approval": False, "required_approvals": 1, "strict_attributes": False}


async def settings_of_projects(
    conn: asyncpg.Connection, project_ids: list[int]
) -> list[dict[str, Any]]:
    """Each project's settings, in the order asked, defaults where none are stored."""
    rows = await conn.fetch(
        """
        SELECT project_id, require_approval, required_approvals, strict_attributes
        FROM project_settings
        WHERE project_id = ANY($1)
        """,
        project_ids,
    )
    found = {row["project_id"]: row for row in rows}
    return [
        {column: found[pid][column] for column in SETTINGS} if pid in found else DEFAULT_SETTINGS
        for pid in project_ids
    ]


async def project_settings(conn: asyncpg.Connection, project_id: int) -> dict[str, Any]:
    return (await settings_of_projects(conn, [project_id]))[0]


async def update_settings(
    conn: asyncpg.Connection, project_id: int, changes: dict[str, Any], *, actor: str
) -> dict[str, Any]:
    """Apply the given settings (stored column names) and audit what changed; a change that
    changes nothing writes nothing. Concurrent updates of one project queue on its row."""
    await conn.execute(
        "INSERT INTO project_settings (project_id) VALUES ($1) ON CONFLICT DO NOTHING", project_id
    )
    before = await returning(
        conn,
        """
        SELECT require_approval, required_approvals, strict_attributes
        FROM project_settings
        WHERE project_id = $1
        FOR UPDATE
        """,
        project_id,
    )
    after = {**dict(before), **changes}
    diff = [
        {"field": api_name, "before": before[column], "after": after[column]}
        for column, api_name in SETTINGS.items()
        if before[column] != after[column]
    ]
    if diff:
        await conn.execute(
            """
            UPDATE project_settings
            SET require_approval = $2, required_approvals = $3, strict_attributes = $4,
                updated_at = now()
            WHERE project_id = $1
            """,
            project_id,
            *(after[column] for column in SETTINGS),
        )
        await record_event(
            conn,
            project_id,
            entity_type="project",
            entity_id=project_id,
            action="UPDATED",
            actor=actor,
            changes=diff,
        )
    return after
