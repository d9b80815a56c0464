"""Load generators: wrk with a Lua script when it is installed, else raw HTTP/1.1 over asyncio.

Both keep `concurrency` connections open for a fixed time and report requests/s, p50/p99
latency and errors. The asyncio client also drives request sequences whose next request
depends on the last response (the write cycle), which wrk cannot.
"""

import asyncio
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

LUA_SCRIPT = Path(__file__).with_name("wrk_post.lua")
HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 10.0
# Upper bounds that only a broken run reaches: requests per connection, reconnects, chunks.
MAX_REQUESTS_PER_CONNECTION = 5_000_000
MAX_RECONNECTS = 100
MAX_CHUNKS = 100_000


@dataclass
class Result:
    generator: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    cycles: int | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def cycles_per_s(self) -> float | None:
        return None if self.cycles is None or self.seconds <= 0 else self.cycles / self.seconds


def http_request(
    method: str, path: str, port: int, body: bytes | None = None, token: str | None = None
) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: application/json"]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Session(Protocol):
    """What one connection sends next, and whether a response counts as a success."""

    def request(self) -> bytes: ...

    def response(self, status: int, body: bytes) -> bool: ...

    def reset(self) -> None: ...


class Fixed:
    """The same request again and again; a success is a 2xx without GraphQL errors."""

    def __init__(self, request: bytes) -> None:
        self._request = request

    def request(self) -> bytes:
        return self._request

    def response(self, status: int, body: bytes) -> bool:
        return 200 <= status < 300 and b'"errors":' not in body

    def reset(self) -> None:
        pass


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, keep-alive) of one response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    chunked = False
    keep_alive = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep_alive = b"close" not in value.lower()
    if chunked:
        parts = []
        for _ in range(MAX_CHUNKS):
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                break
        else:
            raise ValueError("too many chunks")
        return status, b"".join(p[:-2] for p in parts), keep_alive
    if length is None:
        return status, await reader.read(), False
    return status, await reader.readexactly(length), keep_alive


async def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    async with asyncio.timeout(REQUEST_TIMEOUT_S):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(request)
            status, body, _ = await _read_response(reader)
        finally:
            writer.close()
    return status, body


@dataclass
class _Tally:
    latencies: list[float]
    requests: int = 0
    errors: int = 0


async def _connection(port: int, session: Session, deadline: float, tally: _Tally) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    connects = 0
    try:
        for _ in range(MAX_REQUESTS_PER_CONNECTION):
            if time.perf_counter() >= deadline:
                break
            if writer is None:
                if connects > MAX_RECONNECTS:
                    break
                connects += 1
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        reader, writer = await asyncio.open_connection(HOST, port)
                except (OSError, TimeoutError):
                    tally.errors += 1
                    await asyncio.sleep(0.05)
                    continue
            assert reader is not None
            started = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    writer.write(session.request())
                    status, body, keep_alive = await _read_response(reader)
            except (
                OSError,
                TimeoutError,
                ValueError,
                IndexError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
            ):
                tally.errors += 1
                session.reset()
                writer.close()
                writer = None
                continue
            tally.latencies.append(time.perf_counter() - started)
            tally.requests += 1
            if not session.response(status, body):
                tally.errors += 1
            if not keep_alive:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def run_asyncio(
    port: int,
    sessions: list[Session],
    duration: float,
) -> Result:
    """Keep one connection per session busy for `duration` seconds."""
    tally = _Tally(latencies=[])
    started = time.perf_counter()
    deadline = started + duration
    tasks = [asyncio.create_task(_connection(port, s, deadline, tally)) for s in sessions]
    try:
        # In-flight requests finish after the deadline, each within its own timeout.
        await asyncio.wait_for(asyncio.gather(*tasks), duration + REQUEST_TIMEOUT_S + 5)
    finally:
        for task in tasks:
            task.cancel()
    seconds = time.perf_counter() - started
    latencies = sorted(tally.latencies)
    p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
    return Result(
        generator="asyncio",
        requests=tally.requests,
        seconds=seconds,
        errors=tally.errors,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
    )


