"""Flag and environment mutations: createEnvironment, createFlag, setTargetingRules, archiveFlag."""

from typing import Annotated, Any

import strawberry

from db import flags as db_flags
from db import projects as db_projects
from db import segments as db_segments
from rules import validate
from schema.context import AppInfo
from schema.enums import LogicalOperator
from schema.errors import UserError, from_problems, user_error
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
    environment: Environment | None = strawberry.field(description="The new environment; null on error.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written; empty on success.")


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
    segment_id: strawberry.ID | None = strawberry.field(default=None, description="Segment to match (kind SEGMENT).")
    logical_op: LogicalOperator | None = strawberry.field(
        default=None, description="How inline rules combine (kind CUSTOM), default AND."
    )
    rules: list[SegmentRuleInput] | None = strawberry.field(default=None, description="Inline rules (kind CUSTOM).")
    variation_key: str | None = strawberry.field(default=None, description="Variation served on match.")
    rollout_key: str | None = strawberry.field(default=None, description="Rollout served on match.")


@strawberry.input(description="The whole ordered list of a flag's rules in one environment.")
class SetTargetingRulesInput:
    flag_id: strawberry.ID = strawberry.field(description="Global id of the flag.")
    environment_key: str = strawberry.field(description="Environment whose rules are replaced.")
    rules: list[TargetingRuleInput] = strawberry.field(description="New rules; order_index = list position.")


@strawberry.input(description="A flag to archive.")
class ArchiveFlagInput:
    flag_id: strawberry.ID = strawberry.field(description="Global id of the flag.")


@strawberry.type(description="Result of a flag mutation.")
class FlagPayload:
    flag: Flag | None = strawberry.field(description="The flag after the change; null on error.")
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written; empty on success.")


def _key_and_name(key: str, name: str) -> list[validate.Problem]:
    return validate.validate_key(key, ("input", "key")) + validate.validate_name(name, ("input", "name"))


def _checked_rules(
    rules: list[TargetingRuleInput], limits: validate.Limits
) -> tuple[list[dict[str, Any]], list[validate.Problem]]:
    """Rows to store and every problem; segment rows carry the decoded id (or None)."""
    rows: list[dict[str, Any]] = []
    problems: list[validate.Problem] = []
    for index, rule in enumerate(rules):
        path = ("input", "rules", str(index))
        if (rule.variation_key is None) == (rule.rollout_key is None):
            problems.append(
                validate.Problem(path, "INVALID_INPUT", "Give exactly one of variationKey or rolloutKey.")
            )
        for name, served in (("variationKey", rule.variation_key), ("rolloutKey", rule.rollout_key)):
            if served is not None:
                problems += validate.validate_served_key(served, (*path, name))
        row = {"variation_key": rule.variation_key, "rollout_key": rule.rollout_key}
        if rule.segment_id is not None:
            if rule.rules is not None or rule.logical_op is not None:
                problems.append(
                    validate.Problem(path, "INVALID_RULE", "A rule has a segmentId or inline rules, not both.")
                )
            segment_id = decode_id_of(rule.segment_id, "Segment")
            if segment_id is None:
                problems.append(validate.Problem((*path, "segmentId"), "NOT_FOUND", "No such segment."))
            row |= {"kind": "SEGMENT", "segment_id": segment_id, "logical_op": None, "rules": []}
        elif rule.rules is None:
            problems.append(validate.Problem(path, "INVALID_RULE", "Give a segmentId or inline rules."))
        else:
            stored, rule_problems = validate.validate_rules(
                rules_input_to_raw(rule.rules), (*path, "rules"), limits
            )
            problems += rule_problems
            logical_op = (rule.logical_op or LogicalOperator.AND).value
            row |= {"kind": "CUSTOM", "segment_id": None, "logical_op": logical_op, "rules": stored}
        rows.append(row)
    return rows, problems


def _flag_errors(code: str, message: str, *field: str) -> FlagPayload:
    return FlagPayload(flag=None, user_errors=[user_error(code, message, ["input", *field])])


