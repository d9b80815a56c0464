"""Target lists (DESIGN §13): `updateSegmentTargets` for both kinds of segment. A standard
segment's lists are fields of its row (an edit is an ordinary write, version + 1); a big
segment's are rows of `segment_targets` (an edit is data: counts change, version does not)."""

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from core.access import require_editor
from core.policy import Policy
from db import segment_targets as db_targets
from db import segments as db_segments
from db.api_keys import Principal
from db.audit import SAMPLE_SIZE, record_event
from db.pool import Database, Row
from rules import validate
from rules.problems import ProblemCode, Refused

# The four lists of an update, by their input names: (list kind, adds?).
CHANGE_LISTS = {
    "addIncluded": ("included", True),
    "removeIncluded": ("included", False),
    "addExcluded": ("excluded", True),
    "removeExcluded": ("excluded", False),
}
_PATH = ("input",)


@dataclass(frozen=True)
class TargetsUpdated:
    segment: Row
    added: int
    removed: int


class _OverLimit(Exception):
    """Rolls back the savepoint of an edit that took a big segment over its limit."""


def _unique(keys: list[str]) -> list[str]:
    return list(dict.fromkeys(keys))


async def update_targets(
    db: Database,
    principal: Principal,
    policy: Policy,
    segment_id: int | None,
    changes: dict[str, list[str] | None],
) -> TargetsUpdated | Refused:
    """Add and remove target keys, all or nothing: `changes` maps CHANGE_LISTS names to keys
    (absent or None: none). A key already there, or removed while absent, changes nothing."""
    require_editor(principal)
    lists = {name: list(changes.get(name) or []) for name in CHANGE_LISTS}
    problems = validate.validate_target_changes(lists, _PATH)
    if problems:
        return Refused(problems)
    if segment_id is None:
        return Refused.one(ProblemCode.NOT_FOUND, "No such segment.", ("input", "segmentId"))
    project_id = principal.project_id
    async with db.transaction() as conn:
        row = await db_segments.segment_for_update(conn, project_id, segment_id)
        if isinstance(row, Refused):
            return Refused.one(row.code, row.problems[0].message, ("input", "segmentId"))
        if row["unbounded"]:
            return await _update_big(conn, principal, policy, row, lists)
        return await _update_standard(conn, principal, policy, row, lists)


async def _update_standard(
    conn: asyncpg.Connection,
    principal: Principal,
    policy: Policy,
    row: Row,
    lists: dict[str, list[str]],
) -> TargetsUpdated | Refused:
    added = removed = 0
    after: dict[str, list[str]] = {}
    for kind in db_targets.KINDS:
        title = kind.capitalize()
        current = list(row[kind])
        present = set(current)
        adds = [key for key in _unique(lists[f"add{title}"]) if key not in present]
        gone = set(lists[f"remove{title}"]) & present
        after[kind] = [key for key in current if key not in gone] + adds
        added += len(adds)
        removed += len(gone)
    total = len(after["included"]) + len(after["excluded"])
    if total > policy.rules.max_targets:
        return Refused.one(
            ProblemCode.LIMIT_EXCEEDED,
            f"{total} targets in included and excluded; at most {policy.rules.max_targets} "
            "are allowed (a big segment holds more)",
            _PATH,
        )
    written = await db_segments.update_segment(
        conn,
        principal.project_id,
        row["id"],
        after,
        actor=principal.name,
        expected_version=None,
        max_targets=policy.rules.max_targets,
    )
    if isinstance(written, Refused):
        return written
    return TargetsUpdated(written, added, removed)


