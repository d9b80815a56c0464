"""Every SQL statement about segments: listing, lookups, usage, and writes."""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import asyncpg

from db.audit import record_event
from db.pagination import (
    Listing,
    SqlBuilder,
    contains_pattern,
    escape_like,
)
from db.pool import returning
from rules.models import MAX_REFERENCE_COMPILE_DEPTH, referenced_ids, rules_as_input
from rules.problems import Problem, ProblemCode, Refused
from rules.validate import key_candidates

SEGMENT_COLUMNS = """
    s.project_id, s.id, s.key, s.name, s.description, s.tags, s.logical_op, s.rules,
    s.force, s.included, s.excluded, s.salt, s.version, s.created_at, s.updated_at, s.deleted_at,
    s.unbounded, s.generation, s.included_count, s.excluded_count
"""

ORDER_COLUMNS = {
    "NAME": "name",
    "KEY": "key",
    "CREATED_AT": "created_at",
    "UPDATED_AT": "updated_at",
}

# Every (targeting rule, segment it references directly): a SEGMENT rule's segment_id, and
# the SegmentMatch references of CUSTOM rules (sql/0007).
_RULE_REFERENCES = """
    (
        SELECT tr.project_id, tr.id AS rule_id, tr.flag_id, tr.environment_id,
               tr.segment_id AS referenced_id
        FROM targeting_rules tr
        WHERE tr.segment_id IS NOT NULL
        UNION ALL
        SELECT tr.project_id, tr.id, tr.flag_id, tr.environment_id, trr.referenced_id
        FROM targeting_rule_references trr
        JOIN targeting_rules tr ON tr.project_id = trr.project_id AND tr.id = trr.rule_id
    )
"""

# A segment is in use while a non-archived flag's rule references it (DESIGN §5), or a live
# segment's rules do (§12). Three index probes per segment, no scan.
_LIVE_USAGE = """
    (
        EXISTS (
            SELECT 1
            FROM targeting_rules tr
            JOIN flags f ON f.project_id = tr.project_id AND f.id = tr.flag_id
            WHERE tr.project_id = s.project_id
              AND tr.segment_id = s.id
              AND f.archived_at IS NULL
        )
        OR EXISTS (
            SELECT 1
            FROM targeting_rule_references trr
            JOIN targeting_rules tr ON tr.project_id = trr.project_id AND tr.id = trr.rule_id
            JOIN flags f ON f.project_id = tr.project_id AND f.id = tr.flag_id
            WHERE trr.project_id = s.project_id
              AND trr.referenced_id = s.id
              AND f.archived_at IS NULL
        )
        OR EXISTS (
            SELECT 1
            FROM segment_references sr
            JOIN segments src ON src.project_id = sr.project_id AND src.id = sr.segment_id
            WHERE sr.project_id = s.project_id
              AND sr.referenced_id = s.id
              AND src.deleted_at IS NULL
        )
    )
"""


@dataclass(frozen=True)
class SegmentFilter:
    search: str | None = None
    tags: list[str] | None = None
    in_use: bool | None = None
    include_deleted: bool = False
    unbounded: bool | None = None


def _filtered(project_id: int, flt: SegmentFilter) -> SqlBuilder:
    sql = SqlBuilder(project_id)
    sql.where("s.project_id = $1")
    if not flt.include_deleted:
        sql.where("s.deleted_at IS NULL")
    if flt.search:
        pattern = sql.param(contains_pattern(flt.search))
        sql.where(f"(s.name ILIKE {pattern} OR s.key ILIKE {pattern})")
    if flt.tags is not None:
        sql.where(f"s.tags && {sql.param(flt.tags)}::text[]")
    if flt.in_use is not None:
        sql.where(_LIVE_USAGE if flt.in_use else f"NOT {_LIVE_USAGE}")
    if flt.unbounded is not None:
        sql.where(f"s.unbounded = {sql.param(flt.unbounded)}")
    return sql


def segment_listing(project_id: int, flt: SegmentFilter) -> Listing:
    return Listing("segments s", SEGMENT_COLUMNS, partial(_filtered, project_id, flt))


