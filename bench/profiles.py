"""The benchmark's profile part (DESIGN §11): N generated profiles in the bench project, then
the latency of memberCount, a first page of members and previewSegment, one request at a
time (the goals are per-request latencies), and the time `segments profiles import` takes
for an NDJSON file of N profiles.

Profiles come from a fixed random seed over the attributes the bench segments test, so two
runs with the same N hold the same profiles.
"""

import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench import load
from bench.seed import COUNTRIES, PLANS, PROJECT_KEY
from db import profiles as db_profiles
from db import projects, segments
from db.pool import connect
from rules.problems import Refused

ROOT = Path(__file__).resolve().parents[1]
PROFILE_SEED = 20261127
IMPORT_PROJECT = "bench-import"
ACTOR = "bench"
# Sorted after the 100,000 generated names, so the list scenarios never see them.
COUNT_KEY = "zz_bench_five_conditions"
PAGE_KEY = "zz_bench_pro_europe"
# "In the five-condition segment and not in pro Europe": memberCount with two references.
REFS_KEY = "zz_bench_two_references"
PAGE = 50
SAMPLE = 10


def _c(attribute: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"attribute": attribute, "operator": operator, "value": value}


EUROPE = ["DE", "FR", "ES", "IT", "NL", "AT", "BE", "IE", "PL", "SE", "DK", "NO", "CH", "GB"]
# The 5-condition segment of the memberCount and preview goals.
FIVE_CONDITIONS = [
    _c("country", "IN", EUROPE),
    _c("plan", "IN", ["pro", "premium", "business", "enterprise"]),
    _c("user.age", "GTE", 25),
    _c("sessions_30d", "GT", 3),
    _c("email", "NOT_CONTAINS", "+test"),
]
# A segment matching about 8% of profiles, for the members page goal (at least 5%).
PRO_EUROPE = [_c("plan", "EQ", "pro"), _c("country", "IN", EUROPE)]

MEMBER_COUNT = """
query MemberCount($projectKey: String!, $key: String!) {
  segment(projectKey: $projectKey, key: $key) { memberCount }
}"""
MEMBERS_PAGE = """
query MembersPage($projectKey: String!, $key: String!, $first: Int) {
  segment(projectKey: $projectKey, key: $key) {
    members(first: $first) {
      pageInfo { hasNextPage endCursor }
      nodes { id targetingKey attributes updatedAt }
    }
  }
}"""
PREVIEW = """
query Preview($input: PreviewSegmentInput!) {
  previewSegment(input: $input) {
    memberCount
    sample { targetingKey attributes }
    userErrors { field code message }
  }
}"""

_NAMES = ["ada", "alan", "grace", "linus", "radia", "ken", "barbara", "edsger", "margaret", "tim"]
_DOMAINS = ["example.com", "acme.io", "gmail.com", "outlook.com", "uni.edu", "globex.com"]
_OS = ["iOS 17.4", "iOS 16.7", "Android 14", "Android 13", "Windows 11", "macOS 14.4"]
_LOCALES = ["en", "de", "fr", "es", "ja", "pt-BR"]
_TAGS = ["early-adopter", "vip", "churn-risk", "newsletter", "trial-extended"]


def generate(count: int, prefix: str = "user-") -> Iterator[tuple[str, dict[str, Any]]]:
    """`count` varied profiles, the same ones for the same arguments."""
    rng = random.Random(PROFILE_SEED)
    first_day = date(2019, 1, 1)
    for number in range(count):
        name = rng.choice(_NAMES)
        test = "+test" if rng.random() < 0.03 else ""
        attributes: dict[str, Any] = {
            "plan": rng.choice(PLANS),
            "country": rng.choice(COUNTRIES),
            "email": f"{name}{test}.{number}@{rng.choice(_DOMAINS)}",
            "user": {
                "age": rng.randint(13, 80),
                "plan": rng.choice(PLANS),
                "tags": rng.sample(_TAGS, rng.randint(0, 2)),
            },
            "sessions_30d": round(rng.uniform(0, 50), 1),
            "device": {"os": rng.choice(_OS)},
            "beta_opt_in": rng.random() < 0.2,
            "org": {
                "id": f"org-{rng.randrange(5000)}",
                "seats": rng.choice([1, 5, 10, 50, 100, 500]),
            },
            "app_version": f"{rng.randint(1, 5)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}",
            "signup_date": (first_day + timedelta(days=rng.randrange(2500))).isoformat(),
            "locale": rng.choice(_LOCALES),
        }
        if rng.random() < 0.1:
            del attributes["user"]  # some profiles lack whole branches
        yield f"{prefix}{number:07d}", attributes