async def _update_big(
    conn: asyncpg.Connection,
    principal: Principal,
    policy: Policy,
    row: Row,
    lists: dict[str, list[str]],
) -> TargetsUpdated | Refused:
    project_id, segment_id = principal.project_id, row["id"]
    edits: dict[str, db_targets.Edit] = {}
    limit = policy.max_big_segment_targets
    try:
        async with conn.transaction():
            for kind in db_targets.KINDS:
                title = kind.capitalize()
                edits[kind] = await db_targets.edit_targets(
                    conn,
                    project_id,
                    segment_id,
                    kind,
                    _unique(lists[f"add{title}"]),
                    _unique(lists[f"remove{title}"]),
                    SAMPLE_SIZE,
                )
            counts = {
                kind: row[f"{kind}_count"] + edits[kind].added - edits[kind].removed
                for kind in db_targets.KINDS
            }
            if sum(counts.values()) > limit:
                raise _OverLimit
    except _OverLimit:
        return Refused.one(
            ProblemCode.LIMIT_EXCEEDED,
            f"A big segment holds at most {limit} targets in included and excluded together.",
            _PATH,
        )
    added = sum(edit.added for edit in edits.values())
    removed = sum(edit.removed for edit in edits.values())
    if not added and not removed:
        return TargetsUpdated(row, 0, 0)
    written = await db_targets.update_counts(
        conn,
        project_id,
        segment_id,
        edits["included"].added - edits["included"].removed,
        edits["excluded"].added - edits["excluded"].removed,
    )
    await record_event(
        conn,
        project_id,
        entity_type="segment",
        entity_id=segment_id,
        action="UPDATED",
        actor=principal.name,
        changes=target_changes(row, written, edits),
    )
    return TargetsUpdated(written, added, removed)


def target_changes(
    before: Row, after: Row, edits: dict[str, db_targets.Edit]
) -> list[dict[str, object]]:
    """The audit changes of a big segment's target edit: each list's count before and after,
    and how many keys were added and removed with a sample of them, never the keys in full."""
    changes: list[dict[str, object]] = []
    for kind, edit in edits.items():
        if not edit.added and not edit.removed:
            continue
        changes.append(
            {
                "field": f"{kind}Count",
                "before": before[f"{kind}_count"],
                "after": after[f"{kind}_count"],
            }
        )
        for what, count, sample in (
            ("Added", edit.added, edit.added_sample),
            ("Removed", edit.removed, edit.removed_sample),
        ):
            if count:
                changes.append(
                    {
                        "field": f"{kind}{what}",
                        "before": None,
                        "after": {"count": count, "sample": sample},
                    }
                )
    return changes


async def import_targets(
    conn: asyncpg.Connection,
    project_id: int,
    segment_key: str,
    kind: str,
    keys: Iterable[tuple[str]],
    *,
    replace: bool,
    policy: Policy,
    actor: str,
) -> TargetsUpdated | Refused:
    """Import checked keys (1-tuples, streamed) into one list of a big segment (`segments
    targets import`), in the caller's transaction: added to the list, or with `replace`
    swapping the whole list (generation + 1; `removed` counts the old keys the new list
    lacks). All or nothing: LIMIT_EXCEEDED writes nothing."""
    found = await db_segments.segment_by_key(conn, project_id, segment_key)
    if found is None:
        return Refused.one(ProblemCode.NOT_FOUND, f"No live segment {segment_key!r}.")
    row = await db_segments.segment_for_update(conn, project_id, found["id"])
    if isinstance(row, Refused):
        return row
    if not row["unbounded"]:
        return Refused.one(
            ProblemCode.INVALID_INPUT,
            f"{segment_key!r} is a standard segment: its targets are changed by "
            "updateSegmentTargets (files import into big segments, created unbounded)",
        )
    limit = policy.max_big_segment_targets
    try:
        async with conn.transaction():
            edit = await db_targets.copy_targets(
                conn, project_id, row["id"], kind, keys, replace=replace
            )
            total = row["included_count"] + row["excluded_count"] + edit.added - edit.removed
            if total > limit:
                raise _OverLimit
    except _OverLimit:
        return Refused.one(
            ProblemCode.LIMIT_EXCEEDED,
            f"A big segment holds at most {limit} targets in included and excluded together",
        )
    delta = edit.added - edit.removed
    written = await db_targets.update_counts(
        conn,
        project_id,
        row["id"],
        delta if kind == "included" else 0,
        delta if kind == "excluded" else 0,
        replaced=replace,
    )
    changes = target_changes(row, written, {kind: edit})
    if replace:
        changes.append(
            {"field": "generation", "before": row["generation"], "after": written["generation"]}
        )
    if changes:
        await record_event(
            conn,
            project_id,
            entity_type="segment",
            entity_id=row["id"],
            action="UPDATED",
            actor=actor,
            changes=changes,
        )
    return TargetsUpdated(written, edit.added, edit.removed)