async def numbered_page(
    conn: asyncpg.Connection,
    project_id: int,
    flt: SegmentFilter,
    order: str,
    descending: bool,
    offset: int,
    limit: int,
) -> tuple[list[asyncpg.Record], int]:
    """Rows `offset`..`offset + limit` in `order` (an ORDER_COLUMNS key; ties by id) and
    the total: the numbered pages of the REST list. One snapshot for both."""
    sql = _filtered(project_id, flt)
    column = ORDER_COLUMNS[order]
    direction = "DESC" if descending else "ASC"
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            f"""
            SELECT {SEGMENT_COLUMNS}
            FROM segments s
            WHERE {sql.where_sql}
            ORDER BY s.{column} {direction}, s.id {direction}
            OFFSET {sql.param(offset)} LIMIT {sql.param(limit)}
            """,
            *sql.params,
        )
        total = await segment_listing(project_id, flt).count(conn)
    return rows, total


async def segments_by_id(
    conn: asyncpg.Connection, project_id: int, ids: list[int], *, lock: bool = False
) -> list[asyncpg.Record]:
    """The segments with these ids, deleted ones too; with `lock`, share-locked in id order
    (as `live_segments_by_key` locks them) until the transaction ends."""
    return await conn.fetch(
        f"""
        SELECT {SEGMENT_COLUMNS} FROM segments s WHERE s.project_id = $1 AND s.id = ANY($2)
        {"ORDER BY s.id FOR SHARE" if lock else ""}
        """,
        project_id,
        ids,
    )


