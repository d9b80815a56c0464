"""Every SQL statement about target lists: the rows of big segments (`segment_targets`, DESIGN
§13) — their edits, lookups by primary key and whole-list replacement — and the targets
connection of both kinds of segment."""

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from functools import partial

import asyncpg

from db.audit import SAMPLE_SIZE
from db.pagination import Listing, SqlBuilder, prefix_bounds
from db.segments import SEGMENT_COLUMNS

KINDS = ("included", "excluded")
TARGET_COLUMNS = "t.targeting_key, t.added_at"

# A standard segment's list as rows shaped like segment_targets' (its keys carry no time of
# their own: the segment's last change stands for it). $1 project, $2 segment, $3 kind.
_ARRAY_TARGETS = """
    (
        SELECT DISTINCT u.targeting_key COLLATE "C" AS targeting_key, s.updated_at AS added_at
        FROM segments s
        CROSS JOIN LATERAL unnest(
            CASE WHEN $3::text = 'included' THEN s.included ELSE s.excluded END
        ) AS u (targeting_key)
        WHERE s.project_id = $1
          AND s.id = $2
    ) t
"""


def _filtered(
    project_id: int, segment_id: int, kind: str, unbounded: bool, search: str | None
) -> SqlBuilder:
    sql = SqlBuilder(project_id, segment_id, kind)
    if unbounded:
        sql.where("t.project_id = $1")
        sql.where("t.segment_id = $2")
        sql.where("t.kind = $3")
    if search:
        low, high = prefix_bounds(search)
        sql.where(f"t.targeting_key >= {sql.param(low)}")
        if high is not None:
            sql.where(f"t.targeting_key < {sql.param(high)}")
    return sql


def target_listing(
    project_id: int, segment_id: int, kind: str, *, unbounded: bool, search: str | None
) -> Listing:
    """One list of a segment, keyset by targeting_key (unique within a list), `search` a
    case-sensitive prefix: a range of the primary key for big segments."""
    table = "segment_targets t" if unbounded else _ARRAY_TARGETS
    return Listing(
        table, TARGET_COLUMNS, partial(_filtered, project_id, segment_id, kind, unbounded, search)
    )


@dataclass(frozen=True)
class Edit:
    """What one edit of a big segment's list did: how many keys it added and removed, and a
    few of each (for the audit event)."""

    added: int
    removed: int
    added_sample: list[str]
    removed_sample: list[str]


async def edit_targets(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int,
    kind: str,
    add: list[str],
    remove: list[str],
    sample: int,
) -> Edit:
    """Add and remove keys of one list of a big segment; keys already there (or not there)
    change nothing. Call holding the segment row's lock (`update_counts` follows)."""
    added_row = await conn.fetchrow(
        """
        WITH written AS (
            INSERT INTO segment_targets (project_id, segment_id, kind, targeting_key)
            SELECT $1, $2, $3, unnest($4::text[])
            ON CONFLICT DO NOTHING
            RETURNING targeting_key
        )
        SELECT count(*)::int, (array_agg(targeting_key ORDER BY targeting_key))[1:$5]
        FROM written
        """,
        project_id,
        segment_id,
        kind,
        add,
        sample,
    )
    removed_row = await conn.fetchrow(
        """
        WITH gone AS (
            DELETE FROM segment_targets
            WHERE project_id = $1
              AND segment_id = $2
              AND kind = $3
              AND targeting_key = ANY($4::text[])
            RETURNING targeting_key
        )
        SELECT count(*)::int, (array_agg(targeting_key ORDER BY targeting_key))[1:$5]
        FROM gone
        """,
        project_id,
        segment_id,
        kind,
        remove,
        sample,
    )
    assert added_row is not None and removed_row is not None, "an aggregate returns a row"
    added, added_sample = added_row
    removed, removed_sample = removed_row
    return Edit(added, removed, list(added_sample or []), list(removed_sample or []))


async def update_counts(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int,
    included_delta: int,
    excluded_delta: int,
    *,
    replaced: bool = False,
) -> asyncpg.Record:
    """Keep a big segment's counts with its rows; `replaced`: the whole list was swapped
    (generation + 1). Target changes are data: neither version nor updated_at moves."""
    row = await conn.fetchrow(
        f"""
        UPDATE segments AS s
        SET included_count = s.included_count + $3,
            excluded_count = s.excluded_count + $4,
            generation = s.generation + CASE WHEN $5 THEN 1 ELSE 0 END
        WHERE s.project_id = $1 AND s.id = $2
        RETURNING {SEGMENT_COLUMNS}
        """,
        project_id,
        segment_id,
        included_delta,
        excluded_delta,
        replaced,
    )
    assert row is not None, "the segment row is locked by the caller"
    return row


