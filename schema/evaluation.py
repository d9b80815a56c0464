"""evaluateSegment: does a context match a segment, and which conditions decided it."""

from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from core.evaluation import NO_HITS, big_list_hits, compiled_segment, context_problems
from db import segments as db_segments
from rules.evaluate import Evaluation
from rules.problems import Refused
from schema.context import AppInfo
from schema.enums import ConditionOperator
from schema.errors import not_found, query_error


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
    segment_matches: list["SegmentMatchResult"] = strawberry.field(
        description="Every reference to another segment, when the rules decided, in rule "
        "order (depth first through nested groups); empty otherwise."
    )


@strawberry.type(description="The outcome of one reference to another segment.")
class SegmentMatchResult:
    segment_key: str = strawberry.field(description="The referenced segment's key.")
    negate: bool = strawberry.field(description="Whether the reference is negated.")
    matched: bool = strawberry.field(description="Whether the reference held, after negate.")
    evaluation: SegmentEvaluation = strawberry.field(
        description="The referenced segment's own evaluation of the context."
    )


def segment_evaluation(result: Evaluation) -> SegmentEvaluation:
    """The evaluator's answer as the API shows it, references explained recursively."""
    return SegmentEvaluation(
        matched=result.matched,
        reason=result.reason,  # type: ignore[arg-type]
        conditions=[
            ConditionResult(
                attribute=c.attribute,
                operator=c.operator,  # type: ignore[arg-type]
                matched=c.matched,
                actual=c.actual,
            )
            for c in result.conditions
        ],
        segment_matches=[
            SegmentMatchResult(
                segment_key=m.segment_key,
                negate=m.negate,
                matched=m.matched,
                evaluation=segment_evaluation(m.evaluation),
            )
            for m in result.segment_matches
        ],
    )


async def evaluate_segment(
    info: AppInfo, project_key: str, key: str, context: Any
) -> SegmentEvaluation:
    problems = context_problems(context)
    if problems:
        raise query_error(Refused(problems))
    ctx = info.context
    row, closure = await ctx.db.run(
        db_segments.segment_and_closure_by_key, ctx.project_id_for(project_key), key
    )
    if row is None:
        raise not_found(f"No segment with key {key!r} in project {project_key!r}.")
    hits, targeting_key = NO_HITS, None
    if row["unbounded"] or any(found["unbounded"] for found in closure.values()):
        hits, targeting_key = await ctx.db.run(
            big_list_hits, row["project_id"], [row, *closure.values()], context
        )
    compiled = compiled_segment(row, closure, hits, targeting_key)
    return segment_evaluation(compiled.evaluate(context))
