"""The benchmark's `overlap` row (DESIGN §15): segmentOverlap of two 5-condition segments over
the bench profiles (`--profiles`), one request at a time; target ≤ 2 s at 1,000,000."""

import asyncio
from typing import Any

from bench import load, profiles
from bench.seed import PROJECT_KEY
from db import segments
from db.pool import connect
from rules.problems import Refused

# Sorted after the generated names, like the profile scenarios' segments.
OTHER_KEY = "zz_bench_overlap_other"
# A second 5-condition segment that overlaps the first one partly.
OTHER_RULES = [
    profiles._c("country", "IN", ["DE", "FR", "US", "GB", "JP", "BR"]),
    profiles._c("plan", "NEQ", "free"),
    profiles._c("user.age", "LT", 50),
    profiles._c("beta_opt_in", "EQ", False),
    profiles._c("device.os", "STARTS_WITH", "iOS"),
]
OVERLAP = """
query Overlap($projectKey: String!, $a: String!, $b: String!) {
  segmentOverlap(projectKey: $projectKey, a: $a, b: $b) { onlyA onlyB both either }
}"""


async def _prepare(dsn: str, project_id: int) -> None:
    conn = await connect(dsn)
    try:
        if await segments.segment_by_key(conn, project_id, OTHER_KEY) is None:
            created = await segments.create_segment(
                conn,
                project_id,
                {
                    "key": OTHER_KEY,
                    "name": "ZZ Bench overlap other",
                    "description": None,
                    "tags": ["bench"],
                    "logical_op": "AND",
                    "rules": OTHER_RULES,
                    "force": False,
                    "included": [],
                    "excluded": [],
                },
                actor=profiles.ACTOR,
                derive_key_from=None,
                max_live=10**9,
            )
            assert not isinstance(created, Refused), created
    finally:
        await conn.close()


def _check(document: Any) -> str | None:
    data = document.get("data") if isinstance(document, dict) else None
    if not data or document.get("errors") or not data.get("segmentOverlap"):
        return f"errors: {str(document)[:300]}"
    found = data["segmentOverlap"]
    if found["either"] != found["onlyA"] + found["onlyB"] + found["both"] or not found["both"]:
        return f"unexpected overlap {found}"
    return None


def run(dsn: str, project_id: int, port: int, token: str, runs: int) -> dict[str, dict[str, Any]]:
    """The `overlap` row: the second segment created if missing, then `runs` requests."""
    asyncio.run(_prepare(dsn, project_id))
    variables = {"projectKey": PROJECT_KEY, "a": profiles.COUNT_KEY, "b": OTHER_KEY}
    request = load.http_request("POST", "/graphql", port, profiles._body(OVERLAP, variables), token)
    timed = asyncio.run(profiles.time_sequential(port, request, runs, _check))
    return {
        "overlap": profiles.sequential_row(
            timed, "segmentOverlap of two 5-condition segments; target 2 s", runs
        )
    }
