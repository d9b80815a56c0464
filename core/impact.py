"""Who a segment change would let in and out (DESIGN §14 "Impact"), over stored profiles.

An `Impact` holds the segment's definition as it is (`before`) and as the change would make
it (`after`; None for a delete, which leaves nobody in), both `db.members.Definition`s with
the closure of the segments their rules reference, so membership is exactly what
`Segment.members` / `memberCount` say (force, included/excluded, big segment target rows,
references, and the evaluator deciding the rows SQL leaves undecided). Nothing is counted
here: counts and samples are asked lazily, through the request's loaders (schema/impact.py),
with the §11 compiler on both predicates:

- counts: `db.members.count_impact(conn, project_id, impact.before, impact.after)`, one
  scan computing before, after, entering and leaving together;
- samples: `db.members.member_page(conn, project_id, impact.entering(), None, n)` (and
  `impact.leaving()`), targetingKey ascending;
- affected flags: the segment's usage and indirect usage (`Segment.usage`'s loaders).

Two ways in:

- `change_impact(db, principal, policy, segment_id, fields, expected_version)`: for
  `segmentChangeImpact`. `fields` are an update's (core.segments spelling: `logical_op`,
  `rules`, ...), validated exactly as `updateSegment` validates them
  (`core.segments.check_update`: the same userErrors, nothing written or locked). Any role
  may ask: it is a read.
- `impact_of(conn, project_id, row, changes, delete=False)`: for a change request. `row` is
  the segment row as it is now (db.segments.SEGMENT_COLUMNS), `changes` the validated
  column values it proposes (what `check_fields`/`check_update` return), applied over the
  row; or `delete=True`. Call it on any connection; it reads the reference closure (one
  statement, none when neither definition references a segment).
- `request_impact(db, principal, policy, request)`: what `ChangeRequest.impact` shows,
  against the segment's current version: a request's (its row) fields as applying it would
  write them today (`core.change_requests.fields_now`), validated over today's state like
  that update (None when it would be refused), or its delete.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from core import references
from core import segments as core_segments
from core.change_requests import fields_now
from core.policy import Policy
from db import segments as db_segments
from db.api_keys import Principal
from db.members import Definition, Difference, references_from_rows
from db.pool import Database
from rules.problems import Refused


@dataclass(frozen=True)
class Impact:
    """A change of one segment's definition: `before` as stored, `after` as the change would
    make it (None: deleted, nobody is a member after)."""

    project_id: int
    segment_id: int
    before: Definition
    after: Definition | None

    def entering(self) -> Difference | None:
        """Members after and not before (None when nobody can enter: a delete)."""
        return None if self.after is None else Difference(plus=self.after, minus=self.before)

    def leaving(self) -> Difference | Definition:
        """Members before and not after (for a delete: every member before)."""
        return self.before if self.after is None else Difference(plus=self.before, minus=self.after)


async def impact_of(
    conn: asyncpg.Connection,
    project_id: int,
    row: Mapping[str, Any] | asyncpg.Record,
    changes: Mapping[str, Any] | None,
    *,
    delete: bool = False,
) -> Impact:
    """The impact of applying `changes` (validated column values) to the segment `row` now,
    or of deleting it."""
    before_row = dict(row)
    after_row = None if delete else {**before_row, **(changes or {})}
    rules = list(row["rules"] or []) + (list(after_row["rules"] or []) if after_row else [])
    closure = references_from_rows(await references.load_closure(conn, project_id, rules))
    return Impact(
        project_id=project_id,
        segment_id=row["id"],
        before=Definition.from_row(before_row, closure),
        after=None if after_row is None else Definition.from_row(after_row, closure),
    )


async def change_impact(
    db: Database,
    principal: Principal,
    policy: Policy,
    segment_id: int | None,
    fields: dict[str, Any],
    expected_version: int | None = None,
) -> Impact | Refused:
    """The impact of an update, refused exactly as `update_segment` would refuse it."""
    async with db.connection() as conn:
        checked = await core_segments.check_update(
            conn, principal.project_id, policy, segment_id, fields, expected_version
        )
        if isinstance(checked, Refused):
            return checked
        row, values = checked
        return await impact_of(conn, principal.project_id, row, values)


async def request_impact(
    db: Database, principal: Principal, policy: Policy, request: Mapping[str, Any]
) -> Impact | None:
    """A change request's (its db.change_requests row) impact on the segment as it is now;
    None when the segment is gone or deleted, or when today's state would refuse the update
    (a segment its rules reference deleted since, too)."""
    project_id = principal.project_id
    segment_id = request["segment_id"]
    async with db.connection() as conn:
        if request["deletes"]:
            rows = await db_segments.segments_by_id(conn, project_id, [segment_id])
            if not rows or rows[0]["deleted_at"] is not None:
                return None
            return await impact_of(conn, project_id, rows[0], None, delete=True)
        fields = await fields_now(conn, request, lock=False)
        if isinstance(fields, Refused):
            return None
        checked = await core_segments.check_update(conn, project_id, policy, segment_id, fields)
        if isinstance(checked, Refused):
            return None
        row, values = checked
        return await impact_of(conn, project_id, row, values)
