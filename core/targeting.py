"""The targeting dry run (evaluateTargeting): which of a flag's rules in one environment a
context meets, first match wins, and why each rule evaluated did or did not match.

It reads at most four statements whatever the number of rules: the flag, the environment,
its rules in order, and the segments its SEGMENT rules name — and a fifth, one probe per
list, when some of those segments are big.
"""

from dataclasses import dataclass
from typing import Any

import asyncpg

from core.access import project_id_for
from core.evaluation import (
    Hits,
    big_list_hits,
    closure_with_hits,
    compiled_segment,
    context_problems,
)
from db import flags as db_flags
from db import projects as db_projects
from db import segments as db_segments
from db.api_keys import Principal
from db.members import references_from_rows
from db.pool import Database, Row
from rules.models import References, referenced_ids
from rules.problems import ProblemCode, Refused
from rules.targeting import RuleEvaluator, Walk, compile_custom_rule, first_match


@dataclass(frozen=True)
class DryRun:
    walk: Walk[Row]  # the targeting rule rows evaluated, in order; the matched one last
    segments: dict[int, Row]  # the SEGMENT rules' segments by id, for the caller's loaders


async def evaluate_targeting(
    db: Database,
    principal: Principal,
    project_key: str,
    flag_key: str,
    environment_key: str,
    context: Any,
) -> DryRun | Refused:
    """Walk the flag's targeting rules in the environment against `context`. Refused with
    INVALID_INPUT for a context evaluateSegment would refuse, NOT_FOUND for a project the
    caller cannot see, an unknown or archived flag, or an unknown environment."""
    problems = context_problems(context)
    if problems:
        return Refused(problems)
    project_id = project_id_for(principal, project_key)
    if project_id is None:  # reads exactly like a flag that does not exist
        return _no_such_flag(project_key, flag_key)
    found = await db.run(_read, project_id, project_key, flag_key, environment_key, context)
    if isinstance(found, Refused):
        return found
    flag, rules, segments, hits, targeting_key = found
    references = references_from_rows(closure_with_hits(segments, hits, targeting_key))
    # A generator: the rules after the match are never compiled.
    walk = first_match(
        (
            (rule, _evaluator(rule, flag["key"], segments, references, hits, targeting_key))
            for rule in rules
        ),
        context,
    )
    return DryRun(walk, segments)


async def _read(
    conn: asyncpg.Connection,
    project_id: int,
    project_key: str,
    flag_key: str,
    environment_key: str,
    context: object,
) -> tuple[Row, list[Row], dict[int, Row], Hits, str | None] | Refused:
    """The flag, its rules in the environment, the SEGMENT rules' segments with every
    segment any rule reaches through references (by id), and which lists of the big ones
    among them hold the context's key — or why not."""
    flag = await db_flags.flag_by_key(conn, project_id, flag_key)
    if flag is None:
        return _no_such_flag(project_key, flag_key)
    if flag["archived_at"] is not None:
        return Refused.one(
            ProblemCode.NOT_FOUND, f"The flag {flag_key!r} is archived.", ("flagKey",)
        )
    environment = await db_projects.environment_by_key(conn, project_id, environment_key)
    if environment is None:
        return Refused.one(
            ProblemCode.NOT_FOUND,
            f"No environment with key {environment_key!r} in project {project_key!r}.",
            ("environmentKey",),
        )
    rules = await db_flags.rules_of_flags(conn, project_id, [(flag["id"], environment_key)])
    wanted = {rule["segment_id"] for rule in rules if rule["segment_id"] is not None}
    wanted.update(i for rule in rules for i in referenced_ids(rule["rules"] or []))
    found = await db_segments.reference_closure(conn, project_id, sorted(wanted)) if wanted else []
    hits, targeting_key = await big_list_hits(conn, project_id, found, context)
    return flag, rules, {row["id"]: row for row in found}, hits, targeting_key


def _evaluator(
    rule: Row,
    flag_key: str,
    segments: dict[int, Row],
    references: References,
    hits: Hits,
    targeting_key: str | None,
) -> RuleEvaluator:
    """How one stored targeting rule decides a context: a SEGMENT rule as its segment does
    (force, excluded, included, rules), a CUSTOM rule by its inline rules, salted by the
    flag's key; both with the segments they reach through references. The foreign key
    keeps a SEGMENT rule's segment row (a live flag's segment is never deleted)."""
    if rule["kind"] == "SEGMENT":
        segment = segments[rule["segment_id"]]
        return compiled_segment(segment, segments, hits, targeting_key).evaluate
    return compile_custom_rule(rule["logical_op"], rule["rules"], flag_key, references)


def _no_such_flag(project_key: str, flag_key: str) -> Refused:
    return Refused.one(
        ProblemCode.NOT_FOUND,
        f"No flag with key {flag_key!r} in project {project_key!r}.",
        ("flagKey",),
    )
