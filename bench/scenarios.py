"""The benchmark's scenarios: what each one sends, where, and what a correct answer looks like."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bench.evaluate import CONTEXT as EVAL_CONTEXT
from bench.seed import EVAL_KEY, EVAL_REFS_KEY, PROJECT_KEY, SEARCH_TERM, Seeded
from schema.pagination import encode_cursor

SEGMENT_FIELDS = """
fragment SegmentFields on Segment {
  id key name description tags logicalOp force included excluded version
  createdAt updatedAt deletedAt deleted
  rules {
    ... on Condition { attribute operator value }
    ... on ConditionGroup {
      logicalOp
      rules { ... on Condition { attribute operator value } }
    }
  }
  usage {
    usageCount
    usedInFlags { ruleCount flag { id key name } environment { key } }
  }
}
"""

LIST = (
    """
query List($projectKey: String!, $first: Int, $after: String, $search: String) {
  segments(projectKey: $projectKey, first: $first, after: $after, search: $search) {
    pageInfo { hasNextPage endCursor }
    nodes { ...SegmentFields }
  }
}
"""
    + SEGMENT_FIELDS
)

ONE = (
    """
query One($projectKey: String!, $key: String!) {
  segment(projectKey: $projectKey, key: $key) { ...SegmentFields }
}
"""
    + SEGMENT_FIELDS
)

EVALUATE = """
query Evaluate($projectKey: String!, $key: String!, $context: JSON!) {
  evaluateSegment(projectKey: $projectKey, key: $key, context: $context) {
    matched reason conditions { attribute operator matched actual }
    segmentMatches {
      segmentKey negate matched
      evaluation { matched reason conditions { attribute operator matched actual } }
    }
  }
}
"""

ORDER = ["health", "list", "floor", "search", "deep", "one", "evaluate", "evaluate_refs", "write"]
PAGE = 50


@dataclass(frozen=True)
class Scenario:
    name: str
    target: str  # "api" or "floor"
    method: str
    path: str
    body: bytes | None
    # Given the parsed response of a 200, a problem to report, or None when it looks right.
    check: Callable[[Any], str | None]
    note: str = ""
    # Sends the seeded API token (the PostGraphile anchor takes none).
    authenticated: bool = True


def _body(query: str, variables: dict[str, Any]) -> bytes:
    return orjson.dumps({"query": query, "variables": variables})


def _nodes(document: Any) -> list[dict[str, Any]]:
    return document["data"]["segments"]["nodes"]


def build(seeded: Seeded) -> dict[str, Scenario]:
    expect = min(PAGE, seeded.live_segments)
    deep_expect = min(PAGE, seeded.live_segments - seeded.deep_offset)
    cursor = encode_cursor("NAME", seeded.deep_cursor_name, seeded.deep_cursor_id)
    list_vars = {"projectKey": PROJECT_KEY, "first": PAGE}

    def page_of(size: int) -> Callable[[Any], str | None]:
        def check(document: Any) -> str | None:
            nodes = _nodes(document)
            return None if len(nodes) == size else f"{len(nodes)} segments instead of {size}"

        return check

    def search_check(document: Any) -> str | None:
        nodes = _nodes(document)
        wrong = [n["key"] for n in nodes if SEARCH_TERM not in (n["name"] + n["key"]).lower()]
        if not nodes or wrong:
            return f"{len(nodes)} segments, {len(wrong)} not matching {SEARCH_TERM!r}"
        return None

    def one_check(document: Any) -> str | None:
        segment = document["data"]["segment"]
        if segment is None or segment["usage"]["usageCount"] < 1:
            return f"segment {seeded.one_key!r} missing or unused"
        return None

    def evaluate_check(document: Any) -> str | None:
        result = document["data"]["evaluateSegment"]
        if not result["matched"] or len(result["conditions"]) != 10:
            return f"expected a match over 10 conditions, got {result}"
        return None

    def evaluate_refs_check(document: Any) -> str | None:
        result = document["data"]["evaluateSegment"]
        matches = [m["matched"] for m in result["segmentMatches"]]
        if not result["matched"] or len(result["conditions"]) != 10 or matches != [True, True]:
            return f"expected a match over 10 conditions and 2 references, got {result}"
        return None

    def health_check(document: Any) -> str | None:
        return None if document.get("status") == "ok" else f"unexpected {document}"

    return {
        "health": Scenario(
            "health", "api", "GET", "/health/live", None, health_check, "generator ceiling"
        ),
        "list": Scenario(
            "list",
            "api",
            "POST",
            "/graphql",
            _body(LIST, list_vars),
            page_of(expect),
            "first page of 50 with usage",
        ),
        "floor": Scenario(
            "floor",
            "floor",
            "POST",
            "/graphql",
            _body(LIST, list_vars),
            page_of(expect),
            "same SQL via asyncpg + orjson",
        ),
        "search": Scenario(
            "search",
            "api",
            "POST",
            "/graphql",
            _body(LIST, {**list_vars, "search": SEARCH_TERM}),
            search_check,
            f"search {SEARCH_TERM!r}: {seeded.search_rows} rows match",
        ),
        "deep": Scenario(
            "deep",
            "api",
            "POST",
            "/graphql",
            _body(LIST, {**list_vars, "after": cursor}),
            page_of(deep_expect),
            f"after {seeded.deep_offset} rows",
        ),
        "one": Scenario(
            "one",
            "api",
            "POST",
            "/graphql",
            _body(ONE, {"projectKey": PROJECT_KEY, "key": seeded.one_key}),
            one_check,
            "segment(key) with usage",
        ),
        "evaluate": Scenario(
            "evaluate",
            "api",
            "POST",
            "/graphql",
            _body(EVALUATE, {"projectKey": PROJECT_KEY, "key": EVAL_KEY, "context": EVAL_CONTEXT}),
            evaluate_check,
            "10 conditions, matching context",
        ),
        "evaluate_refs": Scenario(
            "evaluate_refs",
            "api",
            "POST",
            "/graphql",
            _body(
                EVALUATE, {"projectKey": PROJECT_KEY, "key": EVAL_REFS_KEY, "context": EVAL_CONTEXT}
            ),
            evaluate_refs_check,
            "10 conditions + 2 segment references (one negated); target within 2x of evaluate",
        ),
        "write": Scenario(
            "write", "api", "POST", "/graphql", None, lambda _: None, "create+update+delete"
        ),
    }