@dataclass(frozen=True)
class ProfilesSeeded:
    count: int
    seed_seconds: float | None  # None when the profiles were there already


async def prepare(dsn: str, project_id: int, count: int, reuse: bool) -> ProfilesSeeded:
    """`count` profiles in the bench project and the two segments the scenarios read."""
    conn = await connect(dsn)
    try:
        for key, name, rules in (
            (COUNT_KEY, "ZZ Bench five conditions", FIVE_CONDITIONS),
            (PAGE_KEY, "ZZ Bench pro Europe", PRO_EUROPE),
        ):
            if await segments.segment_by_key(conn, project_id, key) is None:
                created = await segments.create_segment(
                    conn,
                    project_id,
                    {
                        "key": key,
                        "name": name,
                        "description": None,
                        "tags": ["bench"],
                        "logical_op": "AND",
                        "rules": rules,
                        "force": False,
                        "included": [],
                        "excluded": [],
                    },
                    actor=ACTOR,
                    derive_key_from=None,
                    max_live=10**9,
                )
                assert not isinstance(created, Refused), created
        if await segments.segment_by_key(conn, project_id, REFS_KEY) is None:
            ids = [
                (await segments.segment_by_key(conn, project_id, key))["id"]
                for key in (COUNT_KEY, PAGE_KEY)
            ]
            created = await segments.create_segment(
                conn,
                project_id,
                {
                    "key": REFS_KEY,
                    "name": "ZZ Bench two references",
                    "description": None,
                    "tags": ["bench"],
                    "logical_op": "AND",
                    "rules": [
                        {"segmentId": ids[0], "negate": False},
                        {"segmentId": ids[1], "negate": True},
                    ],
                    "force": False,
                    "included": [],
                    "excluded": [],
                },
                actor=ACTOR,
                derive_key_from=None,
                max_live=10**9,
            )
            assert not isinstance(created, Refused), created
        if reuse and await db_profiles.count_all_profiles(conn, project_id) == count:
            return ProfilesSeeded(count, None)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("DELETE FROM profiles WHERE project_id = $1", project_id)
            await db_profiles.copy_profiles(conn, project_id, generate(count))
        await conn.execute("VACUUM ANALYZE profiles")
        return ProfilesSeeded(count, time.perf_counter() - started)
    finally:
        await conn.close()


def _body(query: str, variables: dict[str, Any]) -> bytes:
    return orjson.dumps({"query": query, "variables": variables})


def requests() -> dict[str, tuple[bytes, str]]:
    """Each profile scenario's GraphQL body and note."""
    return {
        "member_count": (
            _body(MEMBER_COUNT, {"projectKey": PROJECT_KEY, "key": COUNT_KEY}),
            "memberCount, 5 conditions",
        ),
        "member_count_refs": (
            _body(MEMBER_COUNT, {"projectKey": PROJECT_KEY, "key": REFS_KEY}),
            "memberCount, in the 5-condition segment and not in pro Europe (2 references); "
            "target 1.5 s",
        ),
        "members_page": (
            _body(MEMBERS_PAGE, {"projectKey": PROJECT_KEY, "key": PAGE_KEY, "first": PAGE}),
            "first 50 members, ~8% match",
        ),
        "preview": (
            _body(
                PREVIEW,
                {
                    "input": {
                        "projectKey": PROJECT_KEY,
                        "sampleSize": SAMPLE,
                        "rules": [{"condition": c} for c in FIVE_CONDITIONS],
                    }
                },
            ),
            "previewSegment, 5 conditions",
        ),
    }


def _problem(name: str, document: Any, counted: dict[str, int]) -> str | None:
    data = document.get("data") if isinstance(document, dict) else None
    if not data or document.get("errors"):
        return f"errors: {orjson.dumps(document)[:300].decode()}"
    if name == "member_count":
        counted["five"] = data["segment"]["memberCount"]
        return None if counted["five"] > 0 else "no members"
    if name == "member_count_refs":
        refs = data["segment"]["memberCount"]
        if "five" in counted and not 0 < refs <= counted["five"]:
            return f"{refs} members with references, {counted['five']} in the referenced segment"
        return None
    if name == "members_page":
        nodes = data["segment"]["members"]["nodes"]
        return None if len(nodes) == PAGE else f"{len(nodes)} members instead of {PAGE}"
    preview = data["previewSegment"]
    if preview["userErrors"] or len(preview["sample"]) != SAMPLE:
        return f"unexpected preview {orjson.dumps(preview)[:300].decode()}"
    if "five" in counted and preview["memberCount"] != counted["five"]:
        return f"preview counts {preview['memberCount']}, memberCount {counted['five']}"
    return None


