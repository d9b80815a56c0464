"""Project use cases: the operator creates a project (the command line) with its default
environments, its key and name checked like every other key and name; an admin key changes
its settings."""

from typing import Any

import asyncpg

from core.access import project_id_for, project_problems, require_admin
from db import projects as db_projects
from db.api_keys import Principal
from db.pool import Database, Row
from rules import validate
from rules.problems import Problem, ProblemCode, Refused

MAX_REQUIRED_APPROVALS = 5


async def create_project(conn: asyncpg.Connection, key: str, name: str | None) -> Row | Refused:
    """A new project (name defaults to the key) with the production and staging
    environments; problem paths name the command's arguments ("key", "name")."""
    name = name or key
    problems = validate.validate_key(key, ("key",)) + validate.validate_name(name, ("name",))
    if problems:
        return Refused(problems)
    try:
        return await db_projects.create_project(conn, key, validate.normalize_name(name))
    except db_projects.ProjectExists:
        return Refused.one(
            ProblemCode.KEY_TAKEN, f"a project with key {key!r} exists already", ("key",)
        )


def _settings_problems(fields: dict[str, Any]) -> list[Problem]:
    problems = []
    for column, api_name in db_projects.SETTINGS.items():
        if column not in fields:
            continue
        value = fields[column]
        if column == "required_approvals":
            if type(value) is not int or not 1 <= value <= MAX_REQUIRED_APPROVALS:
                problems.append(
                    Problem(
                        ("input", api_name),
                        ProblemCode.INVALID_INPUT,
                        f"{api_name} must be a whole number from 1 to {MAX_REQUIRED_APPROVALS}",
                    )
                )
        elif type(value) is not bool:
            problems.append(
                Problem(
                    ("input", api_name),
                    ProblemCode.INVALID_INPUT,
                    f"{api_name} must be true or false",
                )
            )
    return problems


async def update_settings(
    db: Database, principal: Principal, project_key: str, fields: dict[str, Any]
) -> dict[str, Any] | Refused:
    """Change the given settings (stored names; absent ones keep their value); admins only.
    Returns the settings after the change."""
    require_admin(principal)
    project_id = project_id_for(principal, project_key)
    problems = project_problems(project_id) + _settings_problems(fields)
    if problems or project_id is None:
        return Refused(problems)
    async with db.transaction() as conn:
        return await db_projects.update_settings(conn, project_id, fields, actor=principal.name)
