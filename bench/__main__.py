"""Load benchmark of the segments API (DESIGN §9): `python -m bench [options]`.

Seeds its own database, starts `segments serve` and the asyncpg floor app, drives both over
loopback HTTP, and prints a table and, on the last line, every figure as JSON.
"""

import argparse
import asyncio
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from api.settings import Settings
from bench import anchors, attributes, big, cpu, impact, load, overlap, profiles
from bench.scenarios import ORDER, PROJECT_KEY, Scenario, build
from bench.seed import Seeded, prepare, retire_write_segments

ROOT = Path(__file__).resolve().parents[1]
# The write scenario creates segments in a project that already holds --segments of them.
MAX_SEGMENTS = 100_000_000
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--segments", type=int, default=100_000)
    parser.add_argument("--flags", type=int, default=2_000)
    parser.add_argument("--rules", type=int, default=20_000, help="targeting rules")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each")
    parser.add_argument("--concurrency", type=int, default=16, help="open connections")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument(
        "--scenarios", default=",".join(ORDER), help=f"comma list of {', '.join(ORDER)}"
    )
    parser.add_argument("--reuse", action="store_true", help="keep an existing seeded bench DB")
    parser.add_argument(
        "--profiles",
        type=int,
        default=0,
        help="seed this many profiles and run member_count, members_page, preview and import "
        "(0: skip them)",
    )
    parser.add_argument(
        "--big-targets", type=int, default=0, help="big-segment rows on a segment of N keys"
    )
    parser.add_argument(
        "--profile-runs", type=int, default=10, help="sequential requests per profile scenario"
    )
    parser.add_argument(
        "--port", type=int, default=0, help="API port (floor: +1); 0 picks free ones"
    )
    parser.add_argument(
        "--fast-path",
        choices=["on", "off"],
        default="on",
        help="the compiled query executor (SEGMENTS_FAST_PATH); off: graphql-core runs all",
    )
    parser.add_argument(
        "--replica",
        action="store_true",
        help="build a primary and a streaming replica, run list and member_count against the "
        "primary alone and then with the replica, and report both servers' CPU",
    )
    parser.add_argument(
        "--anchors",
        action="store_true",
        help="also run PostGraphile 4 (npm, needs Node) on the same database: the list's anchor",
    )
    parser.add_argument(
        "--generator",
        choices=["auto", "wrk", "asyncio"],
        default="auto",
        help="auto: wrk when on PATH (write always uses the asyncio client)",
    )
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(args.scenarios) - set(ORDER))
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)}")
    for name in ("segments", "flags", "concurrency", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.duration <= 0 or args.rules < 0 or args.warmup < 0:
        parser.error("--duration must be positive; --rules and --warmup not negative")
    if args.profiles < 0 or args.profile_runs < 1:
        parser.error("--profiles must not be negative, --profile-runs at least 1")
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((load.HOST, 0))
        return sock.getsockname()[1]


class Servers:
    """Processes this run started; each leads its own process group, stopped as a whole."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs = Path(tempfile.mkdtemp(prefix="segments-bench-logs-"))
        self.keep_logs = False

    def start(
        self, name: str, command: list[str], env: dict[str, str], port: int
    ) -> subprocess.Popen[bytes]:
        log_file = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_file.close()
        self.processes.append((name, process))
        self._wait_listening(name, process, port)
        return process

    def _wait_listening(self, name: str, process: subprocess.Popen[bytes], port: int) -> None:
        # uvicorn listens only once its lifespan (pool) is up: a connect means ready.
        deadline = time.monotonic() + READY_TIMEOUT_S
        for _ in range(int(READY_TIMEOUT_S / 0.1) + 1):
            if process.poll() is not None:
                self.keep_logs = True
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.tail(name)}")
            try:
                with socket.create_connection((load.HOST, port), timeout=1):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.keep_logs = True
        raise RuntimeError(f"{name} did not listen on port {port} in {READY_TIMEOUT_S:.0f} s")

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop_all(self) -> None:
        for name, process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                    process.wait(STOP_TIMEOUT_S)
                except ProcessLookupError:
                    pass
                except subprocess.TimeoutExpired:
                    log(f"{name} ignored SIGTERM; killing it")
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(STOP_TIMEOUT_S)
        self.processes.clear()

    def close(self) -> None:
        """Stop what still runs; drop the logs unless something went wrong."""
        self.stop_all()
        if not self.logs.exists():
            return
        if self.keep_logs:
            log(f"server logs kept in {self.logs}")
        else:
            shutil.rmtree(self.logs, ignore_errors=True)


def rss_mb(pid: int) -> float | None:
    """Resident memory of `pid` and its descendants (uvicorn workers when --workers > 1)."""
    total_kb = 0
    pending, seen = [pid], set()
    for _ in range(1000):
        if not pending:
            break
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total_kb += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
        pending += [int(child) for child in children]
    return round(total_kb / 1024, 1) if total_kb else None


async def _settle() -> None:
    # asyncpg reports statements through loop.call_soon: let those callbacks run.
    for _ in range(3):
        await asyncio.sleep(0)


class _CountingPool:
    """An asyncpg pool that counts acquisitions (each is a trip through the pool)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.acquires = 0

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        self.acquires += 1
        return self.pool.acquire(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


async def sql_per_request(
    seeded: Seeded, scenarios: list[Scenario], fast_path: bool = True
) -> dict[str, tuple[float, float]]:
    """(SQL statements, pool acquisitions) one request of each scenario costs, in-process.

    Statements are the app's own counter (`Database.statements`); each request is sent twice
    and the second one counts, as under load (warm caches, open connections).
    """
    import httpx

    from api.app import create_app
    from bench.floor import create_floor_app

    headers = {
        "Authorization": f"Bearer {seeded.token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
    }
    counts: dict[str, tuple[float, float]] = {}

    async def measure(app: Any, requests: list[Scenario]) -> None:
        async with app.router.lifespan_context(app):
            db = app.state.db
            # This in-process app only; the API's Database keeps its pool on the primary.
            holder = getattr(db, "primary", db)
            pool = holder.pool = _CountingPool(holder.pool)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for scenario in requests:
                    if scenario.name == "write":
                        label = f"sql {os.getpid()} {time.time_ns()}"
                        cycle = load.WriteCycle(0, seeded.token, PROJECT_KEY, label)
                        before, acquired = db.statements, pool.acquires
                        for _ in range(3):
                            response = await client.post(
                                scenario.path, content=cycle.body(), headers=headers
                            )
                            if not cycle.response(response.status_code, response.content):
                                raise RuntimeError(
                                    f"write cycle failed in-process: {cycle.last_problem}"
                                )
                        await _settle()
                        counts["write"] = (
                            (db.statements - before) / 3,
                            (pool.acquires - acquired) / 3,
                        )
                        continue
                    for _ in range(2):  # the second request: caches warm, pool connections open
                        before, acquired = db.statements, pool.acquires
                        await client.request(
                            scenario.method, scenario.path, content=scenario.body, headers=headers
                        )
                        await _settle()
                        counts[scenario.name] = (db.statements - before, pool.acquires - acquired)

    settings = Settings(
        database_url=seeded.dsn, max_segments_per_project=MAX_SEGMENTS, fast_path=fast_path
    )
    api = [s for s in scenarios if s.target == "api"]
    floor = [s for s in scenarios if s.target == "floor"]
    if api:
        await measure(create_app(settings), api)
    if floor:
        await measure(create_floor_app(seeded.dsn), floor)
    return counts


def check(scenario: Scenario, port: int, seeded: Seeded) -> tuple[str | None, Any]:
    """One request before loading: a problem (HTTP status, GraphQL errors, wrong data) or None."""
    if scenario.name == "write":
        cycle = load.WriteCycle(
            port, seeded.token, PROJECT_KEY, f"check {os.getpid()} {time.time_ns()}"
        )
        for _ in range(3):
            status, body = asyncio.run(load.exchange(port, cycle.request()))
            if not cycle.response(status, body):
                return cycle.last_problem, None
        return None, None
    token = seeded.token if scenario.body is not None and scenario.authenticated else None
    request = load.http_request(scenario.method, scenario.path, port, scenario.body, token)
    status, body = asyncio.run(load.exchange(port, request))
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"HTTP {status}, not JSON: {body[:200]!r}", None
    if status != 200 or (isinstance(document, dict) and document.get("errors")):
        return f"HTTP {status}: {orjson.dumps(document)[:300].decode()}", document
    try:
        return scenario.check(document), document
    except (KeyError, TypeError, IndexError) as error:
        return f"unexpected response shape ({error!r}): {body[:200]!r}", document


def drive(
    scenario: Scenario,
    port: int,
    seeded: Seeded,
    args: argparse.Namespace,
    seconds: float,
    label: str,
) -> load.Result:
    """Load `scenario` for `seconds` with wrk (when chosen) or the asyncio client."""
    if scenario.name == "write":
        sessions = [
            load.WriteCycle(
                port, seeded.token, PROJECT_KEY, f"{label} {os.getpid()} {time.time_ns()} c{i}"
            )
            for i in range(args.concurrency)
        ]
        result = asyncio.run(load.run_asyncio(port, sessions, seconds))
        result.cycles = sum(s.cycles for s in sessions)
        return result
    token = seeded.token if scenario.body is not None and scenario.authenticated else None
    if args.wrk:
        return load.run_wrk(
            args.wrk,
            port,
            method=scenario.method,
            path=scenario.path,
            body=scenario.body,
            token=token,
            concurrency=args.concurrency,
            duration=seconds,
        )
    request = load.http_request(scenario.method, scenario.path, port, scenario.body, token)
    return asyncio.run(
        load.run_asyncio(port, [load.Fixed(request) for _ in range(args.concurrency)], seconds)
    )


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def report(rows: dict[str, dict[str, Any]], summary: dict[str, Any]) -> None:
    header = (
        f"{'scenario':<12} {'rps':>10} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7} {'SQL/req':>8} "
        f"{'acquires':>8} {'CPU ms':>7} {'PG ms':>6} {'load':>5}  notes"
    )
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        notes = row["note"]
        if row.get("cycles_per_s") is not None:
            notes = f"{row['cycles_per_s']:,.1f} cycles/s; {notes}"
        if row["problem"]:
            notes = f"!! {row['problem']}  ({notes})"
        print(
            f"{name:<12} {_fmt(row['rps']):>10} {_fmt(row['p50_ms'], 2):>9} {_fmt(row['p99_ms'], 2):>9} "
            f"{row['errors'] if row['errors'] is not None else '-':>7} {_fmt(row['sql'], 1):>8} "
            f"{_fmt(row['acquires'], 1):>8} {_fmt(row.get('cpu_ms'), 2):>7} "
            f"{_fmt(row.get('pg_cpu_ms'), 2):>6} {_fmt(row.get('load'), 2):>5}  {notes}"
        )
    print()
    for label, key in (
        ("list / floor", "list_vs_floor"),
        ("list / pgl", "list_vs_postgraphile"),
        ("CPU list/flr", "list_cpu_vs_floor"),
        ("CPU list/pgl", "list_cpu_vs_postgraphile"),
        ("deep / list", "deep_vs_list"),
        ("search / list", "search_vs_list"),
    ):
        print(f"{label:<14} {_fmt(summary.get(key), 3)}")
    print(f"server RSS     {_fmt(summary.get('server_rss_mb'))} MB after the run")
    if summary.get("anchors_note"):
        print(f"anchors        skipped: {summary['anchors_note']}")
    print(json.dumps(summary, separators=(", ", ": ")))


def run(args: argparse.Namespace, servers: Servers) -> int:
    settings = Settings()
    cpus = os.cpu_count()
    load_before = os.getloadavg()[0]
    log(
        f"{cpus} CPUs, load average {load_before:.2f}; generator {'wrk' if args.wrk else 'asyncio'}"
    )
    server_dsn = settings.database_url
    if not server_dsn:
        from api.embedded import start_embedded

        log(f"DATABASE_URL unset: embedded PostgreSQL under {settings.data_dir}")
        server_dsn = start_embedded(settings.data_dir)
    log(
        f"seeding {args.segments} segments, {args.flags} flags, {args.rules} rules"
        + (" (or reusing)" if args.reuse else "")
    )
    seeded = asyncio.run(
        prepare(
            server_dsn, segments=args.segments, flags=args.flags, rules=args.rules, reuse=args.reuse
        )
    )
    if seeded.seed_seconds is None:
        log(f"reused the bench database: {seeded.live_segments} live segments")
    else:
        log(f"seeded in {seeded.seed_seconds:.1f} s")

    profile_seed = None
    if args.profiles:
        log(f"seeding {args.profiles} profiles" + (" (or reusing)" if args.reuse else ""))
        profile_seed = asyncio.run(
            profiles.prepare(seeded.dsn, seeded.project_id, args.profiles, args.reuse)
        )
        if profile_seed.seed_seconds is None:
            log("reused the bench profiles")
        else:
            log(f"profiles seeded in {profile_seed.seed_seconds:.1f} s")

    all_scenarios = build(seeded)
    selected = [all_scenarios[name] for name in ORDER if name in args.scenarios]
    anchor, anchor_note = anchors.install(log) if args.anchors else (None, None)
    if anchor_note:
        log(anchor_note)
    if anchor:
        after_floor = next((i + 1 for i, s in enumerate(selected) if s.name == "floor"), 1)
        selected.insert(min(after_floor, len(selected)), anchors.scenario(seeded))
    log("counting SQL statements per request in-process")
    sql = asyncio.run(sql_per_request(seeded, selected, args.fast_path == "on"))

    env = {
        **os.environ,
        "DATABASE_URL": seeded.dsn,
        "SEGMENTS_MAX_SEGMENTS_PER_PROJECT": str(MAX_SEGMENTS),
        "SEGMENTS_FAST_PATH": "1" if args.fast_path == "on" else "0",
        "PYTHONUNBUFFERED": "1",
    }
    api_port = args.port or free_port()
    floor_port = args.port + 1 if args.port else free_port()
    ports = {}
    api_process = None
    if any(s.target == "api" for s in selected) or args.profiles or args.big_targets:
        log(
            f"starting segments serve on port {api_port} with {args.workers} worker(s),"
            f" fast path {args.fast_path}"
        )
        api_process = servers.start(
            "serve",
            [
                sys.executable,
                "-m",
                "api.cli",
                "serve",
                "--port",
                str(api_port),
                "--workers",
                str(args.workers),
            ],
            env,
            api_port,
        )
        ports["api"] = api_port
    if any(s.target == "floor" for s in selected):
        log(f"starting the floor app on port {floor_port}")
        servers.start(
            "floor",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.floor:app",
                "--host",
                load.HOST,
                "--port",
                str(floor_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
            floor_port,
        )
        ports["floor"] = floor_port
    if anchor:
        anchors.prepare(seeded.dsn)
        anchor_port = free_port()
        log(f"starting PostGraphile on port {anchor_port}")
        command = anchors.command(anchor, seeded.dsn, load.HOST, anchor_port)
        servers.start(anchors.NAME, command, env, anchor_port)
        ports[anchors.NAME] = anchor_port
    # CPU per request: each server's process tree, and PostgreSQL's (when it runs here).
    pids = {name: process.pid for name, process in servers.processes}
    postgres_pid = cpu.postmaster_pid(seeded.dsn)
    target_pid = {"api": pids.get("serve"), "floor": pids.get("floor"), **pids}

    rows: dict[str, dict[str, Any]] = {}
    pages: dict[str, Any] = {}
    for scenario in selected:
        port = ports[scenario.target]
        problem, document = check(scenario, port, seeded)
        pages[scenario.name] = document
        listed = rows.get("list")
        if (
            scenario.name in ("floor", anchors.NAME)
            and not problem
            and listed
            and not listed["problem"]
        ):
            list_keys = [n["key"] for n in pages["list"]["data"]["segments"]["nodes"]]
            if scenario.name == "floor":
                other_keys = [n["key"] for n in document["data"]["segments"]["nodes"]]
            else:
                other_keys = anchors.keys(document)
            if list_keys != other_keys:
                problem = f"the {scenario.name} page differs from the API's (keys or order)"
        if problem:
            log(f"{scenario.name}: {problem}")
        if args.warmup:
            drive(scenario, port, seeded, args, args.warmup, "warmup")
        log(f"{scenario.name}: {args.duration:g} s at concurrency {args.concurrency}")
        meter = cpu.Meter(target_pid.get(scenario.target), postgres_pid)
        load_1m, before = os.getloadavg()[0], meter.read()
        result = drive(scenario, port, seeded, args, args.duration, "load")
        cpu_ms, pg_ms = cpu.Meter.per_request_ms(before, meter.read(), result.requests)
        if scenario.name == "write":
            asyncio.run(retire_write_segments(seeded.dsn, seeded.project_id))
        rows[scenario.name] = {
            "rps": result.rps,
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "errors": result.errors,
            "requests": result.requests,
            "sql": sql.get(scenario.name, (None, None))[0],
            "acquires": sql.get(scenario.name, (None, None))[1],
            "cycles_per_s": result.cycles_per_s,
            "cpu_ms": cpu_ms,
            "pg_cpu_ms": pg_ms,
            "load": load_1m,
            "generator": result.generator,
            "problem": problem,
            "note": scenario.note,
        }
    if args.profiles:
        log(f"profile scenarios: {args.profile_runs} sequential requests each")
        rows |= profiles.measure(ports["api"], seeded.token, args.profile_runs)
        rows |= overlap.run(
            seeded.dsn, seeded.project_id, ports["api"], seeded.token, args.profile_runs
        )
        rows |= attributes.measure(ports["api"], seeded.token, args.profile_runs)
        rows |= impact.measure(ports["api"], seeded.token, args.profile_runs)
        for name in [*profiles.requests(), "attributes", "impact"]:
            if rows[name]["problem"]:
                log(f"{name}: {rows[name]['problem']}")
    if args.big_targets:
        log(f"big segments: {args.big_targets} keys, {args.profile_runs} runs each")
        rows |= big.measure(seeded.dsn, seeded.project_id, api_port, seeded.token, args)
    rss = rss_mb(api_process.pid) if api_process else None
    servers.stop_all()
    if args.profiles:
        log(f"import: writing and importing {args.profiles} NDJSON profiles")
        rows["import"] = profiles.time_import(seeded.dsn, args.profiles)
        if rows["import"]["problem"]:
            log(f"import: {rows['import']['problem']}")
    load_after = os.getloadavg()[0]

    def get(name: str, field: str) -> Any:
        return rows.get(name, {}).get(field)

    summary: dict[str, Any] = {
        "list_rps": _round(get("list", "rps")),
        "floor_rps": _round(get("floor", "rps")),
        "list_vs_floor": _ratio(get("list", "rps"), get("floor", "rps")),
        "list_cpu_ms": _round(get("list", "cpu_ms"), 3),
        "floor_cpu_ms": _round(get("floor", "cpu_ms"), 3),
        "postgraphile_cpu_ms": _round(get(anchors.NAME, "cpu_ms"), 3),
        "list_vs_postgraphile": _ratio(get("list", "rps"), get(anchors.NAME, "rps")),
        "list_cpu_vs_floor": _ratio(get("list", "cpu_ms"), get("floor", "cpu_ms")),
        "list_cpu_vs_postgraphile": _ratio(get("list", "cpu_ms"), get(anchors.NAME, "cpu_ms")),
        "anchors_note": anchor_note,
        "deep_vs_list": _ratio(get("deep", "rps"), get("list", "rps")),
        "search_vs_list": _ratio(get("search", "rps"), get("list", "rps")),
        "list_p99_ms": _round(get("list", "p99_ms"), 2),
        "health_rps": _round(get("health", "rps")),
        "server_rss_mb": rss,
        "write_cycles_per_s": _round(get("write", "cycles_per_s")),
        "profiles": args.profiles,
        "profiles_seed_s": _round(profile_seed.seed_seconds, 2) if profile_seed else None,
        "import_s": _round(get("import", "seconds"), 2),
    }
    for name, row in rows.items():
        summary[f"{name}_rps"] = _round(row["rps"])
        summary[f"{name}_p50_ms"] = _round(row["p50_ms"], 2)
        summary[f"{name}_p99_ms"] = _round(row["p99_ms"], 2)
        summary[f"{name}_errors"] = row["errors"]
        summary[f"{name}_sql"] = _round(row["sql"], 2)
        summary[f"{name}_pool_acquires"] = _round(row["acquires"], 2)
        summary[f"{name}_generator"] = row["generator"]
        if "cpu_ms" in row:
            summary[f"{name}_cpu_ms"] = _round(row["cpu_ms"], 3)
            summary[f"{name}_pg_cpu_ms"] = _round(row["pg_cpu_ms"], 3)
    summary |= {
        "problems": {name: row["problem"] for name, row in rows.items() if row["problem"]},
        "segments": seeded.live_segments,
        "flags": args.flags,
        "rules": args.rules,
        "seed_s": _round(seeded.seed_seconds, 2),
        "search_rows": seeded.search_rows,
        "deep_offset": seeded.deep_offset,
        "duration_s": args.duration,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "fast_path": args.fast_path,
        "cpus": cpus,
        # Other work on the machine skews every figure: the 1-minute load before and after.
        "load_avg": [round(load_before, 2), round(load_after, 2)],
    }
    report(rows, summary)
    failed = any(row["problem"] or row["errors"] for row in rows.values())
    servers.keep_logs = servers.keep_logs or failed
    return 1 if failed else 0


def run_replica(args: argparse.Namespace, servers: Servers) -> int:
    """--replica: the list (under load) and member_count (sequential) scenarios, first with
    the primary alone, then with one streaming replica beside it (DATABASE_REPLICA_URLS),
    each with the CPU seconds both PostgreSQL servers spent on it."""
    from bench.replica import StandbyPair
    from bench.seed import DATABASE_NAME

    folder = Path(tempfile.mkdtemp(prefix="segments-bench-replica-"))
    pair = StandbyPair(folder)
    log(f"building a primary and a hot standby under {folder}")
    pair.start()
    try:
        seeded = asyncio.run(
            prepare(
                pair.primary_url(),
                segments=args.segments,
                flags=args.flags,
                rules=args.rules,
                reuse=False,
            )
        )
        count = args.profiles or 100_000
        log(f"seeded {seeded.live_segments} segments; seeding {count} profiles")
        asyncio.run(profiles.prepare(seeded.dsn, seeded.project_id, count, False))
        asyncio.run(pair.replayed())
        listing = build(seeded)["list"]
        rows: dict[str, dict[str, Any]] = {}
        for mode, replicas in (("primary", ""), ("replica", pair.standby_url(DATABASE_NAME))):
            env = {
                **os.environ,
                "DATABASE_URL": seeded.dsn,
                "DATABASE_REPLICA_URLS": replicas,
                "SEGMENTS_MAX_SEGMENTS_PER_PROJECT": str(MAX_SEGMENTS),
                "PYTHONUNBUFFERED": "1",
            }
            port = free_port()
            log(f"{mode}: starting segments serve on port {port}")
            command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
            servers.start("serve", [*command, "--workers", str(args.workers)], env, port)
            problem, _ = check(listing, port, seeded)
            if args.warmup:
                drive(listing, port, seeded, args, args.warmup, "warmup")
            for name in ("list", "member_count"):
                before = cpu.cpu_seconds(pair.primary_data), cpu.cpu_seconds(pair.standby_data)
                if name == "list":
                    log(f"{mode} list: {args.duration:g} s at concurrency {args.concurrency}")
                    result = drive(listing, port, seeded, args, args.duration, "load")
                    row: dict[str, Any] = {
                        "rps": result.rps,
                        "p50_ms": result.p50_ms,
                        "p99_ms": result.p99_ms,
                        "errors": result.errors,
                        "problem": problem,
                    }
                else:
                    log(f"{mode} member_count: {args.profile_runs} sequential requests")
                    measured = profiles.measure(port, seeded.token, args.profile_runs, [name])
                    row = {k: measured[name][k] for k in ("rps", "p50_ms", "p99_ms", "errors")}
                    row["problem"] = measured[name]["problem"]
                after = cpu.cpu_seconds(pair.primary_data), cpu.cpu_seconds(pair.standby_data)
                row["primary_cpu_s"] = after[0] - before[0]
                row["replica_cpu_s"] = after[1] - before[1]
                rows[f"{name} ({mode})"] = row
            servers.stop_all()
    finally:
        servers.stop_all()
        pair.stop()
        shutil.rmtree(folder, ignore_errors=True)
    header = (
        f"{'scenario':<24} {'rps':>9} {'p50 ms':>9} {'p99 ms':>9} {'errors':>7} "
        f"{'primary CPU s':>14} {'replica CPU s':>14}"
    )
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(
            f"{name:<24} {_fmt(row['rps']):>9} {_fmt(row['p50_ms'], 2):>9} "
            f"{_fmt(row['p99_ms'], 2):>9} {row['errors']:>7} {_fmt(row['primary_cpu_s'], 2):>14} "
            f"{_fmt(row['replica_cpu_s'], 2):>14}"
            + (f"  !! {row['problem']}" if row["problem"] else "")
        )
    summary = {
        "segments": seeded.live_segments,
        "profiles": count,
        "duration_s": args.duration,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "rows": {
            name: {k: _round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
            for name, row in rows.items()
        },
    }
    print(json.dumps(summary, separators=(", ", ": ")))
    failed = any(row["problem"] or row["errors"] for row in rows.values())
    servers.keep_logs = servers.keep_logs or failed
    return 1 if failed else 0


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` runs and servers stop."""

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.wrk = None
    if args.generator in ("auto", "wrk"):
        args.wrk = shutil.which("wrk")
        if args.generator == "wrk" and not args.wrk:
            log("wrk is not on PATH")
            return 2
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    servers = Servers()
    atexit.register(servers.close)
    with interruptible():
        try:
            return run_replica(args, servers) if args.replica else run(args, servers)
        except KeyboardInterrupt:
            log("interrupted; stopping servers")
            return 130
        except Exception:
            servers.keep_logs = True
            raise
        finally:
            servers.close()


if __name__ == "__main__":
    sys.exit(main())
