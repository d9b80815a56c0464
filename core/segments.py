"""Segment use cases: create, partial update, soft delete, restore, and the reads REST needs.

Fields arrive as plain values under their stored names (`key`, `name`, `description`,
`tags`, `logical_op`, `rules`, `force`, `included`, `excluded`, `salt`); `rules` in the shape
`rules.validate` checks (`{"condition": {...}}` / `{"group": {"logicalOp", "rules"}}`). A
field that is absent is left alone by an update. Problem paths use the GraphQL input's
spelling (("input", "logicalOp")); the REST face translates them.
"""

from collections.abc import Mapping
from typing import Any

import asyncpg

from core import attributes, references
from core.access import project_id_for, project_problems, require_editor
from core.policy import Policy
from db import projects as db_projects
from db import segments as db_segments
from db.api_keys import Principal
from db.pool import Database, Row
from db.segments import SegmentFilter
from rules import validate
from rules.models import LOGICAL_OPS, Limits, referenced_ids
from rules.problems import Problem, ProblemCode, Refused

# The stored fields a segment write may set (db.segments.FIELDS maps them to API names).
FIELDS = tuple(db_segments.FIELDS)
# Fields that must not be null when given (the GraphQL inputs are nullable for partial updates).
_NOT_NULL = ("key", "name", "logical_op", "force", "salt")
_LISTS = ("tags", "rules", "included", "excluded")
_CREATE_DEFAULTS: dict[str, Any] = {
    "description": None,
    "tags": [],
    "logical_op": "AND",
    "rules": [],
    "force": False,
    "included": [],
    "excluded": [],
}
NO_SUCH_SEGMENT = "No such segment."


def _path(name: str) -> tuple[str, ...]:
    return ("input", {"logical_op": "logicalOp"}.get(name, name))