def measure(
    port: int, token: str, runs: int, names: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Each scenario (or those `names`) `runs` times, one request at a time, after one
    unmeasured request."""
    return asyncio.run(_measure(port, token, runs, names))


async def _measure(
    port: int, token: str, runs: int, names: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    counted: dict[str, int] = {}
    for name, (body, note) in requests().items():
        if names is not None and name not in names:
            continue
        request = load.http_request("POST", "/graphql", port, body, token)
        timed = await time_sequential(
            port, request, runs, lambda document, name=name: _problem(name, document, counted)
        )
        rows[name] = sequential_row(timed, note, runs)
    return rows


Timed = tuple[list[float], int, str | None]


async def time_sequential(
    port: int, request: bytes, runs: int, check: Callable[[Any], str | None]
) -> Timed:
    """`runs` timed requests after one unmeasured one: the sorted latencies, the number of
    failed answers and the first problem. `check(document)` says what is wrong with an
    HTTP 200 answer, or None."""
    latencies: list[float] = []
    errors, problem = 0, None
    for attempt in range(runs + 1):
        started = time.perf_counter()
        try:
            status, raw = await load.exchange(port, request)
            found = f"HTTP {status}" if status != 200 else check(orjson.loads(raw))
        except (OSError, TimeoutError, ValueError) as error:
            found = repr(error)
        elapsed = time.perf_counter() - started
        if found:
            errors += 1
            problem = problem or found
        if attempt:
            latencies.append(elapsed)
    latencies.sort()
    return latencies, errors, problem


def sequential_row(timed: Timed, note: str, runs: int) -> dict[str, Any]:
    """The bench row of `time_sequential`'s figures."""
    latencies, errors, problem = timed
    return {
        "rps": len(latencies) / sum(latencies) if latencies else None,
        "p50_ms": _percentile_ms(latencies, 0.50),
        "p99_ms": _percentile_ms(latencies, 0.99),
        "errors": errors,
        "requests": len(latencies),
        "sql": None,
        "acquires": None,
        "cycles_per_s": None,
        "generator": "sequential",
        "problem": problem,
        "note": f"{note}; {runs} sequential requests",
    }


def _percentile_ms(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    return values[min(len(values) - 1, max(0, round(fraction * len(values)) - 1))] * 1000


async def _empty_import_project(dsn: str, vacuum: bool = False) -> None:
    """The import project, created if missing, without profiles."""
    conn = await connect(dsn)
    try:
        project = await projects.project_by_key(conn, IMPORT_PROJECT)
        if project is None:
            project = await projects.create_project(conn, IMPORT_PROJECT, "Bench import")
        await conn.execute("DELETE FROM profiles WHERE project_id = $1", project["id"])
        if vacuum:
            await conn.execute("VACUUM ANALYZE profiles")
    finally:
        await conn.close()


def time_import(dsn: str, count: int) -> dict[str, Any]:
    """Write an NDJSON file of `count` profiles and time `segments profiles import` on it, into
    a project of its own that starts empty."""
    asyncio.run(_empty_import_project(dsn))
    folder = Path(tempfile.mkdtemp(prefix="segments-bench-import-"))
    file = folder / "profiles.ndjson"
    try:
        with file.open("wb") as out:
            for key, attributes in generate(count, prefix="import-"):
                out.write(
                    orjson.dumps(
                        {"targetingKey": key, "attributes": attributes},
                        option=orjson.OPT_APPEND_NEWLINE,
                    )
                )
        size_mb = file.stat().st_size / 2**20
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "api.cli",
                "profiles",
                "import",
                "--project",
                IMPORT_PROJECT,
                str(file),
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": dsn},
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
    finally:
        file.unlink(missing_ok=True)
        folder.rmdir()
    imported = re.search(r"imported (\d+) profiles", result.stdout)
    problem = None
    if result.returncode != 0 or not imported or int(imported[1]) != count:
        problem = f"exit {result.returncode}: {(result.stdout + result.stderr)[-300:]}"
    # Leave the table as the profile scenarios found it (untimed).
    asyncio.run(_empty_import_project(dsn, vacuum=True))
    return {
        "rps": count / seconds if seconds else None,
        "p50_ms": None,
        "p99_ms": None,
        "errors": 1 if problem else 0,
        "requests": 1,
        "sql": None,
        "acquires": None,
        "cycles_per_s": None,
        "generator": "cli",
        "problem": problem,
        "note": f"segments profiles import: {count:,} NDJSON profiles ({size_mb:,.0f} MB) "
        f"in {seconds:.1f} s (rps = profiles/s)",
        "seconds": seconds,
    }
