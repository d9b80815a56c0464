"""What every evaluation of stored definitions shares: the context check and the evaluators of
stored segments, compiled once per stored version (evaluateSegment, evaluateTargeting)."""

from collections.abc import Mapping
from typing import Any

from core.versioned import PerVersion
from db.members import references_from_rows
from db.pool import Row
from rules.evaluate import CompiledSegment, compile_segment
from rules.problems import Problem, ProblemCode
from rules.profiles import MAX_ATTRIBUTES_DEPTH
from rules.values import json_problem

_compiled: PerVersion[CompiledSegment] = PerVersion()


def _version(row: Row | Mapping[str, Any]) -> tuple[Any, ...]:
    return (row["id"], row["version"], row["updated_at"])


def compiled_segment(
    row: Row | Mapping[str, Any], closure: Mapping[int, Row | Mapping[str, Any]] | None = None
) -> CompiledSegment:
    """A stored segment's evaluator, compiled once per stored version of it and of every
    segment it reaches through references (`closure`, rows by id), so a referenced segment
    that changed is never evaluated as it was."""
    closure = closure or {}
    return _compiled.get(
        (_version(row), *(_version(closure[i]) for i in sorted(closure))),
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
