"""Flag and environment mutations: createEnvironment, createFlag, setTargetingRules, archiveFlag."""

from typing import Annotated, Any

import strawberry

from core import flags as core_flags
from core.flags import Row
from rules.problems import Refused
from schema.context import AppInfo
from schema.enums import LogicalOperator
from schema.errors import UserError, from_problems
from schema.flags import Flag
from schema.ids import decode_id_of
from schema.projects import Environment
from schema.rules import SegmentRuleInput, rules_input_to_raw


@strawberry.input(description="A new environment of a project.")
class CreateEnvironmentInput:
    project_key: str = strawberry.field(description="Project to add it to.")
    key: str = strawberry.field(description="Unique key within the project.")
    name: str = strawberry.field(description="Display name.")


@strawberry.type(description="Result of createEnvironment.")
class EnvironmentPayload:
    environment: Environment | None = strawberry.field(
        description="The new environment; null on error."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.input(description="A new flag.")
class CreateFlagInput:
    project_key: str = strawberry.field(description="Project to create it in.")
    key: str = strawberry.field(description="Unique key within the project.")
    name: str = strawberry.field(description="Display name.")
    description: str | None = strawberry.field(default=None, description="Free text.")


@strawberry.input(
    description="A targeting rule: a segmentId (kind SEGMENT) or logicalOp + rules (kind CUSTOM), "
    "serving exactly one of variationKey / rolloutKey."
)
class TargetingRuleInput:
    segment_id: strawberry.ID | None = strawberry.field(
        default=None, description="Segment to match (kind SEGMENT)."
    )
    logical_op: LogicalOperator | None = strawberry.field(
        default=None, description="How inline rules combine (kind CUSTOM), default AND."
    )
    rules: list[SegmentRuleInput] | None = strawberry.field(
        default=None, description="Inline rules (kind CUSTOM)."
    )
    variation_key: str | None = strawberry.field(
        default=None, description="Variation served on match."
    )
    rollout_key: str | None = strawberry.field(default=None, description="Rollout served on match.")


@strawberry.input(description="The whole ordered list of a flag's rules in one environment.")
class SetTargetingRulesInput:
    flag_id: strawberry.ID = strawberry.field(description="Global id of the flag.")
    environment_key: str = strawberry.field(description="Environment whose rules are replaced.")
    rules: list[TargetingRuleInput] = strawberry.field(
        description="New rules; order_index = list position."
    )


@strawberry.input(description="A flag to archive.")
class ArchiveFlagInput:
    flag_id: strawberry.ID = strawberry.field(description="Global id of the flag.")


@strawberry.type(description="Result of a flag mutation.")
class FlagPayload:
    flag: Flag | None = strawberry.field(description="The flag after the change; null on error.")
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


def _rule_input(rule: TargetingRuleInput) -> dict[str, Any]:
    """A targeting rule input as `core.flags` takes it."""
    given: dict[str, Any] = {
        "variation_key": rule.variation_key,
        "rollout_key": rule.rollout_key,
        "logical_op": rule.logical_op.value if rule.logical_op is not None else None,
        "rules": rules_input_to_raw(rule.rules) if rule.rules is not None else None,
    }
    if rule.segment_id is not None:
        given["segment"] = decode_id_of(rule.segment_id, "Segment")
    return given


def _flag_payload(result: Row | Refused) -> FlagPayload:
    if isinstance(result, Refused):
        return FlagPayload(flag=None, user_errors=from_problems(result.problems))
    return FlagPayload(flag=Flag.from_row(result), user_errors=[])


@strawberry.type
class FlagMutations:
    @strawberry.mutation(description="Add an environment to a project.")
    async def create_environment(
        self,
        info: AppInfo,
        input: Annotated[
            CreateEnvironmentInput, strawberry.argument(description="The new environment.")
        ],
    ) -> EnvironmentPayload:
        ctx = info.context
        result = await core_flags.create_environment(
            ctx.db, ctx.principal, input.project_key, input.key, input.name
        )
        if isinstance(result, Refused):
            return EnvironmentPayload(environment=None, user_errors=from_problems(result.problems))
        return EnvironmentPayload(environment=Environment.from_row(result), user_errors=[])

    @strawberry.mutation(description="Create a flag.")
    async def create_flag(
        self,
        info: AppInfo,
        input: Annotated[CreateFlagInput, strawberry.argument(description="The new flag.")],
    ) -> FlagPayload:
        ctx = info.context
        result = await core_flags.create_flag(
            ctx.db, ctx.principal, input.project_key, input.key, input.name, input.description
        )
        return _flag_payload(result)

    @strawberry.mutation(
        description="Replace a flag's ordered targeting rules in one environment, atomically."
    )
    async def set_targeting_rules(
        self,
        info: AppInfo,
        input: Annotated[SetTargetingRulesInput, strawberry.argument(description="The new rules.")],
    ) -> FlagPayload:
        ctx = info.context
        result = await core_flags.set_targeting_rules(
            ctx.db,
            ctx.principal,
            ctx.settings.policy,
            decode_id_of(input.flag_id, "Flag"),
            input.environment_key,
            [_rule_input(rule) for rule in input.rules],
        )
        return _flag_payload(result)

    @strawberry.mutation(description="Archive a flag: its rules stop counting as segment usage.")
    async def archive_flag(
        self,
        info: AppInfo,
        input: Annotated[ArchiveFlagInput, strawberry.argument(description="Which flag.")],
    ) -> FlagPayload:
        ctx = info.context
        result = await core_flags.archive_flag(
            ctx.db, ctx.principal, decode_id_of(input.flag_id, "Flag")
        )
        return _flag_payload(result)
