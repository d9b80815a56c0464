"""What every evaluation of stored definitions shares: the context check and the evaluators of
stored segments, compiled once per stored version (evaluateSegment, evaluateTargeting)."""

from collections.abc import Mapping
from typing import Any

from core.versioned import PerVersion
from db.pool import Row
from rules.evaluate import CompiledSegment, compile_segment
from rules.problems import Problem, ProblemCode
from rules.profiles import MAX_ATTRIBUTES_DEPTH
from rules.values import json_problem

_compiled: PerVersion[CompiledSegment] = PerVersion()


def compiled_segment(row: Row | Mapping[str, Any]) -> CompiledSegment:
    """A stored segment's evaluator, compiled once per stored version."""
    return _compiled.get(
        (row["id"], row["version"], row["updated_at"]),
        lambda: compile_segment(
            logical_op=row["logical_op"],
            rules=row["rules"],
            force=row["force"],
            included=row["included"],
            excluded=row["excluded"],
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
