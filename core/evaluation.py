"""What every evaluation of stored definitions shares: the context check and the evaluators of
stored segments, compiled once per stored version (evaluateSegment, evaluateTargeting)."""

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from core.versioned import PerVersion
from db.members import references_from_rows
from db.pool import Row
from db.segment_targets import target_hits
from rules.evaluate import CompiledSegment, compile_segment, targeting_key_of
from rules.problems import Problem, ProblemCode
from rules.profiles import MAX_ATTRIBUTES_DEPTH
from rules.values import json_problem

_compiled: PerVersion[CompiledSegment] = PerVersion()


def _version(row: Row | Mapping[str, Any]) -> tuple[Any, ...]:
    return (row["id"], row["version"], row["updated_at"])


Hits = frozenset[tuple[int, str]]
NO_HITS: Hits = frozenset()


async def big_list_hits(
    conn: asyncpg.Connection,
    project_id: int,
    rows: Iterable[Row | Mapping[str, Any]],
    context: object,
) -> tuple[Hits, str | None]:
    """Which lists of the big segments among `rows` hold the context's targetingKey, and
    that key: one primary-key probe per list, no statement when no row is big. The
    evaluator stays pure: `with_hits` gives it rows whose lists are just what was found."""
    big = sorted({row["id"] for row in rows if row["unbounded"]})
    key = targeting_key_of(context)
    if not big or key is None:
        return NO_HITS, key
    return frozenset(await target_hits(conn, project_id, big, key)), key


def with_hits(row: Row | Mapping[str, Any], hits: Hits, key: str | None) -> Row | Mapping[str, Any]:
    """A big segment's row with its lists standing for the rows looked up: [key] where the
    key was found, [] elsewhere (a standard segment's row as it is)."""
    if not row["unbounded"]:
        return row
    return {
        **dict(row),
        "included": [key] if (row["id"], "included") in hits else [],
        "excluded": [key] if (row["id"], "excluded") in hits else [],
    }


def closure_with_hits(
    closure: Mapping[int, Row | Mapping[str, Any]], hits: Hits, key: str | None
) -> dict[int, Row | Mapping[str, Any]]:
    return {segment_id: with_hits(row, hits, key) for segment_id, row in closure.items()}


def compiled_segment(
    row: Row | Mapping[str, Any],
    closure: Mapping[int, Row | Mapping[str, Any]] | None = None,
    hits: Hits = NO_HITS,
    key: str | None = None,
) -> CompiledSegment:
    """A stored segment's evaluator, compiled once per stored version of it and of every
    segment it reaches through references (`closure`, rows by id), so a referenced segment
    that changed is never evaluated as it was. `hits` and `key` (`big_list_hits`) stand
    for the lists of the big segments among them."""
    closure = closure or {}
    if hits:
        row, closure = with_hits(row, hits, key), closure_with_hits(closure, hits, key)
    return _compiled.get(
        (
            _version(row),
            *(_version(closure[i]) for i in sorted(closure)),
            *((tuple(sorted(hits)), key) if hits else ()),
        ),
        lambda: compile_segment(
            logical_op=row["logical_op"],
            rules=row["rules"],
            force=row["force"],
            included=row["included"],
            excluded=row["excluded"],
            salt=row["salt"],
            references=references_from_rows(closure),
            key=row["key"],
        ),
    )


def context_problems(context: object) -> list[Problem]:
    """Why a client's evaluation context cannot be evaluated, if it cannot: it must be a JSON
    object, bounded like a stored profile's attributes, so whatever comes back in a
    condition's `actual` can be written out (no RecursionError while serialising) and every
    number is the one sent."""
    if not isinstance(context, dict):
        return [
            Problem(("context",), ProblemCode.INVALID_INPUT, "`context` must be a JSON object.")
        ]
    problem = json_problem(context, MAX_ATTRIBUTES_DEPTH)
    if problem is not None:
        return [Problem(("context",), ProblemCode.INVALID_INPUT, f"`context`: {problem}.")]
    return []
