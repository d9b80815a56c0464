"""The asyncpg pool the whole process shares, with JSON codecs and a statement counter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import orjson

T = TypeVar("T")
# A row as every `db` function returns it (asyncpg's Record reads like a read-only mapping).
Row = asyncpg.Record


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


async def returning(conn: asyncpg.Connection, query: str, *args: Any) -> Row:
    """The row of an INSERT/UPDATE ... RETURNING that always writes one."""
    row = await conn.fetchrow(query, *args)
    assert row is not None, "a RETURNING statement wrote no row"
    return row


async def connect(dsn: str) -> asyncpg.Connection:
    """A single connection with the pool's codecs, for the CLI and maintenance work."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


class PoolBusy(Exception):
    """Every pooled connection stayed in use for the whole acquire timeout: the database is
    fine, this process is saturated; the client should retry shortly."""


# Ends whatever an interrupted use may have left open, whatever asyncpg believes: a
# transaction (ROLLBACK outside one is only a warning), cursors, session settings, locks.
_FULL_RESET = "ROLLBACK; CLOSE ALL; RESET ALL; SELECT pg_advisory_unlock_all(); UNLISTEN *"


class Database:
    """Owns the pool; counts the SQL statements sent so tests can pin per-request costs.

    A connection goes back to the pool as it came unless its use was cut short (an
    exception or a cancellation while it was held, or `interrupted()`): then it is reset
    with one statement before anyone else gets it, and if that fails it is closed. A clean
    release costs no round trip.

    Member work (counts and pages that may stream through the evaluator) holds at most
    `member_connections` of the pool at once, so slow member queries cannot starve the
    light queries of other clients.
    """

    pool: asyncpg.Pool

    def __init__(self, acquire_timeout: float, member_connections: int = 1) -> None:
        self.acquire_timeout = acquire_timeout
        self.statements = 0
        # Backend pids of held connections whose use was cut short (reset on release).
        self._interrupted: set[int] = set()
        self._member_slots = asyncio.Semaphore(max(1, member_connections))

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        statement_timeout_ms: int = 5000,
        connect_timeout: float = 3.0,
        member_connections: int | None = None,
    ) -> Database:
        if member_connections is None:
            member_connections = max(1, max_size // 2)
        db = cls(acquire_timeout=connect_timeout, member_connections=member_connections)

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
            reset=db._reset_if_interrupted,
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

    def interrupted(self, conn: asyncpg.Connection) -> None:
        """Mark a held connection whose statement was cancelled (a timeout around it): it
        is reset before it is used by anyone else."""
        self._interrupted.add(conn.get_server_pid())

    async def _reset_if_interrupted(self, conn: asyncpg.Connection) -> None:
        pid = conn.get_server_pid()
        if pid in self._interrupted:
            self._interrupted.discard(pid)
            # A failure here (say a late cancel request landing on this statement) makes
            # asyncpg close the connection instead of pooling it.
            await conn.execute(_FULL_RESET)

    @property
    def saturated(self) -> bool:
        return self.pool.get_size() >= self.pool.get_max_size() and self.pool.get_idle_size() == 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, waiting at most the acquire timeout; PoolBusy when every
        connection stayed in use meanwhile."""
        try:
            # A pool proxy stands in for the connection it wraps.
            conn: Any = await self.pool.acquire(timeout=self.acquire_timeout)
        except TimeoutError:
            if self.saturated:
                raise PoolBusy from None
            raise  # connecting timed out: the database is unreachable
        try:
            yield conn
        except BaseException:
            self.interrupted(conn)
            raise
        finally:
            await self.pool.release(conn)

    @asynccontextmanager
    async def member_connection(self, deadline: float | None) -> AsyncIterator[asyncpg.Connection]:
        """A connection for member work, waiting for a member slot until `deadline`
        (a time.monotonic() value) at most; PoolBusy when none frees up in time."""
        wait = self.acquire_timeout
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - time.monotonic()))
        try:
            async with asyncio.timeout(wait):
                await self._member_slots.acquire()
        except TimeoutError:
            raise PoolBusy from None
        try:
            async with self.connection() as conn:
                yield conn
        finally:
            self._member_slots.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """The one way to run several statements atomically."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def run(self, query: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`query(conn, *args)` on a pooled connection: one of the `db` modules' functions."""
        async with self.connection() as conn:
            return await query(conn, *args)
