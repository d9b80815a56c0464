"""evaluateSegment: does a context match a segment, and which conditions decided it."""

from collections.abc import Mapping
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from db import segments as db_segments
from rules.evaluate import CompiledSegment, compile_segment
from rules.profiles import MAX_ATTRIBUTES_DEPTH
from rules.values import json_problem
from schema.context import AppInfo
from schema.enums import ConditionOperator
from schema.errors import bad_user_input, not_found
from schema.versioned import PerVersion


@strawberry.enum(description="Why a segment matched or not.")
class EvaluationReason(Enum):
    FORCED = strawberry.enum_value("FORCED", description="The segment has force: true.")
    INCLUDED = strawberry.enum_value("INCLUDED", description="The targetingKey is in included.")
    EXCLUDED = strawberry.enum_value("EXCLUDED", description="The targetingKey is in excluded.")
    RULES_MATCHED = strawberry.enum_value("RULES_MATCHED", description="The rules matched.")
    RULES_NOT_MATCHED = strawberry.enum_value(
        "RULES_NOT_MATCHED", description="The rules did not match."
    )


@strawberry.type(description="The outcome of one leaf condition.")
class ConditionResult:
    attribute: str = strawberry.field(description="The condition's attribute path.")
    operator: ConditionOperator = strawberry.field(description="The condition's operator.")
    matched: bool = strawberry.field(description="Whether the condition held.")
    actual: JSON | None = strawberry.field(
        description="The value found in the flattened context, null when absent."
    )


@strawberry.type(description="Result of evaluating a segment against a context.")
class SegmentEvaluation:
    matched: bool = strawberry.field(description="Whether the context is in the segment.")
    reason: EvaluationReason = strawberry.field(description="What decided it.")
    conditions: list[ConditionResult] = strawberry.field(
        description="Every leaf condition's outcome when the rules decided; empty otherwise."
    )


_compiled: PerVersion[CompiledSegment] = PerVersion()


def compiled_segment(row: Mapping[str, Any]) -> CompiledSegment:
    """A segment's evaluator, compiled once per stored version."""
    return _compiled.get(
        (row["id"], row["version"], row["updated_at"]),
        lambda: compile_segment(
            logical_op=row["logical_op"],
            rules=row["rules"],
            force=row["force"],
            included=row["included"],
            excluded=row["excluded"],
            salt=row["salt"],
        ),
    )


async def evaluate_segment(
    info: AppInfo, project_key: str, key: str, context: Any
) -> SegmentEvaluation:
    if not isinstance(context, dict):
        raise bad_user_input("`context` must be a JSON object.")
    # Bounded like a stored profile's attributes, so whatever comes back in `actual` can be
    # written out (no RecursionError while serialising) and every number is the one sent.
    problem = json_problem(context, MAX_ATTRIBUTES_DEPTH)
    if problem is not None:
        raise bad_user_input(f"`context`: {problem}.")
    ctx = info.context
    row = await ctx.db.run(db_segments.segment_by_key, ctx.project_id_for(project_key), key)
    if row is None:
        raise not_found(f"No segment with key {key!r} in project {project_key!r}.")
    result = compiled_segment(row).evaluate(context)
    return SegmentEvaluation(
        matched=result.matched,
        reason=result.reason,
        conditions=[
            ConditionResult(
                attribute=c.attribute,
                operator=c.operator,
                matched=c.matched,
                actual=c.actual,
            )
            for c in result.conditions
        ],
    )
