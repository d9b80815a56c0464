"""The benchmark's big-segment part (DESIGN §13), `python -m bench --big-targets N`: the time
`segments targets import` takes for a file of 1,000,000 keys (through the real CLI), the p50 of
evaluateSegment on a segment of N keys, of updateSegmentTargets with 10,000 keys on it, and of
memberCount of a big segment of 1,000,000 keys over the --profiles profiles.

The N-key segment is seeded server-side (INSERT ... SELECT generate_series, in primary-key
order): seeding is not what is measured, the import row is. Keys are deterministic, so two runs
with the same N hold the same lists (and --reuse keeps a list of the right size).
"""

import asyncio
import contextlib
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from bench import load
from bench.seed import PROJECT_KEY
from db.pool import connect

ROOT = Path(__file__).resolve().parents[1]
BIG_KEY = "zz_bench_big"
IMPORT_KEY = "zz_bench_big_import"
MEMBERS_KEY = "zz_bench_big_members"
SMALL_KEY = "zz_bench_small"
IMPORT_KEYS = 1_000_000
UPDATE_KEYS = 10_000
MEMBER_KEYS = 1_000_000
RANDOM_SEED = 20261201
# DESIGN §13 targets, seconds.
TARGETS = {
    "big_import": 15.0,
    "big_evaluate": 0.005,
    "big_update_targets": 1.0,
    "big_member_count": 2.0,
}

CREATE = """
mutation($i: CreateSegmentInput!) {
  createSegment(input: $i) { segment { id } userErrors { code message } }
}"""
FIND = """
query($p: String!, $k: String!) { segment(projectKey: $p, key: $k) { id includedCount } }
"""
EVALUATE = """
query($p: String!, $k: String!, $c: JSON!) {
  evaluateSegment(projectKey: $p, key: $k, context: $c) { matched reason }
}"""
UPDATE_TARGETS = """
mutation($i: UpdateSegmentTargetsInput!) {
  updateSegmentTargets(input: $i) { addedCount removedCount userErrors { code message } }
}"""
MEMBER_COUNT = """
query($p: String!, $k: String!) { segment(projectKey: $p, key: $k) { memberCount } }
"""


def big_key(number: int) -> str:
    """The N-key segment's keys: big-00000000, big-00000001, ... (the SQL seeding spells them
    the same way)."""
    return f"big-{number:08d}"


class _Client:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token

    async def gql(self, query: str, variables: dict[str, Any]) -> tuple[float, Any]:
        body = orjson.dumps({"query": query, "variables": variables})
        request = load.http_request("POST", "/graphql", self.port, body, self.token)
        started = time.perf_counter()
        status, raw = await load.exchange(self.port, request)
        elapsed = time.perf_counter() - started
        document = orjson.loads(raw)
        if status != 200 or document.get("errors"):
            raise RuntimeError(f"HTTP {status}: {raw[:300].decode(errors='replace')}")
        return elapsed, document["data"]


async def _big_segment(client: _Client, key: str, name: str) -> tuple[str, int]:
    """(GraphQL id, includedCount) of the bench's big segment `key`, created if missing."""
    _, data = await client.gql(FIND, {"p": PROJECT_KEY, "k": key})
    if data["segment"]:
        return data["segment"]["id"], data["segment"]["includedCount"]
    _, data = await client.gql(
        CREATE, {"i": {"projectKey": PROJECT_KEY, "key": key, "name": name, "unbounded": True}}
    )
    created = data["createSegment"]
    if created["userErrors"]:
        raise RuntimeError(f"createSegment {key}: {created['userErrors']}")
    return created["segment"]["id"], 0


