"""The Profile type, segment members and previews, and the profile queries."""

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Self

import strawberry
from strawberry.scalars import JSON

from core.access import project_id_for, project_problems
from core.references import preview_rules
from db import profiles as db_profiles
from db.members import Definition
from rules import validate
from rules.problems import ProblemCode
from schema.analysis import INPUT_PATHS, RuleWarning, rule_warnings
from schema.context import AppInfo
from schema.enums import LogicalOperator
from schema.errors import UserError, from_problems
from schema.ids import encode_id
from schema.node import Node
from schema.pagination import (
    Connection,
    connection,
    decode_cursor,
    encode_cursor,
    listing_connection,
    page_request,
)
from schema.rules import SegmentRuleInput, rules_input_to_raw

PROFILE_CURSOR = "profile"
MEMBER_CURSOR = "member"
DEFAULT_SAMPLE_SIZE = 10
PREVIEW_SALT = "preview"
MAX_SAMPLE_SIZE = 100


@strawberry.type(
    description="A stored evaluation context (a user, organization or device) of a project."
)
class Profile(Node):
    targeting_key: str = strawberry.field(
        description="The context's targetingKey, unique in a project."
    )
    attributes: JSON = strawberry.field(
        description="The stored context object, exactly as last upserted."
    )
    updated_at: datetime = strawberry.field(description="When the profile was last upserted.")
    db_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            id=strawberry.ID(encode_id("Profile", row["id"])),
            targeting_key=row["targeting_key"],
            attributes=row["attributes"],
            updated_at=row["updated_at"],
            db_id=row["id"],
        )


@strawberry.type(description="A page of profiles, by targetingKey.")
class ProfileConnection(Connection[Profile]):
    pass


@strawberry.input(description="An unsaved segment definition whose members to count and sample.")
class PreviewSegmentInput:
    project_key: str = strawberry.field(description="Project whose profiles to match.")
    logical_op: LogicalOperator | None = strawberry.field(
        default=LogicalOperator.AND, description="How the top-level rules combine."
    )
    rules: list[SegmentRuleInput] | None = strawberry.field(
        default=None, description="The rules, validated like createSegment's."
    )
    force: bool | None = strawberry.field(default=False, description="Match every profile.")
    included: list[str] | None = strawberry.field(
        default=None, description="Targeting keys always in the segment."
    )
    excluded: list[str] | None = strawberry.field(
        default=None, description="Targeting keys never matched by the rules."
    )
    sample_size: int | None = strawberry.field(
        default=DEFAULT_SAMPLE_SIZE, description="How many members to return in `sample`, 0-100."
    )
    salt: str | None = strawberry.field(
        default=PREVIEW_SALT, description="Seeds PERCENTAGE buckets, 1-100 characters."
    )


@strawberry.type(description="How many stored profiles an unsaved segment definition matches now.")
class SegmentPreview:
    member_count: int | None = strawberry.field(
        description="Exact number of matching profiles; null when userErrors is not empty."
    )
    sample: list[Profile] = strawberry.field(
        description="The first sampleSize members, targetingKey ascending."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why the definition cannot be previewed; empty on success."
    )
    # What `warnings` analyses; None when userErrors is not empty.
    definition: strawberry.Private[Definition | None] = None
    project_id: strawberry.Private[int] = 0

    @strawberry.field(
        description="Findings about the rules (DESIGN §15), paths into the input; empty "
        "when userErrors is not."
    )
    async def warnings(self, info: AppInfo) -> list[RuleWarning]:
        if self.definition is None:
            return []
        return await rule_warnings(
            info,
            self.project_id,
            self.definition.logical_op,
            self.definition.rules,
            INPUT_PATHS,
            definition=self.definition,
            member_count=self.member_count,
        )


async def profile_by_key(info: AppInfo, project_key: str, targeting_key: str) -> Profile | None:
    ctx = info.context
    project_id = ctx.project_id_for(project_key)
    if not project_id:
        return None
    row = await ctx.db.run(db_profiles.profile_by_key, project_id, targeting_key)
    return Profile.from_row(row) if row else None


