"""Demo data: the example segments and flags of the product docs."""

import asyncpg


async def seed_demo(conn: asyncpg.Connection, project_key: str) -> str | None:
    return None


async def seed_demo_if_empty(conn: asyncpg.Connection) -> str | None:
    return None