async def target_hits(
    conn: asyncpg.Connection, project_id: int, segment_ids: list[int], targeting_key: str
) -> set[tuple[int, str]]:
    """(segment id, kind) of each list of these big segments that holds `targeting_key`:
    one primary-key probe per list, whatever their sizes."""
    if not segment_ids:
        return set()
    rows = await conn.fetch(
        """
        SELECT t.segment_id, t.kind
        FROM segment_targets t
        WHERE t.project_id = $1
          AND t.segment_id = ANY($2::bigint[])
          AND t.kind = ANY($3::text[])
          AND t.targeting_key = $4
        """,
        project_id,
        segment_ids,
        list(KINDS),
        targeting_key,
    )
    return {(row["segment_id"], row["kind"]) for row in rows}


# Memory of the sorts and hashes of one import (per operation, in the server): a million
# keys sort in memory instead of spilling to disk.
IMPORT_WORK_MEM = "128MB"


async def copy_targets(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int,
    kind: str,
    keys: Iterable[tuple[str]],
    *,
    replace: bool,
) -> Edit:
    """Import keys (1-tuples, streamed: memory stays flat however many) into one list of a
    big segment: one COPY into a temporary staging table, then one INSERT of the keys not
    there yet in primary-key order; with `replace`, the old keys absent from the file go
    (kept keys keep their added_at). Call inside the caller's transaction holding the segment
    row's lock: concurrent readers see the old list or the new one, never a mix."""
    await conn.execute(
        """
        CREATE TEMPORARY TABLE IF NOT EXISTS targets_import (
            targeting_key  text COLLATE "C" NOT NULL
        ) ON COMMIT DELETE ROWS
        """
    )
    await conn.execute("TRUNCATE targets_import")
    await conn.execute(f"SET LOCAL work_mem = '{IMPORT_WORK_MEM}'")
    # The two anti-joins below hash or merge, never nest: the staging table has no index,
    # and a list that grew since segment_targets was last analyzed is estimated at a row or
    # so, for which the planner nests a loop that compares every pair of keys (a replace of
    # 5,000 keys by 200,000 took 95 s on PostgreSQL 15; hashed, 0.4 s).
    await conn.execute("SET LOCAL enable_nestloop = off")
    await conn.copy_records_to_table("targets_import", records=keys)
    await conn.execute("ANALYZE targets_import")
    removed = 0
    removed_sample: list[str] = []
    if replace:
        gone = await conn.fetchrow(
            """
            WITH gone AS (
                DELETE FROM segment_targets t
                WHERE t.project_id = $1
                  AND t.segment_id = $2
                  AND t.kind = $3
                  AND NOT EXISTS (
                      SELECT 1 FROM targets_import i WHERE i.targeting_key = t.targeting_key
                  )
                RETURNING t.targeting_key
            )
            SELECT (SELECT count(*)::int FROM gone),
                   ARRAY(SELECT targeting_key FROM gone ORDER BY 1 LIMIT $4)
            """,
            project_id,
            segment_id,
            kind,
            SAMPLE_SIZE,
        )
        assert gone is not None, "an aggregate returns a row"
        removed, removed_sample = gone[0], list(gone[1])
    # Rows in key order: each lands beside the last in the primary key's B-tree. The
    # segment row's lock keeps other writers of this list out, so no conflict can arise.
    written = await conn.fetchrow(
        """
        WITH written AS (
            INSERT INTO segment_targets (project_id, segment_id, kind, targeting_key)
            SELECT DISTINCT $1::bigint, $2::bigint, $3::text, i.targeting_key
            FROM targets_import i
            WHERE NOT EXISTS (
                SELECT 1
                FROM segment_targets t
                WHERE t.project_id = $1
                  AND t.segment_id = $2
                  AND t.kind = $3
                  AND t.targeting_key = i.targeting_key
            )
            ORDER BY i.targeting_key
            RETURNING targeting_key
        )
        SELECT (SELECT count(*)::int FROM written),
               ARRAY(SELECT targeting_key FROM written ORDER BY 1 LIMIT $4)
        """,
        project_id,
        segment_id,
        kind,
        SAMPLE_SIZE,
    )
    assert written is not None, "an aggregate returns a row"
    await conn.execute("RESET enable_nestloop")
    await conn.execute("TRUNCATE targets_import")
    return Edit(written[0], removed, list(written[1]), removed_sample)


async def iter_targets(
    conn: asyncpg.Connection, project_id: int, segment_id: int, kind: str, *, unbounded: bool
) -> AsyncIterator[str]:
    """Every key of one list in targetingKey order, streamed (call in a transaction)."""
    listing = target_listing(project_id, segment_id, kind, unbounded=unbounded, search=None)
    sql = listing.filtered()
    cursor = conn.cursor(
        f"""
        SELECT t.targeting_key
        FROM {listing.table}
        WHERE {sql.where_sql}
        ORDER BY t.targeting_key
        """,
        *sql.params,
        prefetch=10_000,
    )
    async for row in cursor:
        yield row["targeting_key"]
