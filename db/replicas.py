"""Streaming replicas that reads may go to: their health, their lag, and which one to read.

A background monitor measures each replica against the primary every `check_s`: the
primary's WAL position is sampled, and a replica's lag is how long ago the primary first
held WAL the replica has not replayed yet (0 when it has replayed everything the primary
wrote). Comparing positions, not `pg_last_xact_replay_timestamp()`, keeps an idle primary
from looking like a lagging replica. A replica that cannot be reached, is no longer in
recovery, or lags more than `max_lag_s` is out of rotation until a later check finds it fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import asyncpg

if TYPE_CHECKING:
    from db.pool import Server

log = logging.getLogger("segments.replicas")

# What a read on a replica raises when the replica is gone or restarting, or when recovery
# on the standby cancelled it (a conflict with replay): the read is retried on the primary.
# A statement timeout (QueryCanceledError) is not among them: the read would be as slow there.
REPLICA_LOST: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.SerializationError,
)

_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")


def parse_lsn(text: str) -> int | None:
    """A WAL position as PostgreSQL writes it ("16/B374D848"), or None if it is not one."""
    match = _LSN.fullmatch(text.strip())
    if match is None:
        return None
    return int(match[1], 16) << 32 | int(match[2], 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def server_name(dsn: str) -> str:
    """host:port/database of a DSN, without its user or password (for logs and /health)."""
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    return f"{host}:{port}{parts.path or '/'}"


@dataclass(frozen=True)
class ReplicaPolicy:
    max_lag_s: float = 5.0
    # How long a read that must see a given write waits for a replica to replay it.
    wait_s: float = 0.25
    check_s: float = 1.0
    connect_timeout_s: float = 3.0


class _Probe:
    """A dedicated connection (outside the pools, so it is never counted as a request's
    statement) that asks one server one question; reconnects after a failure."""

    def __init__(self, dsn: str, query: str, timeout: float) -> None:
        self.dsn = dsn
        self.query = query
        self.timeout = timeout
        self._conn: asyncpg.Connection | None = None

    async def ask(self) -> asyncpg.Record:
        try:
            async with asyncio.timeout(self.timeout):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(
                        self.dsn, server_settings={"application_name": "segments-monitor"}
                    )
                row = await self._conn.fetchrow(self.query)
        except BaseException:
            await self.close()
            raise
        assert row is not None
        return row

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()


class Replica:
    """One standby: its pool, and what the last check found."""

    def __init__(self, server: Server, dsn: str, policy: ReplicaPolicy) -> None:
        self.server = server
        self.name = server_name(dsn)
        self.healthy = False
        self.status = "down"  # ok, lagging or down
        self.lag_s: float | None = None
        self.replay_lsn = 0
        self._probe = _Probe(
            dsn,
            "SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn() AS replayed",
            policy.connect_timeout_s,
        )
        self._probing: asyncio.Future[bool] | None = None

    async def refresh(self) -> bool:
        """Read the replay position now; False when the replica cannot say. Concurrent
        callers share one probe."""
        if self._probing is None:
            self._probing = asyncio.ensure_future(self._refresh())
            self._probing.add_done_callback(self._probed)
        return await asyncio.shield(self._probing)

    def _probed(self, _future: asyncio.Future[bool]) -> None:
        self._probing = None

    async def _refresh(self) -> bool:
        try:
            row = await self._probe.ask()
        except Exception as error:  # noqa: BLE001 - any failure takes it out of rotation
            await self.lost(error)
            return False
        if not row["standby"] or row["replayed"] is None:
            await self.lost("no longer a standby in recovery")
            return False
        self.replay_lsn = max(self.replay_lsn, row["replayed"])
        return True

    async def reaches(self, lsn: int, deadline: float) -> bool:
        """Whether the replica replays `lsn` before `deadline` (a time.monotonic() value)."""
        while self.replay_lsn < lsn:
            if time.monotonic() >= deadline or not await self.refresh():
                return False
            if self.replay_lsn < lsn:
                await asyncio.sleep(min(0.005, max(0.0, deadline - time.monotonic())))
        return True

    def judge(self, lag_s: float, max_lag_s: float) -> None:
        was = self.status
        self.lag_s = lag_s
        self.healthy = lag_s <= max_lag_s
        self.status = "ok" if self.healthy else "lagging"
        if self.status != was:
            level = logging.INFO if self.healthy else logging.WARNING
            log.log(level, "replica %s is %s (lag %.1f s)", self.name, self.status, lag_s)

    async def lost(self, reason: object) -> None:
        """Out of rotation until a check finds it fine; its pooled connections are replaced."""
        if self.status != "down":
            log.warning("replica %s is down: %s", self.name, reason)
        self.healthy = False
        self.status = "down"
        self.lag_s = None
        await self.server.pool.expire_connections()

    async def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(BaseException):
                await self._probing
        await self._probe.close()
        await self.server.close()


class Replicas:
    """The replicas of one primary, in rotation, and the monitor that keeps them honest."""

    def __init__(self, primary_dsn: str, replicas: Sequence[Replica], policy: ReplicaPolicy):
        self.all = list(replicas)
        self.policy = policy
        self._turn = itertools.count()
        self._primary = _Probe(
            primary_dsn, "SELECT pg_current_wal_lsn() AS written", policy.connect_timeout_s
        )
        # (time.monotonic(), the primary's WAL position then), oldest first.
        self._samples: deque[tuple[float, int]] = deque()
        self._monitor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.check()  # a fresh server reads from its replicas at once
        self._monitor = asyncio.create_task(self._watch())

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self._primary.close()
        for replica in self.all:
            await replica.close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.policy.check_s)
            try:
                await self.check()
            except Exception:  # the monitor must outlive anything one check runs into
                log.exception("replica check failed")

    async def check(self) -> None:
        """Sample the primary, then every replica, and judge each one's lag."""
        try:
            written = (await self._primary.ask())["written"]
        except Exception:  # noqa: BLE001 - without the primary there is nothing to compare to
            log.warning("replica check cannot reach the primary", exc_info=True)
            return
        now = time.monotonic()
        self._samples.append((now, written))
        keep = 2 * self.policy.max_lag_s + 2 * self.policy.check_s
        while len(self._samples) > 1 and self._samples[1][0] < now - keep:
            self._samples.popleft()
        fresh = await asyncio.gather(*(replica.refresh() for replica in self.all))
        for replica, answered in zip(self.all, fresh, strict=True):
            if answered:
                replica.judge(self._lag(replica.replay_lsn, now), self.policy.max_lag_s)

    def _lag(self, replayed: int, now: float) -> float:
        for at, written in self._samples:
            if written > replayed:  # the primary held WAL the replica lacks since then
                return max(0.0, now - at)
        return 0.0

    async def choose(self, lsn: int | None) -> Replica | None:
        """A healthy replica in turn, one that has replayed `lsn` if given (waiting at most
        `policy.wait_s` for one to get there); None: read the primary."""
        healthy = [replica for replica in self.all if replica.healthy]
        if not healthy:
            return None
        start = next(self._turn) % len(healthy)
        ordered = healthy[start:] + healthy[:start]
        if lsn is None:
            return ordered[0]
        for replica in ordered:
            if replica.replay_lsn >= lsn:
                return replica
        if await ordered[0].reaches(lsn, time.monotonic() + self.policy.wait_s):
            return ordered[0]
        return None

    def report(self) -> list[dict[str, object]]:
        """Each replica's state for /health/ready."""
        return [
            {
                "name": replica.name,
                "status": replica.status,
                "lagSeconds": None if replica.lag_s is None else round(replica.lag_s, 3),
            }
            for replica in self.all
        ]
