"""The asyncpg pools the whole process shares (the primary's, and its replicas' if any), with
JSON codecs, a statement counter, and the rule of which server a use of the database reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import orjson

from db.replicas import REPLICA_LOST, Replica, ReplicaPolicy, Replicas

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


async def connect(dsn: str, server_settings: dict[str, str] | None = None) -> asyncpg.Connection:
    """A single connection with the pool's codecs, for the CLI and maintenance work."""
    conn = await asyncpg.connect(dsn, server_settings=server_settings)
    await _init_connection(conn)
    return conn


class PoolBusy(Exception):
    """Every pooled connection stayed in use for the whole acquire timeout: the database is
    fine, this process is saturated; the client should retry shortly."""


# Ends whatever an interrupted use may have left open, whatever asyncpg believes: a
# transaction (ROLLBACK outside one is only a warning), cursors, session settings, locks.
_FULL_RESET = "ROLLBACK; CLOSE ALL; RESET ALL; SELECT pg_advisory_unlock_all(); UNLISTEN *"


class Server:
    """One pool to one PostgreSQL server; counts the SQL statements sent through it.

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
        # Backend pids of held connections, and of those whose use was cut short (reset on
        # release).
        self._held: set[int] = set()
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
    ) -> Server:
        if member_connections is None:
            member_connections = max(1, max_size // 2)
        server = cls(acquire_timeout=connect_timeout, member_connections=member_connections)

        async def init(conn: asyncpg.Connection) -> None:
            await _init_connection(conn)
            # asyncpg looks array types up on first use; do it now, not inside a request.
            await conn.fetchval("SELECT $1::text[], $2::bigint[]", [], [])
            conn.add_query_logger(server._count_statement)

        server.pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=init,
            reset=server._reset_if_interrupted,
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
        return server

    def _count_statement(self, _record: object) -> None:
        self.statements += 1

    async def close(self) -> None:
        await self.pool.close()

    def holds(self, conn: asyncpg.Connection) -> bool:
        return conn.get_server_pid() in self._held

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
        pid = conn.get_server_pid()
        self._held.add(pid)
        try:
            yield conn
        except BaseException:
            self.interrupted(conn)
            raise
        finally:
            self._held.discard(pid)
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


@dataclass
class _Request:
    """What one request's reads must see: `after`, the WAL position its client last wrote
    (the x-segments-lsn header); `primary` once its reads must all go to the primary (a
    mutation, a write in the request, or no replica caught up in time)."""

    after: int | None = None
    primary: bool = False
    written: int | None = None


class Database:
    """The primary, and the streaming replicas that reads may go to; what the core, the
    loaders and the resolvers get.

    Writes, and every read inside a transaction, use the primary (`transaction()`,
    `connection()`). Reads that stand alone (`run()`, and member work through
    `member_run()`) go to a healthy replica in turn when there is one, and are retried on
    the primary if that replica fails them. Without replicas everything is the primary.

    The process-wide instance serves no request; `for_request()` gives each request its own
    view with its read-your-writes state.
    """

    def __init__(
        self, primary: Server, replicas: Replicas | None = None, request: _Request | None = None
    ) -> None:
        self.primary = primary
        self.replicas = replicas
        self._request = request

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
        replica_dsns: Sequence[str] = (),
        replica_policy: ReplicaPolicy | None = None,
    ) -> Database:
        def server(target: str, smallest: int) -> Awaitable[Server]:
            return Server.connect(
                target,
                min_size=smallest,
                max_size=max_size,
                statement_timeout_ms=statement_timeout_ms,
                connect_timeout=connect_timeout,
                member_connections=member_connections,
            )

        primary = await server(dsn, min_size)
        if not replica_dsns:
            return cls(primary)
        policy = replica_policy or ReplicaPolicy(connect_timeout_s=connect_timeout)
        # No connection is opened up front: a replica that is down at start-up only stays out
        # of rotation until it is up.
        standbys = [Replica(await server(target, 0), target, policy) for target in replica_dsns]
        replicas = Replicas(dsn, standbys, policy)
        await replicas.start()
        return cls(primary, replicas)

    def for_request(self, after: int | None = None, *, primary: bool = False) -> Database:
        """A view for one request: its reads see the write at WAL position `after` (or read
        the primary), and all of them go to the primary with `primary`."""
        return Database(self.primary, self.replicas, _Request(after, primary))

    @property
    def servers(self) -> list[Server]:
        replicas = [] if self.replicas is None else [r.server for r in self.replicas.all]
        return [self.primary, *replicas]

    @property
    def pool(self) -> asyncpg.Pool:
        """The primary's pool."""
        return self.primary.pool

    @property
    def statements(self) -> int:
        """SQL statements sent to every server so far."""
        return sum(server.statements for server in self.servers)

    @property
    def acquire_timeout(self) -> float:
        return self.primary.acquire_timeout

    @property
    def saturated(self) -> bool:
        return self.primary.saturated

    @property
    def written_lsn(self) -> int | None:
        """The primary's WAL position after this request's last commit, when there are
        replicas to read it back from: what the x-segments-lsn header carries."""
        return None if self._request is None else self._request.written

    async def close(self) -> None:
        if self.replicas is not None:
            await self.replicas.close()
        await self.primary.close()

    def interrupted(self, conn: asyncpg.Connection) -> None:
        """Mark a held connection whose statement was cancelled: reset before reuse."""
        for server in self.servers:
            if server.holds(conn):
                server.interrupted(conn)

    def connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A connection to the primary: for what must be current (tokens) or writes."""
        return self.primary.connection()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """The one way to run several statements atomically; on the primary."""
        async with self.primary.connection() as conn:
            async with conn.transaction():
                yield conn
            request = self._request
            if request is not None and self.replicas is not None:
                # The insert position covers this commit's record, whatever synchronous_commit.
                request.written = await conn.fetchval("SELECT pg_current_wal_insert_lsn()")
                request.primary = True  # the rest of the request reads its own write

    async def run(self, query: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`query(conn, *args)`, a read of one of the `db` modules: on a replica when one
        can serve this request, else (or when the replica fails it) on the primary."""
        replica = await self._replica()
        if replica is not None:
            try:
                async with replica.server.connection() as conn:
                    return await query(conn, *args)
            except REPLICA_LOST as error:
                await replica.lost(error)
        async with self.primary.connection() as conn:
            return await query(conn, *args)

    async def member_run(
        self, deadline: float | None, work: Callable[[asyncpg.Connection], Awaitable[T]]
    ) -> T:
        """`work(conn)` on a member connection (Server.member_connection), preferably a
        replica's: member counts and pages are the heaviest reads there are."""
        replica = await self._replica()
        if replica is not None:
            try:
                async with replica.server.member_connection(deadline) as conn:
                    return await work(conn)
            except REPLICA_LOST as error:
                await replica.lost(error)
        async with self.primary.member_connection(deadline) as conn:
            return await work(conn)

    async def _replica(self) -> Replica | None:
        request = self._request
        if self.replicas is None or (request is not None and request.primary):
            return None
        after = None if request is None else request.after
        replica = await self.replicas.choose(after)
        if replica is None and request is not None and after is not None:
            request.primary = True  # no replica caught up in time: do not wait again
        return replica

    def report(self) -> list[dict[str, object]] | None:
        """Each replica's state and lag, for /health/ready; None without replicas."""
        return None if self.replicas is None else self.replicas.report()
