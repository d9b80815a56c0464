"""The change request scheduler: one small loop per serving process that applies due
SCHEDULED change requests (DESIGN §14). Any number of processes may run it: each request is
taken by one of them (FOR UPDATE SKIP LOCKED), and a request that came due while no server
ran is applied by the first poll after start."""

import asyncio
import contextlib
import logging

import asyncpg

from core.change_requests import apply_due
from core.policy import Policy
from db.pool import connect

log = logging.getLogger("segments.scheduler")
# Requests one poll handles at most (one transaction each).
POLL_LIMIT = 20


class Scheduler:
    """Polls every `interval_s` seconds on a connection of its own (outside the request
    pool, so requests never wait for it); 0 disables it."""

    def __init__(
        self, dsn: str, policy: Policy, interval_s: float, statement_timeout_ms: int
    ) -> None:
        self.dsn = dsn
        self.policy = policy
        self.interval_s = interval_s
        self.statement_timeout_ms = statement_timeout_ms
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        # Unexpected failures per scheduled request, across polls (core.change_requests).
        self._failures: dict[int, int] = {}

    async def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="change-request-scheduler")

    async def stop(self) -> None:
        """Let a poll under way finish (a few seconds at most), then end the loop."""
        if self._task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    async def poll(self) -> int:
        """Apply what is due now; the number of requests handled."""
        if self._conn is None or self._conn.is_closed():
            self._conn = await connect(
                self.dsn,
                server_settings={
                    "application_name": "segments-scheduler",
                    "statement_timeout": str(self.statement_timeout_ms),
                },
            )
        return await apply_due(self._conn, self.policy, POLL_LIMIT, self._failures)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            handled = 0
            try:
                handled = await self.poll()
                if handled:
                    log.info("scheduler handled %d due change request(s)", handled)
            except Exception:
                # Never crash the server: log, drop the connection, try again next time.
                log.exception("scheduler poll failed")
                await self._close()
            if handled >= POLL_LIMIT:
                continue  # more may be due: no pause
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval_s)

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=2)
            if not conn.is_closed():
                conn.terminate()
