"""Project use cases of the operator (the command line): a project is created with its
default environments; its key and name are checked like every other key and name."""

import asyncpg

from db import projects as db_projects
from db.pool import Row
from rules import validate
from rules.problems import ProblemCode, Refused


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
