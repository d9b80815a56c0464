"""evaluateTargeting: a dry run of a flag's targeting rules in one environment."""

from typing import Any

import strawberry

from core import targeting as core_targeting
from rules.problems import Refused
from schema.context import AppInfo
from schema.errors import query_error
from schema.evaluation import SegmentEvaluation, segment_evaluation
from schema.flags import TargetingRule


@strawberry.type(description="How one targeting rule decided a context.")
class TargetingRuleResult:
    order_index: int = strawberry.field(description="The rule's position in its environment.")
    matched: bool = strawberry.field(description="Whether the rule matched the context.")
    evaluation: SegmentEvaluation = strawberry.field(
        description="Of the rule's segment (kind SEGMENT) or inline conditions (CUSTOM)."
    )


@strawberry.type(
    description="Which of a flag's targeting rules a context meets in one environment "
    "(first match wins), and why."
)
class TargetingEvaluation:
    matched_rule: TargetingRule | None = strawberry.field(
        description="The first rule that matched; null: no rule matched (fallthrough)."
    )
    variation_key: str | None = strawberry.field(description="Of the matched rule.")
    rollout_key: str | None = strawberry.field(description="Of the matched rule.")
    rule_results: list[TargetingRuleResult] = strawberry.field(
        description="The rules evaluated, in order, up to and including the match."
    )


async def evaluate_targeting(
    info: AppInfo, project_key: str, flag_key: str, environment_key: str, context: Any
) -> TargetingEvaluation:
    ctx = info.context
    result = await core_targeting.evaluate_targeting(
        ctx.db, ctx.principal, project_key, flag_key, environment_key, context
    )
    if isinstance(result, Refused):
        raise query_error(result)
    for segment_id, row in result.segments.items():  # matchedRule { segment } costs nothing
        ctx.loaders.segment.prime(segment_id, row)
    matched = result.walk.matched
    return TargetingEvaluation(
        matched_rule=TargetingRule.from_row(matched) if matched is not None else None,
        variation_key=matched["variation_key"] if matched is not None else None,
        rollout_key=matched["rollout_key"] if matched is not None else None,
        rule_results=[
            TargetingRuleResult(
                order_index=step.rule["order_index"],
                matched=step.evaluation.matched,
                evaluation=segment_evaluation(step.evaluation),
            )
            for step in result.walk.steps
        ],
    )
