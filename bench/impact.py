"""The benchmark's impact row (DESIGN §14): segmentChangeImpact of a 5-condition change of the
5-condition bench segment over the stored profiles (`--profiles N`), counts, both samples and
affected flags in one request, one request at a time. Goal: ≤ 2 s at 1,000,000 profiles."""

import asyncio
from typing import Any

import orjson

from bench import load
from bench.profiles import (
    COUNT_KEY,
    EUROPE,
    FIVE_CONDITIONS,
    SAMPLE,
    _c,
    sequential_row,
    time_sequential,
)
from bench.seed import PROJECT_KEY

# Every condition of FIVE_CONDITIONS changed: who enters and who leaves both matter.
CHANGED = [
    _c("country", "IN", [*EUROPE, "US"]),
    _c("plan", "IN", ["pro", "business", "enterprise"]),
    _c("user.age", "GTE", 30),
    _c("sessions_30d", "GT", 5),
    _c("email", "NOT_CONTAINS", "@example.com"),
]
assert len(CHANGED) == len(FIVE_CONDITIONS)

SEGMENT_ID = """
query($projectKey: String!, $key: String!) { segment(projectKey: $projectKey, key: $key) { id } }"""
IMPACT = """
query Impact($input: UpdateSegmentInput!, $first: Int) {
  segmentChangeImpact(input: $input) {
    impact {
      memberCountBefore memberCountAfter entering leaving
      sampleEntering(first: $first) { targetingKey }
      sampleLeaving(first: $first) { targetingKey }
      affectedFlags { flag { key } environment { key } }
    }
    userErrors { field code message }
  }
}"""


def measure(port: int, token: str, runs: int) -> dict[str, dict[str, Any]]:
    """The `impact` row: `runs` sequential requests after one unmeasured one."""
    return asyncio.run(_measure(port, token, runs))


async def _post(port: int, token: str, query: str, variables: dict[str, Any]) -> Any:
    body = orjson.dumps({"query": query, "variables": variables})
    status, raw = await load.exchange(
        port, load.http_request("POST", "/graphql", port, body, token)
    )
    return status, orjson.loads(raw)


def _problem(status: int, document: Any) -> str | None:
    if status != 200 or not isinstance(document, dict) or document.get("errors"):
        return f"HTTP {status}: {orjson.dumps(document)[:300].decode()}"
    payload = document["data"]["segmentChangeImpact"]
    found = payload["impact"]
    if payload["userErrors"] or found is None:
        return f"refused: {orjson.dumps(payload)[:300].decode()}"
    before, after = found["memberCountBefore"], found["memberCountAfter"]
    entering, leaving = found["entering"], found["leaving"]
    if before - leaving + entering != after or not (entering and leaving):
        return f"inconsistent counts {before} {after} +{entering} -{leaving}"
    if len(found["sampleEntering"]) != SAMPLE or len(found["sampleLeaving"]) != SAMPLE:
        return "short samples"
    return None


async def _measure(port: int, token: str, runs: int) -> dict[str, dict[str, Any]]:
    status, document = await _post(
        port, token, SEGMENT_ID, {"projectKey": PROJECT_KEY, "key": COUNT_KEY}
    )
    segment_id = document["data"]["segment"]["id"]
    variables = {
        "input": {"id": segment_id, "rules": [{"condition": c} for c in CHANGED]},
        "first": SAMPLE,
    }
    figures = ""

    def check(document: Any) -> str | None:
        nonlocal figures
        found = _problem(200, document)
        if not found:
            counts = document["data"]["segmentChangeImpact"]["impact"]
            figures = (
                f"{counts['memberCountBefore']:,} → {counts['memberCountAfter']:,}, "
                f"+{counts['entering']:,} −{counts['leaving']:,}"
            )
        return found

    body = orjson.dumps({"query": IMPACT, "variables": variables})
    request = load.http_request("POST", "/graphql", port, body, token)
    timed = await time_sequential(port, request, runs, check)
    return {
        "impact": sequential_row(
            timed,
            f"segmentChangeImpact, 5 conditions changed ({figures}), counts, samples "
            f"of {SAMPLE} and flags; target 2 s",
            runs,
        )
    }