@strawberry.type
class FlagMutations:
    @strawberry.mutation(description="Add an environment to a project.")
    async def create_environment(
        self, info: AppInfo, input: Annotated[CreateEnvironmentInput, strawberry.argument(description="The new environment.")]
    ) -> EnvironmentPayload:
        ctx = info.context
        ctx.require_editor()
        project_id = ctx.project_id_for(input.project_key)
        errors = from_problems(_key_and_name(input.key, input.name))
        if not project_id:
            errors.insert(0, user_error("NOT_FOUND", "No such project.", ["input", "projectKey"]))
        if errors:
            return EnvironmentPayload(environment=None, user_errors=errors)
        async with ctx.db.transaction() as conn:
            row = await db_projects.create_environment(
                conn, project_id, input.key, validate.normalize_name(input.name), actor=ctx.principal.name
            )
        if row is None:
            taken = user_error("KEY_TAKEN", f"The project has an environment {input.key!r}.", ["input", "key"])
            return EnvironmentPayload(environment=None, user_errors=[taken])
        return EnvironmentPayload(environment=Environment.from_row(row), user_errors=[])

    @strawberry.mutation(description="Create a flag.")
    async def create_flag(
        self, info: AppInfo, input: Annotated[CreateFlagInput, strawberry.argument(description="The new flag.")]
    ) -> FlagPayload:
        ctx = info.context
        ctx.require_editor()
        project_id = ctx.project_id_for(input.project_key)
        problems = _key_and_name(input.key, input.name)
        problems += validate.validate_description(input.description, ("input", "description"))
        errors = from_problems(problems)
        if not project_id:
            errors.insert(0, user_error("NOT_FOUND", "No such project.", ["input", "projectKey"]))
        if errors:
            return FlagPayload(flag=None, user_errors=errors)
        async with ctx.db.transaction() as conn:
            row = await db_flags.create_flag(
                conn,
                project_id,
                input.key,
                validate.normalize_name(input.name),
                input.description,
                actor=ctx.principal.name,
            )
        if row is None:
            return _flag_errors("KEY_TAKEN", f"The project has a flag {input.key!r}.", "key")
        return FlagPayload(flag=Flag.from_row(row), user_errors=[])

    @strawberry.mutation(description="Replace a flag's ordered targeting rules in one environment, atomically.")
    async def set_targeting_rules(
        self, info: AppInfo, input: Annotated[SetTargetingRulesInput, strawberry.argument(description="The new rules.")]
    ) -> FlagPayload:
        ctx = info.context
        ctx.require_editor()
        project_id = ctx.principal.project_id
        flag_id = decode_id_of(input.flag_id, "Flag")
        if flag_id is None:
            return _flag_errors("NOT_FOUND", "No such flag.", "flagId")
        limit = ctx.settings.max_targeting_rules
        if len(input.rules) > limit:  # refused before checking each of possibly thousands
            message = f"{len(input.rules)} targeting rules; at most {limit} per flag and environment"
            return FlagPayload(flag=None, user_errors=[user_error("LIMIT_EXCEEDED", message, ["input", "rules"])])
        rows, problems = _checked_rules(input.rules, ctx.settings.limits)
        # Every problem is reported: input problems together with what only the database knows.
        errors = from_problems(problems)
        async with ctx.db.transaction() as conn:
            flag = await db_flags.lock_flag(conn, project_id, flag_id)
            if flag is None:
                return _flag_errors("NOT_FOUND", "No such flag.", "flagId")
            environment = await db_projects.environment_by_key(conn, project_id, input.environment_key)
            if environment is None:
                errors.insert(0, user_error("NOT_FOUND", "No such environment.", ["input", "environmentKey"]))
            wanted = sorted({row["segment_id"] for row in rows if row.get("segment_id") is not None})
            found = {s["id"]: s for s in await db_segments.lock_for_attach(conn, project_id, wanted)}
            for index, row in enumerate(rows):
                if row.get("segment_id") is None:
                    continue
                segment = found.get(row["segment_id"])
                field = ["input", "rules", str(index), "segmentId"]
                if segment is None:
                    errors.append(user_error("NOT_FOUND", "No such segment.", field))
                elif segment["deleted_at"] is not None:
                    errors.append(user_error("SEGMENT_DELETED", "A deleted segment cannot be attached.", field))
            if errors or environment is None:
                return FlagPayload(flag=None, user_errors=errors)
            await db_flags.replace_rules(conn, project_id, flag_id, environment, rows, actor=ctx.principal.name)
        return FlagPayload(flag=Flag.from_row(flag), user_errors=[])

    @strawberry.mutation(description="Archive a flag: its rules stop counting as segment usage.")
    async def archive_flag(
        self, info: AppInfo, input: Annotated[ArchiveFlagInput, strawberry.argument(description="Which flag.")]
    ) -> FlagPayload:
        ctx = info.context
        ctx.require_editor()
        flag_id = decode_id_of(input.flag_id, "Flag")
        if flag_id is None:
            return _flag_errors("NOT_FOUND", "No such flag.", "flagId")
        async with ctx.db.transaction() as conn:
            row = await db_flags.archive_flag(conn, ctx.principal.project_id, flag_id, actor=ctx.principal.name)
        if row is None:
            return _flag_errors("NOT_FOUND", "No such flag.", "flagId")
        return FlagPayload(flag=Flag.from_row(row), user_errors=[])
