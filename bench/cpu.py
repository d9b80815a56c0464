"""CPU time of the processes a scenario loads: what the benchmark steers by.

Wall-clock requests/s on a shared machine swings with everyone else's work; the CPU seconds
a server process spends per request hardly move. A `Meter` reads (user + system) seconds
of a process tree before and after a scenario. A tree's total counts its live processes and
the children it has already reaped (a PostgreSQL backend that exits between the two readings
moves its time from the first kind to the second), so nothing run inside the window is lost.
"""

import asyncio
from dataclasses import dataclass
from pathlib import Path

import psutil


def tree_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) `pid` and every descendant have used, including reaped
    children's; None when `pid` is gone or not readable."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        descendants = root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    for process in descendants:
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # exited just now: its time is in its parent's children_* once reaped
        total += times.user + times.system + times.children_user + times.children_system
    return total


def cpu_seconds(data_dir: Path) -> float:
    """CPU seconds of a PostgreSQL server's processes so far, from its data directory: its
    postmaster and every backend, walsender and walreceiver under it."""
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    return tree_seconds(pid) or 0.0


async def _postmaster_of(dsn: str) -> int | None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        # Asked while the backend lives: it exits when the connection closes.
        backend = psutil.Process(int(await conn.fetchval("SELECT pg_backend_pid()")))
        parent = backend.parent()
    finally:
        await conn.close()
    if parent is None or "postgres" not in parent.name():
        return None
    return parent.pid


def postmaster_pid(dsn: str) -> int | None:
    """The postmaster of the PostgreSQL server `dsn` names, when it runs on this machine
    and is visible to us (the parent of a backend we open); None otherwise."""
    try:
        return asyncio.run(_postmaster_of(dsn))
    except Exception:  # noqa: BLE001 - a remote or unreadable server: no PostgreSQL column
        return None


@dataclass
class Reading:
    server_s: float | None
    postgres_s: float | None


class Meter:
    """Reads the CPU seconds of one server process tree and of PostgreSQL."""

    def __init__(self, server_pid: int | None, postgres_pid: int | None) -> None:
        self.server_pid = server_pid
        self.postgres_pid = postgres_pid

    def read(self) -> Reading:
        return Reading(
            tree_seconds(self.server_pid) if self.server_pid else None,
            tree_seconds(self.postgres_pid) if self.postgres_pid else None,
        )

    @staticmethod
    def per_request_ms(
        before: Reading, after: Reading, requests: int
    ) -> tuple[float | None, float | None]:
        """(server, PostgreSQL) CPU milliseconds per request between two readings."""

        def ms(a: float | None, b: float | None) -> float | None:
            if a is None or b is None or requests <= 0:
                return None
            return (b - a) * 1000 / requests

        return ms(before.server_s, after.server_s), ms(before.postgres_s, after.postgres_s)
