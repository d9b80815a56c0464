"""`segments serve` as a real subprocess, for tests that need a running server."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class Server:
    """A started `segments serve`; `stop()` sends SIGTERM, as `kill`, docker and systemd do."""

    def __init__(
        self, port: int, env: dict[str, str], cwd: Path = ROOT, command: list[str] | None = None
    ) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # Files, not pipes: a server that logs more than a pipe holds would block on it.
        self._out = tempfile.TemporaryFile("w+")
        self._err = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [*(command or [sys.executable, "-m", "api.cli"]), "serve", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=self._err,
            text=True,
        )
        self.stdout = ""
        self.stderr = ""

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"serve exited early:\n{self.stdout}\n{self.stderr}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(
            f"serve was not ready within {timeout} s:\n{self.stdout}\n{self.stderr}"
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        """Resident memory of the server process (VmRSS), in MiB: with one worker, uvicorn
        runs in the `serve` process itself."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def output(self) -> tuple[str, str]:
        """What the server printed so far to stdout and stderr."""
        texts = []
        for file in (self._out, self._err):
            file.flush()
            file.seek(0)
            texts.append(file.read())
        return texts[0], texts[1]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stdout, self.stderr = self.output()
        return self.process.returncode


def embedded_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The test's environment without DATABASE_URL: `serve` starts an embedded PostgreSQL."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return {**env, "SEGMENTS_DATA_DIR": str(data_dir), **extra}


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])


def gone_soon(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def live_server(database_url: str, **env: str) -> Iterator[Server]:
    """A ready `segments serve` (one worker) on `database_url`, stopped afterwards: for what
    an in-process app cannot show, such as one event loop's responsiveness or its memory."""
    server = Server(
        free_port(),
        {**os.environ, "DATABASE_URL": database_url, "SEGMENTS_POOL_MIN_SIZE": "1", **env},
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
