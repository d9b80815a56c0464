"""Rule warnings (DESIGN §15) as GraphQL types, and the one place that gathers them for a
segment, a write's payload or a preview: the rule analysis, plus MATCHES_NO_ONE and
MATCHES_EVERYONE from the member count when the project stores profiles."""

from collections.abc import Mapping
from enum import Enum
from typing import Any

import asyncpg
import strawberry

from db.members import Definition
from rules import analysis
from rules.analysis import WarningCode
from rules.problems import Path
from schema.context import AppInfo

RuleWarningCode = strawberry.enum(
    Enum(  # type: ignore[misc]
        "RuleWarningCode",
        {
            "CONTRADICTION": strawberry.enum_value(
                "CONTRADICTION", description="A group that no context can match."
            ),
            "ALWAYS_TRUE": strawberry.enum_value(
                "ALWAYS_TRUE", description="A group that every context matches."
            ),
            "DUPLICATE_CONDITION": strawberry.enum_value(
                "DUPLICATE_CONDITION", description="A rule that repeats a rule of its group."
            ),
            "SUBSUMED": strawberry.enum_value(
                "SUBSUMED",
                description="A rule that another rule of the same group makes redundant.",
            ),
            "UNKNOWN_ATTRIBUTE": strawberry.enum_value(
                "UNKNOWN_ATTRIBUTE", description="Neither declared nor seen in stored profiles."
            ),
            "TYPE_MISMATCH": strawberry.enum_value(
                "TYPE_MISMATCH",
                description="Operator or value does not fit the declared or observed type.",
            ),
            "MATCHES_NO_ONE": strawberry.enum_value(
                "MATCHES_NO_ONE",
                description="No stored profile matches (only when the project stores profiles).",
            ),
            "MATCHES_EVERYONE": strawberry.enum_value(
                "MATCHES_EVERYONE",
                description="Every stored profile matches (only when the project stores profiles).",
            ),
        },
    ),
    description="What a rule warning is about.",
)


@strawberry.type(description="Something about a segment's rules worth a second look; never blocks.")
class RuleWarning:
    # The stored string: both executors serialise an enum by value (schema/enums.py).
    code: RuleWarningCode = strawberry.field(description="What kind of finding it is.")
    field: list[str] | None = strawberry.field(
        description="Path to the rule: into the input for writes and previews "
        '(["input", "rules", "0", "group", "rules", "1"]), into Segment.rules for a '
        'segment (["rules", "0", "rules", "1"]); null for the whole segment.'
    )
    message: str = strawberry.field(description="What was found, naming the rules involved.")

    @classmethod
    def from_warning(cls, warning: analysis.RuleWarning) -> "RuleWarning":
        return cls(
            code=warning.code.value,
            field=None if warning.field is None else list(warning.field),
            message=warning.message,
        )


# Where rule paths point: a write's or preview's input, or the stored Segment.rules.
INPUT_PATHS = (("input", "rules"), analysis.INPUT_NESTING)
STORED_PATHS = (("rules",), analysis.STORED_NESTING)


async def known_attributes(info: AppInfo, project_id: int) -> Mapping[str, set[str]] | None:
    """The project's attribute paths with their JSON types (seen in stored profiles or
    declared: the attribute catalogue), for UNKNOWN_ATTRIBUTE and TYPE_MISMATCH; None, which
    skips those checks, when the project neither stores nor declares any attribute."""
    known = await info.context.loaders.known_attributes.load(project_id)
    return known or None


async def rule_warnings(
    info: AppInfo,
    project_id: int,
    logical_op: str,
    rules: list[Any],
    paths: tuple[Path, Path],
    *,
    definition: Definition | None = None,
    member_count: int | None = None,
) -> list[RuleWarning]:
    """Every warning about a rule list, paths as `paths` (INPUT_PATHS or STORED_PATHS) say.
    With the whole `definition`, also MATCHES_NO_ONE / MATCHES_EVERYONE: its member count
    (one count, bounded like every member count of the request; `member_count` when the
    caller has it already) against the project's stored profiles."""
    root, nesting = paths
    found = analysis.analyze_rules(
        logical_op,
        rules,
        root=root,
        nesting=nesting,
        known_attributes=await known_attributes(info, project_id),
    )
    if definition is not None:
        found += await _member_warnings(info, project_id, definition, member_count)
    return [RuleWarning.from_warning(warning) for warning in found]


async def _member_warnings(
    info: AppInfo, project_id: int, definition: Definition, count: int | None
) -> list[analysis.RuleWarning]:
    loaders = info.context.loaders
    try:
        total = await loaders.profile_total.load(project_id)
        if not total:
            return []  # no profiles stored: nothing to tell
        if count is None:
            count = await loaders.member_count.load(definition)
    except asyncpg.QueryCanceledError:
        return []  # out of time: a warning is never worth an error
    return analysis.member_warnings(count, total)


__all__ = ["RuleWarning", "RuleWarningCode", "WarningCode", "rule_warnings"]
