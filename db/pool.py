"""The asyncpg pool the whole process shares, with JSON codecs and a statement counter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import orjson

T = TypeVar("T")


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection with the pool's codecs, for the CLI and maintenance work."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Connections come back clean: every transaction is closed by its context manager, and
    nothing on the request path takes advisory locks, LISTENs or SETs. asyncpg's default
    reset would cost a round trip on every release."""


class Database:
    """Owns the pool; counts the SQL statements sent so tests can pin per-request costs."""

    pool: asyncpg.Pool

    def __init__(self, acquire_timeout: float) -> None:
        self.acquire_timeout = acquire_timeout
        self.statements = 0

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        statement_timeout_ms: int = 5000,
        connect_timeout: float = 3.0,
    ) -> Database:
        db = cls(acquire_timeout=connect_timeout)

        async def init(conn: asyncpg.Connection) -> None:
            await _init_connection(conn)
            # asyncpg looks array types up on first use; do it now, not inside a request.
            await conn.fetchval("SELECT $1::text[], $2::bigint[]", [], [])
            conn.add_query_logger(db._count_statement)

        db.pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=init,
            reset=_no_reset,
            timeout=connect_timeout,
            command_timeout=statement_timeout_ms / 1000 + 1,
            server_settings={
                "statement_timeout": str(statement_timeout_ms),
                "idle_in_transaction_session_timeout": str(statement_timeout_ms * 4),
                "application_name": "segments",
                # A generic plan for `name ILIKE $1` cannot use the trigram index; plan
                # each execution with its values (cheap for these small statements).
                "plan_cache_mode": "force_custom_plan",
            },
        )
        return db

    def _count_statement(self, _record: object) -> None:
        self.statements += 1

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """The one way to run several statements atomically."""
        async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
            async with conn.transaction():
                yield conn

    async def run(self, query: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`query(conn, *args)` on a pooled connection: one of the `db` modules' functions."""
        async with self.connection() as conn:
            return await query(conn, *args)