async def _seed_list(dsn: str, project_id: int, key: str, sql_keys: str, count: int) -> float:
    """Replace the included list of big segment `key` with `count` keys spelled by `sql_keys`
    (an expression of i, 0-based, increasing with i: rows arrive in primary-key order),
    server-side; the seconds it took."""
    started = time.perf_counter()
    conn = await connect(dsn)
    try:
        segment_id = await conn.fetchval(
            "SELECT id FROM segments WHERE project_id = $1 AND key = $2 AND deleted_at IS NULL",
            project_id,
            key,
        )
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM segment_targets WHERE project_id = $1 AND segment_id = $2",
                project_id,
                segment_id,
            )
            await conn.execute(
                f"""
                INSERT INTO segment_targets (project_id, segment_id, kind, targeting_key)
                SELECT $1, $2, 'included', {sql_keys}
                FROM generate_series(0, $3 - 1) AS g (i)
                """,
                project_id,
                segment_id,
                count,
            )
            await conn.execute(
                """
                UPDATE segments SET included_count = $3, excluded_count = 0
                WHERE project_id = $1 AND id = $2
                """,
                project_id,
                segment_id,
                count,
            )
        await conn.execute("VACUUM ANALYZE segment_targets")
    finally:
        await conn.close()
    return time.perf_counter() - started


