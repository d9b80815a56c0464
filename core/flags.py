"""Flag and environment use cases: create an environment, create a flag, replace a flag's
targeting rules in one environment, archive a flag.

A targeting rule arrives as a dict: `segment` (present for a SEGMENT rule: the segment's
row id, or None when the id named no segment) or `rules` (stored-shape input for
`rules.validate`) with an optional `logical_op`, and `variation_key` / `rollout_key`.
"""

from collections.abc import Mapping
from typing import Any

from core import references
from core.access import project_id_for, project_problems, require_editor
from core.policy import Policy
from db import flags as db_flags
from db import projects as db_projects
from db import segments as db_segments
from db.api_keys import Principal
from db.pool import Database, Row
from rules import validate
from rules.models import Limits
from rules.problems import Problem, ProblemCode, Refused

NO_SUCH_FLAG = "No such flag."


def _key_and_name(key: str, name: str) -> list[Problem]:
    return validate.validate_key(key, ("input", "key")) + validate.validate_name(
        name, ("input", "name")
    )


async def create_environment(
    db: Database, principal: Principal, project_key: str, key: str, name: str
) -> Row | Refused:
    require_editor(principal)
    project_id = project_id_for(principal, project_key)
    problems = project_problems(project_id) + _key_and_name(key, name)
    if problems or project_id is None:
        return Refused(problems)
    async with db.transaction() as conn:
        row = await db_projects.create_environment(
            conn, project_id, key, validate.normalize_name(name), actor=principal.name
        )
    if row is None:
        return Refused.one(
            ProblemCode.KEY_TAKEN, f"The project has an environment {key!r}.", ("input", "key")
        )
    return row


async def create_flag(
    db: Database,
    principal: Principal,
    project_key: str,
    key: str,
    name: str,
    description: str | None,
) -> Row | Refused:
    require_editor(principal)
    project_id = project_id_for(principal, project_key)
    problems = project_problems(project_id) + _key_and_name(key, name)
    problems += validate.validate_description(description, ("input", "description"))
    if problems or project_id is None:
        return Refused(problems)
    async with db.transaction() as conn:
        row = await db_flags.create_flag(
            conn, project_id, key, validate.normalize_name(name), description, actor=principal.name
        )
    if row is None:
        return Refused.one(
            ProblemCode.KEY_TAKEN, f"The project has a flag {key!r}.", ("input", "key")
        )
    return row


def _referenced_keys(rules: list[dict[str, Any]]) -> set[str]:
    """The segment keys the CUSTOM rules' SegmentMatches name."""
    return {
        key
        for rule in rules
        if "segment" not in rule
        for key in validate.referenced_keys(rule.get("rules"))
    }


def _checked_rules(
    rules: list[dict[str, Any]], limits: Limits, segment_ids: Mapping[str, int]
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Rows to store and every problem found in the input (`segment_ids` resolves the keys
    of `_referenced_keys`)."""
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for index, rule in enumerate(rules):
        path = ("input", "rules", str(index))
        variation, rollout = rule.get("variation_key"), rule.get("rollout_key")
        if (variation is None) == (rollout is None):
            problems.append(
                Problem(
                    path,
                    ProblemCode.INVALID_INPUT,
                    "Give exactly one of variationKey or rolloutKey.",
                )
            )
        for name, served in (("variationKey", variation), ("rolloutKey", rollout)):
            if served is not None:
                problems += validate.validate_served_key(served, (*path, name))
        row: dict[str, Any] = {"variation_key": variation, "rollout_key": rollout}
        if "segment" in rule:
            if rule.get("rules") is not None or rule.get("logical_op") is not None:
                problems.append(
                    Problem(
                        path,
                        ProblemCode.INVALID_RULE,
                        "A rule has a segmentId or inline rules, not both.",
                    )
                )
            if rule["segment"] is None:
                problems.append(
                    Problem((*path, "segmentId"), ProblemCode.NOT_FOUND, "No such segment.")
                )
            row |= {
                "kind": "SEGMENT",
                "segment_id": rule["segment"],
                "logical_op": None,
                "rules": [],
            }
        elif rule.get("rules") is None:
            problems.append(
                Problem(path, ProblemCode.INVALID_RULE, "Give a segmentId or inline rules.")
            )
        else:
            stored, rule_problems = validate.validate_rules(
                rule["rules"], (*path, "rules"), limits, segment_ids
            )
            problems += rule_problems
            logical_op = rule.get("logical_op") or "AND"
            row |= {"kind": "CUSTOM", "segment_id": None, "logical_op": logical_op, "rules": stored}
        rows.append(row)
    return rows, problems


async def set_targeting_rules(
    db: Database,
    principal: Principal,
    policy: Policy,
    flag_id: int | None,
    environment_key: str,
    rules: list[dict[str, Any]],
) -> Row | Refused:
    """Replace the flag's ordered rules in the environment, atomically. The flag is locked,
    and the segments attached or referenced from CUSTOM rules are share-locked, so a
    concurrent delete either waits or is seen; every problem is reported, from the input and
    from the database together."""
    require_editor(principal)
    project_id = principal.project_id
    if flag_id is None:
        return Refused.one(ProblemCode.NOT_FOUND, NO_SUCH_FLAG, ("input", "flagId"))
    limit = policy.max_targeting_rules
    if len(rules) > limit:  # refused before checking each of possibly thousands
        return Refused.one(
            ProblemCode.LIMIT_EXCEEDED,
            f"{len(rules)} targeting rules; at most {limit} per flag and environment",
            ("input", "rules"),
        )
    async with db.transaction() as conn:
        flag = await db_flags.lock_flag(conn, project_id, flag_id)
        if flag is None:
            return Refused.one(ProblemCode.NOT_FOUND, NO_SUCH_FLAG, ("input", "flagId"))
        # Share-locked like the SEGMENT rules' segments below: none can be deleted meanwhile.
        segment_ids = await references.resolve_keys(
            conn, project_id, _referenced_keys(rules), lock=True
        )
        rows, problems = _checked_rules(rules, policy.rules, segment_ids)
        environment = await db_projects.environment_by_key(conn, project_id, environment_key)
        if environment is None:
            problems.insert(
                0,
                Problem(("input", "environmentKey"), ProblemCode.NOT_FOUND, "No such environment."),
            )
        wanted = sorted({row["segment_id"] for row in rows if row.get("segment_id") is not None})
        found = {s["id"]: s for s in await db_segments.lock_for_attach(conn, project_id, wanted)}
        for index, row in enumerate(rows):
            if row.get("segment_id") is None:
                continue
            segment = found.get(row["segment_id"])
            field = ("input", "rules", str(index), "segmentId")
            if segment is None:
                problems.append(Problem(field, ProblemCode.NOT_FOUND, "No such segment."))
            elif segment["deleted_at"] is not None:
                problems.append(
                    Problem(
                        field, ProblemCode.SEGMENT_DELETED, "A deleted segment cannot be attached."
                    )
                )
        if problems or environment is None:
            return Refused(problems)
        await db_flags.replace_rules(
            conn, project_id, flag_id, environment, rows, actor=principal.name
        )
    return flag


async def archive_flag(db: Database, principal: Principal, flag_id: int | None) -> Row | Refused:
    require_editor(principal)
    if flag_id is not None:
        async with db.transaction() as conn:
            row = await db_flags.archive_flag(
                conn, principal.project_id, flag_id, actor=principal.name
            )
        if row is not None:
            return row
    return Refused.one(ProblemCode.NOT_FOUND, NO_SUCH_FLAG, ("input", "flagId"))