async def segment_by_key(
    conn: asyncpg.Connection, project_id: int, key: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""
        SELECT {SEGMENT_COLUMNS}
        FROM segments s
        WHERE s.project_id = $1 AND s.key = $2 AND s.deleted_at IS NULL
        """,
        project_id,
        key,
    )


async def segment_and_closure_by_key(
    conn: asyncpg.Connection, project_id: int, key: str
) -> tuple[asyncpg.Record | None, dict[int, asyncpg.Record]]:
    """The live segment with that key and, by id, every segment it reaches through
    references (at most MAX_REFERENCE_COMPILE_DEPTH away): what evaluating it needs, in one
    statement whatever the depth."""
    rows = await conn.fetch(
        f"""
        WITH RECURSIVE root AS (
            SELECT s.id
            FROM segments s
            WHERE s.project_id = $1 AND s.key = $2 AND s.deleted_at IS NULL
        ),
        closure (id, depth) AS (
            SELECT sr.referenced_id, 1
            FROM root
            JOIN segment_references sr ON sr.project_id = $1 AND sr.segment_id = root.id
          UNION
            SELECT sr.referenced_id, closure.depth + 1
            FROM closure
            JOIN segment_references sr ON sr.project_id = $1 AND sr.segment_id = closure.id
            WHERE closure.depth < $3
        )
        -- A join on the primary key: `id IN root OR id IN closure` would read every
        -- segment of the project against two hashed subplans.
        SELECT found.is_root, {SEGMENT_COLUMNS}
        FROM (
            SELECT id, true AS is_root FROM root
          UNION
            SELECT id, false FROM closure
        ) found
        JOIN segments s ON s.project_id = $1 AND s.id = found.id
        """,
        project_id,
        key,
        MAX_REFERENCE_COMPILE_DEPTH,
    )
    root = next((row for row in rows if row["is_root"]), None)
    return root, {row["id"]: row for row in rows if not row["is_root"]}


_FLAG_USAGE_COLUMNS = """
    count(DISTINCT tr.rule_id)::int AS rule_count,
    f.id AS flag_id, f.key AS flag_key, f.name AS flag_name,
    f.description AS flag_description, f.archived_at AS flag_archived_at,
    e.id AS environment_id, e.key AS environment_key, e.name AS environment_name
"""


async def usage_of_segments(
    conn: asyncpg.Connection, project_id: int, segment_ids: list[int]
) -> list[asyncpg.Record]:
    """(segment, flag, environment, rule count) for live flags whose rules reference the
    segment directly (SEGMENT rules and CUSTOM rules' SegmentMatches), with the flag and
    environment."""
    return await conn.fetch(
        f"""
        SELECT tr.referenced_id AS segment_id, {_FLAG_USAGE_COLUMNS}
        FROM {_RULE_REFERENCES} tr
        JOIN flags f ON f.project_id = tr.project_id AND f.id = tr.flag_id
        JOIN environments e ON e.project_id = tr.project_id AND e.id = tr.environment_id
        WHERE tr.project_id = $1
          AND tr.referenced_id = ANY($2)
          AND f.archived_at IS NULL
        GROUP BY tr.referenced_id, f.project_id, f.id, e.project_id, e.id
        ORDER BY tr.referenced_id, f.key, e.key
        """,
        project_id,
        segment_ids,
    )


async def indirect_usage_of_segments(
    conn: asyncpg.Connection, project_id: int, segment_ids: list[int]
) -> list[asyncpg.Record]:
    """Like `usage_of_segments`, for the (flag, environment) pairs that reach the segment only
    through other live segments, at any depth; rule_count counts the pair's rules that do."""
    return await conn.fetch(
        f"""
        WITH RECURSIVE reach (target_id, segment_id) AS (
            SELECT sr.referenced_id, sr.segment_id
            FROM segment_references sr
            WHERE sr.project_id = $1
              AND sr.referenced_id = ANY($2)
          UNION
            SELECT reach.target_id, sr.segment_id
            FROM reach
            JOIN segment_references sr
              ON sr.project_id = $1 AND sr.referenced_id = reach.segment_id
        ),
        live_reach AS (
            SELECT reach.target_id, reach.segment_id
            FROM reach
            JOIN segments src ON src.project_id = $1 AND src.id = reach.segment_id
            WHERE src.deleted_at IS NULL
        )
        SELECT live_reach.target_id AS segment_id, {_FLAG_USAGE_COLUMNS}
        FROM live_reach
        JOIN {_RULE_REFERENCES} tr
          ON tr.project_id = $1 AND tr.referenced_id = live_reach.segment_id
        JOIN flags f ON f.project_id = tr.project_id AND f.id = tr.flag_id
        JOIN environments e ON e.project_id = tr.project_id AND e.id = tr.environment_id
        WHERE f.archived_at IS NULL
          AND NOT EXISTS (
              SELECT 1
              FROM {_RULE_REFERENCES} direct
              WHERE direct.project_id = $1
                AND direct.referenced_id = live_reach.target_id
                AND direct.flag_id = tr.flag_id
                AND direct.environment_id = tr.environment_id
          )
        GROUP BY live_reach.target_id, f.project_id, f.id, e.project_id, e.id
        ORDER BY live_reach.target_id, f.key, e.key
        """,
        project_id,
        segment_ids,
    )


async def referencing_segments(
    conn: asyncpg.Connection, project_id: int, segment_ids: list[int]
) -> list[asyncpg.Record]:
    """Live segments whose rules reference one of `segment_ids` directly, by key, each row
    with the `referenced_id` it references."""
    return await conn.fetch(
        f"""
        SELECT sr.referenced_id, {SEGMENT_COLUMNS}
        FROM segment_references sr
        JOIN segments s ON s.project_id = sr.project_id AND s.id = sr.segment_id
        WHERE sr.project_id = $1
          AND sr.referenced_id = ANY($2)
          AND s.deleted_at IS NULL
        ORDER BY sr.referenced_id, s.key, s.id
        """,
        project_id,
        segment_ids,
    )


@dataclass(frozen=True)
class Usage:
    """Who uses a segment directly: live flags (rows of `usage_of_segments`) and live
    segments (rows of `referencing_segments`)."""

    flags: list[asyncpg.Record]
    segments: list[asyncpg.Record]

    def __bool__(self) -> bool:
        return bool(self.flags or self.segments)


# References between segments (DESIGN §12).

# Any fixed number: with the project id, the key of the advisory lock that serialises the
# writes adding references to a project's segments.
_GRAPH_LOCK = 0x5E6_12EF


async def lock_reference_graph(conn: asyncpg.Connection, project_id: int) -> None:
    """Serialise, until the transaction ends, the writes that add references between the
    project's segments, so two of them cannot close a cycle or a too long chain together.
    Taken before any row lock (so it cannot deadlock with them)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, ($2 % 2147483648)::int)", _GRAPH_LOCK, project_id
    )


async def live_segments_by_key(
    conn: asyncpg.Connection, project_id: int, keys: list[str], *, lock: bool
) -> list[asyncpg.Record]:
    """The live segments with these keys; with `lock`, share-locked in id order like
    `lock_for_attach`: a concurrent delete waits, or has committed and the key is not found."""
    return await conn.fetch(
        f"""
        SELECT id, key FROM segments
        WHERE project_id = $1 AND key = ANY($2) AND deleted_at IS NULL
        ORDER BY id
        {"FOR SHARE" if lock else ""}
        """,
        project_id,
        keys,
    )


async def reference_graph(
    conn: asyncpg.Connection, project_id: int, targets: list[int], segment_id: int | None
) -> list[asyncpg.Record]:
    """The part of the reference graph a write of `segment_id` referencing `targets` can
    change: every segment reachable from `targets` and every live one reaching `segment_id`,
    each with its key and the ids it references (`refs`; `segment_id`'s own left out, as
    the write replaces them)."""
    return await conn.fetch(
        """
        WITH RECURSIVE down (id) AS (
            SELECT unnest($2::bigint[])
          UNION
            SELECT sr.referenced_id
            FROM down
            JOIN segment_references sr ON sr.project_id = $1 AND sr.segment_id = down.id
            WHERE down.id IS DISTINCT FROM $3::bigint
        ),
        up (id) AS (
            SELECT $3::bigint WHERE $3::bigint IS NOT NULL
          UNION
            SELECT sr.segment_id
            FROM up
            JOIN segment_references sr ON sr.project_id = $1 AND sr.referenced_id = up.id
            JOIN segments src ON src.project_id = sr.project_id AND src.id = sr.segment_id
            WHERE src.deleted_at IS NULL
        )
        SELECT s.id, s.key,
               array_remove(array_agg(sr.referenced_id ORDER BY sr.referenced_id), NULL) AS refs
        FROM segments s
        LEFT JOIN segment_references sr
          ON sr.project_id = s.project_id
         AND sr.segment_id = s.id
         AND s.id IS DISTINCT FROM $3::bigint
        WHERE s.project_id = $1
          AND s.id IN (SELECT id FROM down UNION SELECT id FROM up)
        GROUP BY s.id, s.key
        """,
        project_id,
        targets,
        segment_id,
    )


async def reference_closure(
    conn: asyncpg.Connection, project_id: int, segment_ids: list[int]
) -> list[asyncpg.Record]:
    """The stored definitions of `segment_ids` and of every segment they reach through
    references, at most MAX_REFERENCE_COMPILE_DEPTH away: what a compiler needs to inline
    them. One statement whatever the depth."""
    return await conn.fetch(
        f"""
        WITH RECURSIVE closure (id, depth) AS (
            SELECT unnest($2::bigint[]), 1
          UNION
            SELECT sr.referenced_id, closure.depth + 1
            FROM closure
            JOIN segment_references sr ON sr.project_id = $1 AND sr.segment_id = closure.id
            WHERE closure.depth < $3
        )
        SELECT {SEGMENT_COLUMNS}
        FROM segments s
        WHERE s.project_id = $1
          AND s.id IN (SELECT id FROM closure)
        ORDER BY s.id
        """,
        project_id,
        segment_ids,
        MAX_REFERENCE_COMPILE_DEPTH,
    )


async def _set_references(
    conn: asyncpg.Connection, project_id: int, segment_id: int, rules: list[Any]
) -> None:
    """Mirror the references of a segment's (new) rules into segment_references."""
    await conn.execute(
        "DELETE FROM segment_references WHERE project_id = $1 AND segment_id = $2",
        project_id,
        segment_id,
    )
    referenced = sorted(set(referenced_ids(rules)))
    if referenced:
        await conn.execute(
            """
            INSERT INTO segment_references (project_id, segment_id, referenced_id)
            SELECT $1, $2, unnest($3::bigint[])
            """,
            project_id,
            segment_id,
            referenced,
        )


# Writes. Each runs inside the caller's transaction (Database.transaction) and returns
# either the written row or a Refused; nothing is written when it returns an error.

# Stored column -> field name in the API, for audit changes.
FIELDS = {
    "key": "key",
    "name": "name",
    "description": "description",
    "tags": "tags",
    "logical_op": "logicalOp",
    "rules": "rules",
    "force": "force",
    "included": "included",
    "excluded": "excluded",
    "salt": "salt",
}


def _changes(
    before: Mapping[str, Any] | asyncpg.Record | None, after: Mapping[str, Any] | asyncpg.Record
) -> list[dict[str, Any]]:
    return [
        {"field": api_name, "before": before[column] if before else None, "after": after[column]}
        for column, api_name in FIELDS.items()
        if before is None or before[column] != after[column]
    ]


async def _over_live_limit(
    conn: asyncpg.Connection, project_id: int, max_live: int
) -> Refused | None:
    """LIMIT_EXCEEDED when one more live segment would not fit. Locks the project row first,
    which serialises what adds live segments (create, restore) so the limit holds under
    concurrency. NO KEY UPDATE, not UPDATE: other writes' foreign keys (audit events) take
    KEY SHARE on that row; blocking them could deadlock a create waiting on their unique key."""
    await conn.execute("SELECT 1 FROM projects WHERE id = $1 FOR NO KEY UPDATE", project_id)
    live = await conn.fetchval(
        "SELECT count(*) FROM segments WHERE project_id = $1 AND deleted_at IS NULL", project_id
    )
    if live >= max_live:
        return Refused.one(
            ProblemCode.LIMIT_EXCEEDED, f"A project holds at most {max_live} live segments."
        )
    return None


async def _free_key(conn: asyncpg.Connection, project_id: int, base: str) -> str:
    """The first of base, base_2, base_3, ... that no live segment of the project uses."""
    taken = {
        row["key"]
        for row in await conn.fetch(
            """
            SELECT key FROM segments
            WHERE project_id = $1 AND deleted_at IS NULL AND (key = $2 OR key LIKE $3)
            """,
            project_id,
            base,
            # key_candidates may shorten the base to fit a suffix: match on a prefix.
            escape_like(base[:80]) + "%",
        )
    }
    return next(key for key in key_candidates(base) if key not in taken)


async def create_segment(
    conn: asyncpg.Connection,
    project_id: int,
    values: dict[str, Any],
    *,
    actor: str,
    derive_key_from: str | None,
    max_live: int,
) -> asyncpg.Record | Refused:
    """Insert a segment. With `derive_key_from`, values["key"] is ignored and a free key is
    derived from that base; otherwise a taken key is KEY_TAKEN. Without values["salt"] the
    salt is the final key."""
    if over := await _over_live_limit(conn, project_id, max_live):
        return over
    if derive_key_from is not None:
        values = {**values, "key": await _free_key(conn, project_id, derive_key_from)}
    if values.get("salt") is None:
        values = {**values, "salt": values["key"]}
    try:
        async with conn.transaction():
            row = await returning(
                conn,
                f"""
                INSERT INTO segments AS s (project_id, key, name, description, tags, logical_op,
                                           rules, force, included, excluded, salt, unbounded)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                RETURNING {SEGMENT_COLUMNS}
                """,
                project_id,
                values["key"],
                values["name"],
                values["description"],
                values["tags"],
                values["logical_op"],
                values["rules"],
                values["force"],
                values["included"],
                values["excluded"],
                values["salt"],
                bool(values.get("unbounded")),
            )
    except asyncpg.UniqueViolationError:
        return _key_taken(values["key"])
    if any(referenced_ids(row["rules"])):
        await _set_references(conn, project_id, row["id"], row["rules"])
    changes = _changes(None, row)
    if row["unbounded"]:
        changes.append({"field": "unbounded", "before": None, "after": True})
    await _record_write(conn, row, action="CREATED", actor=actor, changes=changes)
    return row


# How an audit event records a write an admin made past the project's approval gate.
BYPASSED_APPROVAL = {"field": "approval", "before": "required", "after": "bypassed"}


# Revisions (DESIGN §14). Snapshot fields, in the contract's input spelling.
SNAPSHOT_FIELDS = (*FIELDS.values(), "deleted")
REVISION_COLUMNS = """
    r.project_id, r.id, r.segment_id, r.version, r.snapshot, r.rules, r.actor, r.created_at,
    (
        SELECT p.snapshot
        FROM segment_revisions p
        WHERE p.project_id = r.project_id
          AND p.segment_id = r.segment_id
          AND p.version = r.version - 1
    ) AS previous
"""


async def snapshot_of(
    conn: asyncpg.Connection, row: Mapping[str, Any] | asyncpg.Record
) -> dict[str, Any]:
    """A stored segment's definition as a revision holds it: input shapes, references by the
    referenced segments' keys now."""
    wanted = sorted(set(referenced_ids(row["rules"])))
    keys = {}
    if wanted:
        keys = {
            found["id"]: found["key"]
            for found in await segments_by_id(conn, row["project_id"], wanted)
        }
    snapshot = {api_name: row[column] for column, api_name in FIELDS.items()}
    snapshot["rules"] = rules_as_input(row["rules"], keys)
    snapshot["deleted"] = row["deleted_at"] is not None
    return snapshot


async def _record_write(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    *,
    action: str,
    actor: str,
    changes: list[dict[str, Any]],
    bypassed_approval: bool = False,
) -> None:
    """What every write that bumps a segment's version records in its transaction: the
    audit event and the revision of the version it leaves. An admin's write past the
    project's approval gate says so in the event's changes."""
    if bypassed_approval:
        changes = [*changes, BYPASSED_APPROVAL]
    await record_event(
        conn,
        row["project_id"],
        entity_type="segment",
        entity_id=row["id"],
        action=action,
        actor=actor,
        changes=changes,
    )
    await conn.execute(
        """
        INSERT INTO segment_revisions
            (project_id, segment_id, version, snapshot, rules, actor, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        row["project_id"],
        row["id"],
        row["version"],
        await snapshot_of(conn, row),
        row["rules"],
        actor,
        row["updated_at"],
    )


def _revisions_filtered(project_id: int, segment_id: int) -> SqlBuilder:
    sql = SqlBuilder(project_id, segment_id)
    sql.where("r.project_id = $1 AND r.segment_id = $2")
    return sql


def revision_listing(project_id: int, segment_id: int) -> Listing:
    """A segment's revisions; each row's `previous` is the snapshot of the version before."""
    return Listing(
        "segment_revisions r",
        REVISION_COLUMNS,
        partial(_revisions_filtered, project_id, segment_id),
    )


async def revision(
    conn: asyncpg.Connection, project_id: int, segment_id: int, version: int
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""
        SELECT {REVISION_COLUMNS}
        FROM segment_revisions r
        WHERE r.project_id = $1 AND r.segment_id = $2 AND r.version = $3
        """,
        project_id,
        segment_id,
        version,
    )


def big_list_problems(fields: Mapping[str, Any]) -> list[Problem]:
    """INVALID_INPUT for keys given in `included`/`excluded` of a big segment, whose lists
    are rows edited by updateSegmentTargets or imported by the CLI (DESIGN §13)."""
    return [
        Problem(
            ("input", name),
            ProblemCode.INVALID_INPUT,
            f"A big (unbounded) segment keeps its {name} keys as rows: change them with "
            "updateSegmentTargets or `segments targets import`.",
        )
        for name in ("included", "excluded")
        if fields.get(name)
    ]


def _key_taken(key: str) -> Refused:
    return Refused.one(
        ProblemCode.KEY_TAKEN, f"Another live segment uses the key {key!r}.", ("input", "key")
    )


async def segment_for_update(
    conn: asyncpg.Connection, project_id: int, segment_id: int
) -> asyncpg.Record | Refused:
    """The live segment row, locked until the transaction ends (NOT_FOUND, SEGMENT_DELETED)."""
    row = await _locked(conn, project_id, segment_id, None)
    if not isinstance(row, Refused) and row["deleted_at"] is not None:
        return Refused.one(
            ProblemCode.SEGMENT_DELETED, "A deleted segment cannot be updated.", ("input", "id")
        )
    return row


async def lock_segment(
    conn: asyncpg.Connection, project_id: int, segment_id: int, expected_version: int | None
) -> asyncpg.Record | Refused:
    """The segment row (live or deleted), locked until the transaction ends (NOT_FOUND,
    VERSION_CONFLICT): what a change request is written against and applied over."""
    return await _locked(conn, project_id, segment_id, expected_version)


async def _locked(
    conn: asyncpg.Connection, project_id: int, segment_id: int, expected_version: int | None
) -> asyncpg.Record | Refused:
    """The segment row, locked until the transaction ends, after the common checks."""
    row = await conn.fetchrow(
        f"SELECT {SEGMENT_COLUMNS} FROM segments s WHERE s.project_id = $1 AND s.id = $2 FOR UPDATE",
        project_id,
        segment_id,
    )
    if refused := version_refused(row, expected_version):
        return refused
    assert row is not None  # version_refused refuses a missing row
    return row


def update_refused(
    before: Mapping[str, Any] | asyncpg.Record, changes: Mapping[str, Any], max_targets: int
) -> Refused | None:
    """Why `changes` (validated column values) cannot be applied to the segment row
    `before`, apart from a key taken (which the write's unique index tells): what
    `update_segment` refuses once it holds the row, and what an impact asks without it."""
    if before["deleted_at"] is not None:
        return Refused.one(
            ProblemCode.SEGMENT_DELETED, "A deleted segment cannot be updated.", ("input", "id")
        )
    if before["unbounded"] and (problems := big_list_problems(changes)):
        return Refused(problems)
    after = {**before, **changes}
    if len(after["included"]) + len(after["excluded"]) > max_targets:
        return Refused.one(
            ProblemCode.LIMIT_EXCEEDED,
            f"At most {max_targets} targets in included and excluded together.",
            ("input", "included"),
        )
    return None


def version_refused(
    row: Mapping[str, Any] | asyncpg.Record | None, expected_version: int | None
) -> Refused | None:
    """NOT_FOUND without the row, VERSION_CONFLICT when it is not at `expected_version`."""
    if row is None:
        return Refused.one(ProblemCode.NOT_FOUND, "No such segment.", ("input", "id"))
    if expected_version is not None and row["version"] != expected_version:
        return Refused.one(
            ProblemCode.VERSION_CONFLICT,
            f"The segment is at version {row['version']}, not {expected_version}.",
            ("input", "expectedVersion"),
        )
    return None


async def key_taken(
    conn: asyncpg.Connection, project_id: int, segment_id: int, key: str
) -> Refused | None:
    """KEY_TAKEN when another live segment uses `key`: what the unique index refuses on write."""
    row = await segment_by_key(conn, project_id, key)
    return _key_taken(key) if row is not None and row["id"] != segment_id else None


async def update_segment(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int,
    changes: dict[str, Any],
    *,
    actor: str,
    expected_version: int | None,
    max_targets: int,
    bypassed_approval: bool = False,
) -> asyncpg.Record | Refused:
    """Apply the given columns; a change that changes nothing writes nothing."""
    before = await _locked(conn, project_id, segment_id, expected_version)
    if isinstance(before, Refused):
        return before
    if refused := update_refused(before, changes, max_targets):
        return refused
    after = {**before, **changes}
    diff = _changes(before, after)
    if not diff:
        return before
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(FIELDS, start=3))
    try:
        async with conn.transaction():
            row = await returning(
                conn,
                f"""
                UPDATE segments AS s
                SET {assignments}, version = s.version + 1, updated_at = now()
                WHERE s.project_id = $1 AND s.id = $2
                RETURNING {SEGMENT_COLUMNS}
                """,
                project_id,
                segment_id,
                *(after[column] for column in FIELDS),
            )
    except asyncpg.UniqueViolationError:
        return _key_taken(after["key"])
    if before["rules"] != row["rules"]:
        await _set_references(conn, project_id, segment_id, row["rules"])
    await _record_write(
        conn,
        row,
        action="UPDATED",
        actor=actor,
        changes=diff,
        bypassed_approval=bypassed_approval,
    )
    return row


async def delete_segment(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int,
    *,
    actor: str,
    expected_version: int | None,
    bypassed_approval: bool = False,
) -> asyncpg.Record | Refused:
    """Soft-delete unless a live flag or segment uses it. The row lock taken first is the one
    setTargetingRules takes to attach and a segment write takes to reference it
    (`lock_live_by_key`), so the usage seen here cannot change before commit."""
    row = await _locked(conn, project_id, segment_id, expected_version)
    if isinstance(row, Refused):
        return row
    if row["deleted_at"] is not None:
        return Refused.one(
            ProblemCode.SEGMENT_DELETED, "The segment is already deleted.", ("input", "id")
        )
    usage = Usage(
        flags=await usage_of_segments(conn, project_id, [segment_id]),
        segments=await referencing_segments(conn, project_id, [segment_id]),
    )
    if usage:
        return Refused.one(
            ProblemCode.SEGMENT_IN_USE,
            "Live flags or segments still reference this segment; remove it from their "
            "rules, archive the flags or delete the segments first.",
            ("input", "id"),
            blocking_usage=usage,
        )
    deleted = await _set_deleted(conn, project_id, segment_id, deleted=True)
    await _record_write(
        conn,
        deleted,
        action="DELETED",
        actor=actor,
        changes=[{"field": "deleted", "before": False, "after": True}],
        bypassed_approval=bypassed_approval,
    )
    return deleted


async def restore_segment(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int,
    *,
    actor: str,
    max_live: int,
    bypassed_approval: bool = False,
) -> asyncpg.Record | Refused:
    row = await _locked(conn, project_id, segment_id, None)
    if isinstance(row, Refused) or row["deleted_at"] is None:
        return row
    if over := await _over_live_limit(conn, project_id, max_live):
        return over
    try:
        async with conn.transaction():
            restored = await _set_deleted(conn, project_id, segment_id, deleted=False)
    except asyncpg.UniqueViolationError:
        return _key_taken(row["key"])
    await _record_write(
        conn,
        restored,
        action="RESTORED",
        actor=actor,
        changes=[{"field": "deleted", "before": True, "after": False}],
        bypassed_approval=bypassed_approval,
    )
    return restored


async def _set_deleted(
    conn: asyncpg.Connection, project_id: int, segment_id: int, *, deleted: bool
) -> asyncpg.Record:
    return await returning(
        conn,
        f"""
        UPDATE segments AS s
        SET deleted_at = CASE WHEN $3 THEN now() END, version = s.version + 1, updated_at = now()
        WHERE s.project_id = $1 AND s.id = $2
        RETURNING {SEGMENT_COLUMNS}
        """,
        project_id,
        segment_id,
        deleted,
    )


async def lock_for_attach(
    conn: asyncpg.Connection, project_id: int, segment_ids: list[int]
) -> list[asyncpg.Record]:
    """Share-lock segments a flag is about to reference (in id order, so no deadlock):
    a concurrent delete waits, or has already committed and is seen here."""
    return await conn.fetch(
        """
        SELECT id, deleted_at FROM segments
        WHERE project_id = $1 AND id = ANY($2)
        ORDER BY id
        FOR SHARE
        """,
        project_id,
        segment_ids,
    )