def _row(
    name: str, latencies: list[float], note: str, problem: str | None, **extra: Any
) -> dict[str, Any]:
    latencies = sorted(latencies)
    p50 = latencies[(len(latencies) - 1) // 2] if latencies else None
    p99 = (
        latencies[min(len(latencies) - 1, round(0.99 * len(latencies)) - 1)] if latencies else None
    )
    target = TARGETS[name]
    met = p50 is not None and p50 <= target
    shown = f"{target * 1000:g} ms" if target < 1 else f"{target:g} s"
    return {
        "rps": len(latencies) / sum(latencies) if latencies else None,
        "p50_ms": p50 * 1000 if p50 is not None else None,
        "p99_ms": p99 * 1000 if p99 is not None else None,
        "errors": 1 if problem else 0,
        "requests": len(latencies),
        "sql": None,
        "acquires": None,
        "cycles_per_s": None,
        "generator": "sequential",
        "problem": problem,
        "note": f"{note}; target p50 ≤ {shown}: {'met' if met else 'NOT met'}",
        **extra,
    }


def time_import(dsn: str, port: int, token: str) -> dict[str, Any]:
    """`segments targets import` of a file of 1,000,000 distinct keys in random order into an
    empty big segment, as a user runs it (a process of its own)."""
    client = _Client(port, token)
    asyncio.run(_big_segment(client, IMPORT_KEY, "ZZ Bench big import"))
    asyncio.run(_empty(dsn, IMPORT_KEY))
    folder = Path(tempfile.mkdtemp(prefix="segments-bench-targets-"))
    file = folder / "keys.txt"
    rng = random.Random(RANDOM_SEED)
    numbers = list(range(IMPORT_KEYS))
    rng.shuffle(numbers)
    try:
        with file.open("w") as out:
            out.writelines(f"customer-{number:09d}\n" for number in numbers)
        del numbers
        cpu_before = _cpu(dsn)
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "api.cli",
                "targets",
                "import",
                "--project",
                PROJECT_KEY,
                "--segment",
                IMPORT_KEY,
                str(file),
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": dsn},
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = (children.ru_utime - children_before.ru_utime) + (
            children.ru_stime - children_before.ru_stime
        )
        cpu_after = _cpu(dsn)
        server_cpu = cpu_after - cpu_before if cpu_after is not None and cpu_before else None
    finally:
        file.unlink(missing_ok=True)
        folder.rmdir()
    added = re.search(r"(\d+) added", result.stdout)
    problem = None
    if result.returncode != 0 or not added or int(added[1]) != IMPORT_KEYS:
        problem = f"exit {result.returncode}: {(result.stdout + result.stderr)[-300:]}"
    asyncio.run(_empty(dsn, IMPORT_KEY))  # untimed: leave the table as it was
    return _row(
        "big_import",
        [seconds],
        f"segments targets import: {IMPORT_KEYS:,} keys in random order into an empty big "
        f"segment in {seconds:.1f} s (CPU: CLI {cli_cpu:.1f} s, PostgreSQL "
        f"{'?' if server_cpu is None else f'{server_cpu:.1f}'} s; load average "
        f"{os.getloadavg()[0]:.1f})",
        problem,
        seconds=seconds,
    )


def _cpu(dsn: str) -> float | None:
    """CPU seconds of the PostgreSQL server so far, with its exited backends (the postmaster
    reaps them: their time is its children's), when it runs on this machine with its data
    directory as socket directory (the embedded one); None otherwise."""
    import psutil

    host = parse_qs(urlsplit(dsn).query).get("host", [""])[0]
    try:
        pid = int((Path(host) / "postmaster.pid").read_text().split()[0])
        root = psutil.Process(pid)
        total = sum(root.cpu_times()[:4])
        for process in root.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += sum(process.cpu_times()[:2])
        return total
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


async def _empty(dsn: str, key: str) -> None:
    conn = await connect(dsn)
    try:
        await conn.execute(
            """
            WITH s AS (
                UPDATE segments SET included_count = 0, excluded_count = 0
                WHERE key = $1 AND deleted_at IS NULL
                RETURNING project_id, id
            )
            DELETE FROM segment_targets t USING s
            WHERE t.project_id = s.project_id AND t.segment_id = s.id
            """,
            key,
        )
    finally:
        await conn.close()


async def _measure(
    dsn: str, project_id: int, port: int, token: str, count: int, profiles: int, runs: int
) -> dict[str, dict[str, Any]]:
    client = _Client(port, token)
    rows: dict[str, dict[str, Any]] = {}
    big_id, present = await _big_segment(client, BIG_KEY, "ZZ Bench big")
    if present != count:
        print(f"[bench] seeding {count:,} keys of {BIG_KEY} server-side", file=sys.stderr)
        seconds = await _seed_list(
            dsn, project_id, BIG_KEY, "'big-' || lpad(i::text, 8, '0')", count
        )
        print(f"[bench] seeded in {seconds:.1f} s", file=sys.stderr)

    for name, scenario in (
        ("big_evaluate", _evaluate),
        ("big_update_targets", _update_targets),
        ("big_member_count", _member_count),
    ):
        try:
            rows[name] = await scenario(client, dsn, project_id, big_id, count, profiles, runs)
        except (OSError, TimeoutError, ValueError, RuntimeError) as error:
            rows[name] = _row(name, [], name, f"{type(error).__name__}: {error}"[:300])
        _log_row(name, rows[name])
    return rows


async def _evaluate(
    client: _Client, dsn: str, project_id: int, big_id: str, count: int, profiles: int, runs: int
) -> dict[str, Any]:
    """evaluateSegment: a key in the list, one not in it, by turns; then the same on a
    standard segment of one key, as the baseline of the same request on this machine now."""
    _, data = await client.gql(FIND, {"p": PROJECT_KEY, "k": SMALL_KEY})
    if not data["segment"]:
        _, data = await client.gql(
            CREATE,
            {
                "i": {
                    "projectKey": PROJECT_KEY,
                    "key": SMALL_KEY,
                    "name": "ZZ Bench small",
                    "included": [big_key(0)],
                }
            },
        )
        if data["createSegment"]["userErrors"]:
            raise RuntimeError(f"createSegment {SMALL_KEY}: {data['createSegment']}")
    measured: dict[str, list[float]] = {}
    problem = None
    for key_of_segment in (BIG_KEY, SMALL_KEY):
        latencies = measured[key_of_segment] = []
        rng = random.Random(RANDOM_SEED)
        for attempt in range(max(runs, 20) * 2 + 1):
            inside = attempt % 2 == 0
            if key_of_segment == SMALL_KEY:
                key = big_key(0) if inside else f"absent-{attempt}"
            else:
                key = big_key(rng.randrange(count)) if inside else f"absent-{attempt}"
            elapsed, data = await client.gql(
                EVALUATE, {"p": PROJECT_KEY, "k": key_of_segment, "c": {"targetingKey": key}}
            )
            if data["evaluateSegment"]["matched"] != inside:
                problem = problem or f"{key}: {data['evaluateSegment']}"
            if attempt:
                latencies.append(elapsed)
    small = sorted(measured[SMALL_KEY])
    return _row(
        "big_evaluate",
        measured[BIG_KEY],
        f"evaluateSegment on a segment of {count:,} keys (in and not in the list by turns; "
        f"a standard segment of one key: p50 {small[(len(small) - 1) // 2] * 1000:.1f} ms)",
        problem,
    )


async def _update_targets(
    client: _Client, dsn: str, project_id: int, big_id: str, count: int, profiles: int, runs: int
) -> dict[str, Any]:
    """updateSegmentTargets: 10,000 new keys added, then removed again, by turns."""
    latencies: list[float] = []
    problem = None
    # Keys of the list: removed first, then added back, so the list stays within the limit.
    keys = [big_key(number) for number in range(0, count, max(1, count // UPDATE_KEYS))]
    keys = keys[:UPDATE_KEYS]
    for attempt in range(runs * 2):
        adding = attempt % 2 == 1
        lists = {"addIncluded": keys} if adding else {"removeIncluded": keys}
        elapsed, data = await client.gql(UPDATE_TARGETS, {"i": {"segmentId": big_id, **lists}})
        result = data["updateSegmentTargets"]
        changed = result["addedCount"] if adding else result["removedCount"]
        if result["userErrors"] or changed != len(keys):
            problem = problem or f"unexpected {result}"
        latencies.append(elapsed)
    return _row(
        "big_update_targets",
        latencies,
        f"updateSegmentTargets of {UPDATE_KEYS:,} keys on the {count:,}-key segment "
        "(10,000 keys spread over the list removed, then added back, by turns)",
        problem,
    )


async def _member_count(
    client: _Client, dsn: str, project_id: int, big_id: str, count: int, profiles: int, runs: int
) -> dict[str, Any]:
    """memberCount: 1,000,000 keys, half of them keys of stored profiles."""
    if not profiles:
        return _row(
            "big_member_count", [], "memberCount of a big segment", "needs --profiles 1000000"
        )
    _members_id, present = await _big_segment(client, MEMBERS_KEY, "ZZ Bench big members")
    if present != MEMBER_KEYS:
        offset = profiles // 2
        print(f"[bench] seeding {MEMBER_KEYS:,} keys of {MEMBERS_KEY}", file=sys.stderr)
        await _seed_list(
            dsn,
            project_id,
            MEMBERS_KEY,
            f"'user-' || lpad((i + {offset})::text, 7, '0')",
            MEMBER_KEYS,
        )
    latencies: list[float] = []
    problem = None
    expected = min(MEMBER_KEYS, profiles - profiles // 2)
    for attempt in range(runs + 1):
        elapsed, data = await client.gql(MEMBER_COUNT, {"p": PROJECT_KEY, "k": MEMBERS_KEY})
        if data["segment"]["memberCount"] != expected:
            problem = f"memberCount {data['segment']['memberCount']}, expected {expected}"
        if attempt:
            latencies.append(elapsed)
    return _row(
        "big_member_count",
        latencies,
        f"memberCount of a big segment of {MEMBER_KEYS:,} keys over {profiles:,} profiles "
        f"({expected:,} members)",
        problem,
    )


def measure(
    dsn: str, project_id: int, port: int, token: str, args: Any
) -> dict[str, dict[str, Any]]:
    """Every big-segment row, against the running server on `port` (`args`: --big-targets,
    --profiles, --profile-runs)."""
    rows = {"big_import": time_import(dsn, port, token)}
    _log_row("big_import", rows["big_import"])
    rows |= asyncio.run(
        _measure(dsn, project_id, port, token, args.big_targets, args.profiles, args.profile_runs)
    )
    return rows


def _log_row(name: str, row: dict[str, Any]) -> None:
    """Each row as soon as it is measured (a long run may be cut short later)."""
    p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:,.1f} ms"
    problem = f" !! {row['problem']}" if row["problem"] else ""
    print(f"[bench] {name}: p50 {p50}; {row['note']}{problem}", file=sys.stderr, flush=True)
