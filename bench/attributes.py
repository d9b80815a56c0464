"""The `attributes` row of `python -m bench --profiles N`: the first page of the attribute
catalogue (DESIGN §15, target 100 ms at 1,000,000 profiles), timed over sequential requests.

The page asks for everything the catalogue keeps (counts per path and type, definitions,
usedBySegments over the bench project's segments), not topValues, which scans on demand.
"""

import asyncio
import time
from typing import Any

import orjson

from bench import load
from bench.profiles import _percentile_ms
from bench.seed import PROJECT_KEY

PAGE = 50
ATTRIBUTES = """
query($projectKey: String!, $first: Int) {
  attributes(projectKey: $projectKey, first: $first) {
    totalCount
    nodes {
      path profiles usedBySegments
      types { jsonType profiles }
      definition { type description allowedValues }
    }
  }
}"""


def _problem(document: Any) -> str | None:
    data = document.get("data") if isinstance(document, dict) else None
    if not data or document.get("errors"):
        return f"errors: {orjson.dumps(document)[:300].decode()}"
    nodes = data["attributes"]["nodes"]
    if not nodes or not any(node["profiles"] for node in nodes):
        return "the catalogue lists no attribute that profiles hold"
    return None


def measure(port: int, token: str, runs: int) -> dict[str, dict[str, Any]]:
    return {"attributes": asyncio.run(_measure(port, token, runs))}


async def _measure(port: int, token: str, runs: int) -> dict[str, Any]:
    body = orjson.dumps(
        {"query": ATTRIBUTES, "variables": {"projectKey": PROJECT_KEY, "first": PAGE}}
    )
    request = load.http_request("POST", "/graphql", port, body, token)
    latencies: list[float] = []
    errors = 0
    problem = None
    for attempt in range(runs + 1):
        started = time.perf_counter()
        try:
            status, raw = await load.exchange(port, request)
            document = orjson.loads(raw)
        except (OSError, TimeoutError, ValueError) as error:
            status, document = 0, {"errors": [repr(error)]}
        elapsed = time.perf_counter() - started
        found = f"HTTP {status}" if status != 200 else _problem(document)
        if found:
            errors += 1
            problem = problem or found
        if attempt:
            latencies.append(elapsed)
    latencies.sort()
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
        "note": f"first page of {PAGE} attributes with counts, types and usedBySegments "
        f"(target 100 ms); {runs} sequential requests",
    }