def check_fields(
    given: dict[str, Any], limits: Limits, segment_ids: Mapping[str, int] | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """Validate the given fields; return the stored column values and every problem found.
    `segment_ids` resolves the segment keys the rules reference (`_checked`)."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    given = dict(given)
    for name in _NOT_NULL:
        if name in given and given[name] is None:
            problems.append(
                Problem(_path(name), ProblemCode.INVALID_INPUT, f"{_path(name)[1]} cannot be null")
            )
    for name in _LISTS:
        if name in given and given[name] is None:
            given[name] = []  # null for a list means "none"
    if given.get("key") is not None:
        problems += validate.validate_key(given["key"], _path("key"))
        values["key"] = given["key"]
    if given.get("name") is not None:
        problems += validate.validate_name(given["name"], _path("name"))
        values["name"] = validate.normalize_name(given["name"])
    if given.get("salt") is not None:
        problems += validate.validate_salt(given["salt"], _path("salt"))
        values["salt"] = given["salt"]
    if "description" in given:
        problems += validate.validate_description(given["description"], _path("description"))
        values["description"] = given["description"]
    if "tags" in given:
        problems += validate.validate_tags(given["tags"], _path("tags"))
        values["tags"] = given["tags"]
    if given.get("logical_op") is not None:
        if given["logical_op"] in LOGICAL_OPS:
            values["logical_op"] = given["logical_op"]
        else:
            problems.append(
                Problem(
                    _path("logical_op"),
                    ProblemCode.INVALID_INPUT,
                    "logicalOp must be AND, OR or NOT",
                )
            )
    if "rules" in given:
        stored, rule_problems = validate.validate_rules(
            given["rules"], _path("rules"), limits, segment_ids
        )
        problems += rule_problems
        values["rules"] = stored
    if given.get("force") is not None:
        if isinstance(given["force"], bool):
            values["force"] = given["force"]
        else:
            problems.append(
                Problem(_path("force"), ProblemCode.INVALID_INPUT, "force must be a boolean")
            )
    if "included" in given or "excluded" in given:
        problems += validate.validate_targets(
            given.get("included"),
            given.get("excluded"),
            _path("included"),
            _path("excluded"),
            limits,
        )
        for name in ("included", "excluded"):
            if name in given:
                values[name] = given[name]
    return values, problems


async def _checked(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int | None,
    given: dict[str, Any],
    limits: Limits,
    *,
    lock: bool = True,
    own_key: str | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """`check_fields` inside the write's transaction: the one check pipeline of every segment
    write (create, update, revert; change requests). Rules that reference segments take the
    project's reference-graph lock first (before any row lock), share-lock the referenced
    segments, and are checked for cycles and chain depth; with strictAttributes on, rules are
    checked against the declared attributes (`attributes.strict_problems`). Without `lock`
    (a read asking what a write would say: `check_update`) the same checks run on what is
    committed."""
    values, problems = await _references_checked(
        conn, project_id, segment_id, given, limits, lock=lock, own_key=own_key
    )
    if not problems and "rules" in values:
        problems = await attributes.strict_problems(conn, project_id, values["rules"])
    return values, problems


async def _references_checked(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int | None,
    given: dict[str, Any],
    limits: Limits,
    *,
    lock: bool,
    own_key: str | None,
) -> tuple[dict[str, Any], list[Problem]]:
    paths = validate.referenced_keys(given.get("rules"), _path("rules"))
    if not paths:
        return check_fields(given, limits)
    if lock:
        await db_segments.lock_reference_graph(conn, project_id)
    segment_ids = await references.resolve_keys(conn, project_id, paths, lock=lock)
    values, problems = check_fields(given, limits, segment_ids)
    if problems:
        return values, problems
    own_key = values.get("key") or own_key or ""
    if segment_id is not None and not own_key:
        rows = await db_segments.segments_by_id(conn, project_id, [segment_id])
        own_key = rows[0]["key"] if rows else ""
    problems = await references.graph_problems(
        conn, project_id, segment_id, values["rules"], paths, segment_ids, own_key or "(new)"
    )
    return values, problems


async def create_segment(
    db: Database, principal: Principal, policy: Policy, project_key: str, fields: dict[str, Any]
) -> Row | Refused:
    """A new segment; a missing key is derived from the name (made unique), a missing salt
    is the key. `unbounded` (fixed at creation) makes a big segment, whose target lists are
    rows (`update_targets`) and whose `included`/`excluded` fields must stay empty."""
    require_editor(principal)
    project_id = project_id_for(principal, project_key)
    given = {
        **_CREATE_DEFAULTS,
        **{name: value for name, value in fields.items() if value is not None or name == "name"},
    }
    unbounded = given.pop("unbounded", False)
    if unbounded not in (True, False):
        return Refused.one(
            ProblemCode.INVALID_INPUT, "unbounded must be a boolean", ("input", "unbounded")
        )
    big_problems = db_segments.big_list_problems(given) if unbounded else []
    if project_id is None:
        return Refused(
            project_problems(project_id) + check_fields(given, policy.rules)[1] + big_problems
        )
    async with db.transaction() as conn:
        values, problems = await _checked(conn, project_id, None, given, policy.rules)
        if problems or big_problems:
            return Refused(problems + big_problems)
        values["unbounded"] = unbounded
        derive_from = None if "key" in values else validate.derive_key(values["name"])
        return await db_segments.create_segment(
            conn,
            project_id,
            {"key": values.get("key"), **values},
            actor=principal.name,
            derive_key_from=derive_from,
            max_live=policy.max_live_segments,
        )


async def _gate(conn: asyncpg.Connection, principal: Principal) -> Refused | bool:
    """The project's approval gate for a direct update, delete, restore or revert, inside its
    transaction: APPROVAL_REQUIRED for an editor when the project requires approval, True
    when an admin writes past it (the write's audit event says so), False when open."""
    settings = await db_projects.project_settings(conn, principal.project_id)
    if not settings["require_approval"]:
        return False
    if principal.is_admin:
        return True
    return Refused.one(
        ProblemCode.APPROVAL_REQUIRED,
        "This project requires approval for segment changes; propose the change instead "
        "(proposeSegmentChange).",
    )


def _no_such_segment() -> Refused:
    return Refused.one(ProblemCode.NOT_FOUND, NO_SUCH_SEGMENT, ("input", "id"))


async def update_segment(
    db: Database,
    principal: Principal,
    policy: Policy,
    segment_id: int | None,
    fields: dict[str, Any],
    expected_version: int | None = None,
) -> Row | Refused:
    """Change the given fields; a change that changes nothing writes nothing."""
    require_editor(principal)
    if segment_id is None:
        return _no_such_segment()
    async with db.transaction() as conn:
        bypassed = await _gate(conn, principal)
        if isinstance(bypassed, Refused):
            return bypassed
        return await _update(
            conn, principal, policy, segment_id, fields, expected_version, bypassed
        )


async def _update(
    conn: asyncpg.Connection,
    principal: Principal,
    policy: Policy,
    segment_id: int,
    fields: dict[str, Any],
    expected_version: int | None,
    bypassed_approval: bool,
) -> Row | Refused:
    values, problems = await _checked(conn, principal.project_id, segment_id, fields, policy.rules)
    if problems:
        return Refused(problems)
    return await db_segments.update_segment(
        conn,
        principal.project_id,
        segment_id,
        values,
        actor=principal.name,
        expected_version=expected_version,
        max_targets=policy.rules.max_targets,
        bypassed_approval=bypassed_approval,
    )


async def check_update(
    conn: asyncpg.Connection,
    project_id: int,
    policy: Policy,
    segment_id: int | None,
    fields: dict[str, Any],
    expected_version: int | None = None,
) -> tuple[Row, dict[str, Any]] | Refused:
    """What `update_segment` would answer, without writing or locking anything: the segment
    row as it is and the validated column values the update would set, or the same refusal
    (field problems first, then NOT_FOUND, VERSION_CONFLICT, SEGMENT_DELETED, big segment
    lists, target limit, KEY_TAKEN). The approval gate is not asked: that is the write's."""
    if segment_id is None:
        return _no_such_segment()
    rows = await db_segments.segments_by_id(conn, project_id, [segment_id])
    row = rows[0] if rows else None
    values, problems = await _checked(
        conn,
        project_id,
        segment_id,
        fields,
        policy.rules,
        lock=False,
        own_key=row["key"] if row else None,
    )
    if problems:
        return Refused(problems)
    if refused := db_segments.version_refused(row, expected_version):
        return refused
    assert row is not None  # version_refused refuses a missing row
    if refused := db_segments.update_refused(row, values, policy.rules.max_targets):
        return refused
    if values.get("key", row["key"]) != row["key"] and (
        refused := await db_segments.key_taken(conn, project_id, segment_id, values["key"])
    ):
        return refused
    return row, values


async def update_in(
    conn: asyncpg.Connection,
    principal: Principal,
    policy: Policy,
    segment_id: int,
    fields: dict[str, Any],
) -> Row | Refused:
    """An update inside the caller's transaction, validated like updateSegment but past no
    approval gate: what proposing (as a dry run) and applying a change request write."""
    return await _update(conn, principal, policy, segment_id, fields, None, False)


# Snapshot field (API spelling) -> the stored name a write takes.
_SNAPSHOT_TO_FIELD = {api_name: column for column, api_name in db_segments.FIELDS.items()}


async def revert_segment(
    db: Database,
    principal: Principal,
    policy: Policy,
    segment_id: int | None,
    to_version: int,
    expected_version: int | None = None,
) -> Row | Refused:
    """A new version equal to the snapshot of `to_version`: an ordinary update, validated
    against today's state (a reference to a segment deleted since is NOT_FOUND, a key taken
    since KEY_TAKEN). A reference is to the segment the version referenced, by id, whatever
    its key is now. Whether the segment is deleted is not part of it (restoreSegment)."""
    require_editor(principal)
    if segment_id is None:
        return _no_such_segment()
    async with db.transaction() as conn:
        bypassed = await _gate(conn, principal)
        if isinstance(bypassed, Refused):
            return bypassed
        revision = await db_segments.revision(conn, principal.project_id, segment_id, to_version)
        if revision is None:
            if not await db_segments.segments_by_id(conn, principal.project_id, [segment_id]):
                return _no_such_segment()
            return Refused.one(
                ProblemCode.NOT_FOUND,
                f"The segment has no revision {to_version}.",
                ("input", "toVersion"),
            )
        fields = {
            column: revision["snapshot"][api_name]
            for api_name, column in _SNAPSHOT_TO_FIELD.items()
        }
        if revision["rules"] is not None:  # NULL: written before sql/0017, keys it is
            rules = await references.rules_input_now(
                conn, principal.project_id, revision["rules"], ("input", "toVersion"), lock=True
            )
            if isinstance(rules, Refused):
                return rules
            fields["rules"] = rules
        result = await _update(
            conn, principal, policy, segment_id, fields, expected_version, bypassed
        )
    if isinstance(result, Refused):
        return Refused(
            [_at_to_version(problem) for problem in result.problems], result.blocking_usage
        )
    return result


def _at_to_version(problem: Problem) -> Problem:
    """A problem of the reverted-to snapshot, pointed at the input that chose it."""
    if problem.field is None or problem.field[:2] in (
        ("input", "id"),
        ("input", "expectedVersion"),
    ):
        return problem
    where = ".".join(problem.field[1:])
    return Problem(("input", "toVersion"), problem.code, f"{where}: {problem.message}")


async def delete_segment(
    db: Database, principal: Principal, segment_id: int | None, expected_version: int | None = None
) -> Row | Refused:
    """Soft-delete a segment no live flag uses; SEGMENT_IN_USE lists who does."""
    require_editor(principal)
    if segment_id is None:
        return _no_such_segment()
    async with db.transaction() as conn:
        bypassed = await _gate(conn, principal)
        if isinstance(bypassed, Refused):
            return bypassed
        return await db_segments.delete_segment(
            conn,
            principal.project_id,
            segment_id,
            actor=principal.name,
            expected_version=expected_version,
            bypassed_approval=bypassed,
        )


async def restore_segment(
    db: Database, principal: Principal, policy: Policy, segment_id: int | None
) -> Row | Refused:
    """Bring back a deleted segment, unless its key was taken meanwhile."""
    require_editor(principal)
    if segment_id is None:
        return _no_such_segment()
    project_id = principal.project_id
    async with db.transaction() as conn:
        bypassed = await _gate(conn, principal)
        if isinstance(bypassed, Refused):
            return bypassed
        await db_segments.lock_reference_graph(conn, project_id)
        problems = await _restore_problems(conn, project_id, segment_id)
        if problems:
            return Refused(problems)
        return await db_segments.restore_segment(
            conn,
            project_id,
            segment_id,
            actor=principal.name,
            max_live=policy.max_live_segments,
            bypassed_approval=bypassed,
        )


async def _restore_problems(
    conn: asyncpg.Connection, project_id: int, segment_id: int
) -> list[Problem]:
    """A restored segment's references are checked like a write's: a segment it references
    may have been deleted, or have grown a chain, while it was deleted."""
    rows = await db_segments.segments_by_id(conn, project_id, [segment_id])
    if not rows or rows[0]["deleted_at"] is None:
        return []
    row = rows[0]
    wanted = sorted(set(referenced_ids(row["rules"])))
    if not wanted:
        return []
    live = {
        found["id"]
        for found in await db_segments.lock_for_attach(conn, project_id, wanted)
        if found["deleted_at"] is None
    }
    if set(wanted) - live:
        return [
            Problem(
                ("input", "id"),
                ProblemCode.SEGMENT_DELETED,
                "The segment references a deleted segment; restore that one first.",
            )
        ]
    return await references.graph_problems(
        conn, project_id, segment_id, row["rules"], {}, {}, row["key"], ("input", "id")
    )


async def find_segment(
    db: Database, principal: Principal, project_key: str, key: str
) -> Row | None:
    """The live segment with this key in the caller's project."""
    project_id = project_id_for(principal, project_key)
    if project_id is None:
        return None
    return await db.run(db_segments.segment_by_key, project_id, key)


async def segment_page(
    db: Database,
    principal: Principal,
    project_key: str,
    *,
    search: str | None,
    order: str,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[list[Row], int] | None:
    """A numbered page of live segments and the total, or None for an unknown project."""
    project_id = project_id_for(principal, project_key)
    if project_id is None:
        return None
    return await db.run(
        db_segments.numbered_page,
        project_id,
        SegmentFilter(search=search),
        order,
        descending,
        offset,
        limit,
    )


async def usage(db: Database, principal: Principal, segment_id: int) -> db_segments.Usage:
    """(flag, environment) pairs of live flags whose targeting rules use the segment, and
    the live segments whose rules reference it."""
    async with db.connection() as conn:
        return db_segments.Usage(
            flags=await db_segments.usage_of_segments(conn, principal.project_id, [segment_id]),
            segments=await db_segments.referencing_segments(
                conn, principal.project_id, [segment_id]
            ),
        )


async def referenced_keys(db: Database, principal: Principal, rows: list[Row]) -> dict[int, str]:
    """The keys of the segments these segments' rules reference, by id (no read when none)."""
    wanted = sorted({i for row in rows for i in referenced_ids(row["rules"])})
    if not wanted:
        return {}
    found = await db.run(db_segments.segments_by_id, principal.project_id, wanted)
    return {row["id"]: row["key"] for row in found}