async def list_profiles(
    info: AppInfo, project_key: str, first: int | None, after: str | None, search: str | None
) -> ProfileConnection:
    ctx = info.context
    page = page_request(
        first=first,
        after=decode_cursor(after, PROFILE_CURSOR) if after else None,
        last=None,
        before=None,
        column="targeting_key",
    )
    project_id = ctx.project_id_for(project_key)
    search = search or None
    return await listing_connection(
        ProfileConnection,
        ctx.db,
        db_profiles.profile_listing(project_id, search),
        page,
        cursor=lambda row: encode_cursor(PROFILE_CURSOR, row["targeting_key"], row["id"]),
        node=Profile.from_row,
    )


async def member_connection(
    info: AppInfo, definition: Definition, first: int | None, after: str | None
) -> ProfileConnection:
    """Stored profiles a definition matches now, keyset by targetingKey; totalCount is exact.

    Counts and pages go through the request's loaders, so asking for `memberCount` and
    `totalCount` of one segment counts once, and a failed count is not run again.
    """
    loaders = info.context.loaders
    page = page_request(
        first=first,
        after=decode_cursor(after, MEMBER_CURSOR) if after else None,
        last=None,
        before=None,
        column="targeting_key",
    )
    after_key = page.after[0] if page.after else None
    rows = await loaders.member_page.load((definition, after_key, page.limit))

    async def outside(_before: bool) -> bool:
        # Members precede the page iff the very first member is not the first row after the
        # cursor. Asking PostgreSQL for the first member keeps its ordering the only judge.
        first_member = await loaders.member_page.load((definition, None, 1))
        if not first_member:
            return False
        return not rows or first_member[0]["targeting_key"] != rows[0]["targeting_key"]

    async def count() -> int:
        return await loaders.member_count.load(definition)

    return connection(
        ProfileConnection,
        page,
        rows,
        outside=outside,
        count=count,
        cursor=lambda row: encode_cursor(MEMBER_CURSOR, row["targeting_key"], row["id"]),
        node=Profile.from_row,
    )


def _preview_problems(
    input: PreviewSegmentInput, limits: validate.Limits
) -> list[validate.Problem]:
    """The checks createSegment applies to targets, at the same paths, and the sample size."""
    problems = validate.validate_targets(
        input.included, input.excluded, ("input", "included"), ("input", "excluded"), limits
    )
    if input.salt is not None:
        problems += validate.validate_salt(input.salt, ("input", "salt"))
    size = input.sample_size
    if size is not None and not 0 <= size <= MAX_SAMPLE_SIZE:
        problems.append(
            validate.Problem(
                ("input", "sampleSize"),
                ProblemCode.INVALID_INPUT,
                f"sampleSize must be between 0 and {MAX_SAMPLE_SIZE}",
            )
        )
    return problems


async def preview_segment(info: AppInfo, input: PreviewSegmentInput) -> SegmentPreview:
    ctx = info.context
    project_id = project_id_for(ctx.principal, input.project_key)
    # Rules validated like createSegment's, references resolved in the caller's project.
    stored, problems, references = await preview_rules(
        ctx.db,
        project_id,
        rules_input_to_raw(input.rules or []),
        ("input", "rules"),
        ctx.settings.limits,
    )
    problems += _preview_problems(input, ctx.settings.limits)
    errors = from_problems(project_problems(project_id) + problems)
    if errors:
        return SegmentPreview(member_count=None, sample=[], user_errors=errors)
    definition = Definition(
        logical_op=(input.logical_op or LogicalOperator.AND).value,
        rules=stored,
        force=bool(input.force),
        included=list(input.included or []),
        excluded=list(input.excluded or []),
        salt=PREVIEW_SALT if input.salt is None else input.salt,
        references=references,
    )
    size = DEFAULT_SAMPLE_SIZE if input.sample_size is None else input.sample_size
    loaders = ctx.loaders
    if size:
        count, rows = await asyncio.gather(
            loaders.member_count.load(definition),
            loaders.member_page.load((definition, None, size)),
        )
    else:
        count, rows = await loaders.member_count.load(definition), []
    return SegmentPreview(
        member_count=count,
        # A member page carries one row more than asked for.
        sample=[Profile.from_row(row) for row in rows[:size]],
        user_errors=[],
        definition=definition,
        project_id=project_id or 0,
    )