def run_wrk(
    wrk: str,
    port: int,
    *,
    method: str,
    path: str,
    body: bytes | None,
    token: str | None,
    concurrency: int,
    duration: float,
    threads: int = 1,
) -> Result:
    """Run wrk against 127.0.0.1:`port` with the Lua script; errors = socket errors + non-2xx."""
    with tempfile.TemporaryDirectory(prefix="segments-bench-") as folder:
        env = {**os.environ, "BENCH_METHOD": method, "BENCH_TOKEN": token or "", "BENCH_BODY": ""}
        if body is not None:
            body_path = Path(folder) / "body.json"
            body_path.write_bytes(body)
            env["BENCH_BODY"] = str(body_path)
        command = [
            wrk,
            f"--threads={max(1, min(threads, concurrency))}",
            f"--connections={concurrency}",
            f"--duration={max(1, round(duration))}s",
            f"--timeout={round(REQUEST_TIMEOUT_S)}s",
            "--latency",
            f"--script={LUA_SCRIPT}",
            f"http://{HOST}:{port}{path}",
        ]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            out, err = process.communicate(timeout=duration + REQUEST_TIMEOUT_S + 30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    summary = next(
        (
            line.removeprefix("BENCH_WRK ")
            for line in out.splitlines()
            if line.startswith("BENCH_WRK ")
        ),
        None,
    )
    if process.returncode != 0 or summary is None:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err.strip() or out.strip()}")
    s = json.loads(summary)
    errors = s["connect"] + s["read"] + s["write"] + s["status"] + s["timeout"]
    return Result(
        generator="wrk",
        requests=s["requests"],
        seconds=s["duration_us"] / 1e6,
        errors=errors,
        p50_ms=s["p50_us"] / 1000,
        p99_ms=s["p99_us"] / 1000,
    )


class WriteCycle:
    """create → update → delete of a fresh segment, over and over; counts full cycles."""

    CREATE = """
    mutation Create($input: CreateSegmentInput!) {
      createSegment(input: $input) { segment { id version } userErrors { code message } }
    }"""
    UPDATE = """
    mutation Update($input: UpdateSegmentInput!) {
      updateSegment(input: $input) { segment { id version } userErrors { code message } }
    }"""
    DELETE = """
    mutation Delete($input: DeleteSegmentInput!) {
      deleteSegment(input: $input) { deletedSegmentId userErrors { code message } }
    }"""

    def __init__(self, port: int, token: str, project_key: str, label: str) -> None:
        self.port = port
        self.token = token
        self.project_key = project_key
        self.label = label
        self.step = 0
        self.number = 0
        self.segment_id: str | None = None
        self.version = 0
        self.cycles = 0
        self.last_problem: str | None = None

    def request(self) -> bytes:
        return http_request("POST", "/graphql", self.port, self.body(), self.token)

    def body(self) -> bytes:
        """The JSON body of the next request of the cycle."""
        if self.step == 0:
            return self._body(
                self.CREATE,
                {
                    "input": {
                        "projectKey": self.project_key,
                        "name": f"Bench Write {self.label} {self.number}",
                        "description": "Created by the write benchmark.",
                        "tags": ["bench", "write"],
                        "logicalOp": "AND",
                        "rules": [
                            {
                                "condition": {
                                    "attribute": "plan",
                                    "operator": "IN",
                                    "value": ["pro", "enterprise"],
                                }
                            },
                            {
                                "condition": {
                                    "attribute": "country",
                                    "operator": "EQ",
                                    "value": "NL",
                                }
                            },
                            {
                                "group": {
                                    "logicalOp": "OR",
                                    "rules": [
                                        {
                                            "condition": {
                                                "attribute": "user.age",
                                                "operator": "GTE",
                                                "value": 18,
                                            }
                                        },
                                        {
                                            "condition": {
                                                "attribute": "beta_opt_in",
                                                "operator": "EQ",
                                                "value": True,
                                            }
                                        },
                                    ],
                                }
                            },
                        ],
                    }
                },
            )
        if self.step == 1:
            return self._body(
                self.UPDATE,
                {
                    "input": {
                        "id": self.segment_id,
                        "expectedVersion": self.version,
                        "description": "Updated by the write benchmark.",
                        "tags": ["bench", "write", "updated"],
                    }
                },
            )
        return self._body(
            self.DELETE, {"input": {"id": self.segment_id, "expectedVersion": self.version}}
        )

    @staticmethod
    def _body(query: str, variables: dict) -> bytes:
        return orjson.dumps({"query": query, "variables": variables})

    def response(self, status: int, body: bytes) -> bool:
        payload = None
        if 200 <= status < 300:
            try:
                document = orjson.loads(body)
                if not document.get("errors"):
                    payload = next(iter((document.get("data") or {}).values()), None)
            except (orjson.JSONDecodeError, AttributeError):
                payload = None
        if not payload or payload.get("userErrors"):
            self.last_problem = f"step {self.step}: HTTP {status} {body[:300]!r}"
            self.reset()
            return False
        if self.step < 2:
            self.segment_id = payload["segment"]["id"]
            self.version = payload["segment"]["version"]
            self.step += 1
        else:
            self.cycles += 1
            self.reset()
        return True

    def reset(self) -> None:
        self.step = 0
        self.number += 1
        self.segment_id = None
