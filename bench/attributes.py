"""The `attributes` row of `python -m bench --profiles N`: the first page of the attribute
catalogue (DESIGN §15, target 100 ms at 1,000,000 profiles), timed over sequential requests.

The page asks for everything the catalogue keeps (counts per path and type, definitions,
usedBySegments over the bench project's segments), not topValues, which scans on demand.
"""

import asyncio
from typing import Any

import orjson

from bench import load
from bench.profiles import sequential_row, time_sequential
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
    timed = await time_sequential(port, request, runs, _problem)
    return sequential_row(
        timed,
        f"first page of {PAGE} attributes with counts, types and usedBySegments (target 100 ms)",
        runs,
    )
