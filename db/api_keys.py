"""SQL about API keys: only a sha256 of each token is stored."""

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

TOKEN_PREFIX = "seg_"
# viewer: reads; editor: reads and writes; admin: an editor who may also change the
# project's settings and write past its approval gate (DESIGN §14).
ROLES = ("viewer", "editor", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's project, role and key name (the audit actor)."""

    project_id: int
    project_key: str
    role: str
    name: str

    @property
    def can_write(self) -> bool:
        return self.role in ("editor", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_api_key(conn: asyncpg.Connection, project_id: int, role: str, name: str) -> str:
    """Create a key and return its token, which is never stored and cannot be shown again."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_keys (project_id, name, role, token_hash) VALUES ($1, $2, $3, $4)",
        project_id,
        name,
        role,
        hash_token(token),
    )
    return token


async def principal_for_token(conn: asyncpg.Connection, token: str) -> Principal | None:
    digest = hash_token(token)
    row = await conn.fetchrow(
        """
        SELECT k.project_id, p.key AS project_key, k.role, k.name, k.token_hash
        FROM api_keys k
        JOIN projects p ON p.id = k.project_id
        WHERE k.token_hash = $1 AND k.revoked_at IS NULL
        """,
        digest,
    )
    # The index finds the row; compare_digest keeps the final check constant-time.
    if row is None or not hmac.compare_digest(row["token_hash"], digest):
        return None
    return Principal(
        project_id=row["project_id"],
        project_key=row["project_key"],
        role=row["role"],
        name=row["name"],
    )


async def revoke_api_key(conn: asyncpg.Connection, token: str) -> bool:
    status = await conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    return status.endswith(" 1")


async def list_api_keys(conn: asyncpg.Connection, project_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """
        SELECT id, name, role, created_at, revoked_at
        FROM api_keys
        WHERE project_id = $1
        ORDER BY id
        """,
        project_id,
    )


async def revoke_api_key_by_id(conn: asyncpg.Connection, project_id: int, key_id: int) -> bool:
    status = await conn.execute(
        """
        UPDATE api_keys SET revoked_at = now()
        WHERE project_id = $1 AND id = $2 AND revoked_at IS NULL
        """,
        project_id,
        key_id,
    )
    return status.endswith(" 1")


CHANGE_CHANNEL = "api_key_changed"  # sql/0003: the token hash of every changed key


async def listen_for_changes(
    dsn: str, on_change: Callable[[str], None], on_lost: Callable[[], None], timeout: float
) -> asyncpg.Connection:
    """A dedicated connection that calls `on_change(token_hash)` for every changed key and
    `on_lost()` if the connection drops."""
    conn = await asyncpg.connect(dsn, timeout=timeout)
    try:
        await conn.add_listener(
            CHANGE_CHANNEL, lambda _c, _pid, _channel, payload: on_change(payload)
        )
    except BaseException:
        conn.terminate()
        raise
    conn.add_termination_listener(lambda _c: on_lost())
    return conn
