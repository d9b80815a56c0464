"""Who is in a segment: counts, pages and streams of the stored profiles a definition matches.

Membership is evaluation (DESIGN §11). `db.rules_sql` compiles the definition into one
three-valued SQL predicate: TRUE members and FALSE non-members are settled in SQL, and the
few rows it leaves NULL are decided by the Python evaluator on their stored context, so every
answer here is exactly what `compile_segment(...).evaluate` says of each profile.
"""

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg

from db.pagination import SqlBuilder
from db.profiles import PROFILE_COLUMNS
from db.rules_sql import Predicate, compile_definition
from db.segment_targets import KINDS as TARGET_KINDS
from rules.evaluate import CompiledSegment, compile_segment
from rules.models import References, StoredDefinition

# Undecided rows fetched per round trip while streaming them to the evaluator.
_CANDIDATE_PREFETCH = 2_000
# Member pages read the key index in windows; the first window holds this many profiles per
# wanted member, each next one four times as many, so a page of a dense segment costs one
# small read and a sparse one a bounded number of round trips.
_WINDOW_PER_MEMBER = 32
_WINDOW_GROWTH = 4
_MAX_WINDOW = 100_000


@dataclass(frozen=True)
class Definition:
    """A segment's stored (already validated) definition: what membership is decided by.
    `references` holds the definitions of every segment its rules reach through references
    (core.references loads that closure), so SQL and the evaluator inline the same ones."""

    logical_op: str
    rules: list[dict[str, Any]]
    force: bool
    included: list[str]
    excluded: list[str]
    salt: str  # seeds PERCENTAGE buckets: the segment's, or a preview's
    references: References = field(default_factory=dict)
    # A big segment's id: its lists are rows of segment_targets, probed by primary key.
    big_segment_id: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], references: References | None = None) -> "Definition":
        return cls(
            logical_op=row["logical_op"],
            rules=list(row["rules"] or []),
            force=bool(row["force"]),
            included=list(row["included"] or []),
            excluded=list(row["excluded"] or []),
            salt=row["salt"],
            references=references or {},
            big_segment_id=row["id"] if row.get("unbounded") else None,
        )

    def big_segment_ids(self) -> list[int]:
        """The big segments whose lists decide membership: this one and referenced ones."""
        ids = {i for i, found in self.references.items() if found.get("unbounded")}
        if self.big_segment_id is not None:
            ids.add(self.big_segment_id)
        return sorted(ids)

    def with_hits(self, hits: set[tuple[int, str]], key: str) -> "Definition":
        """This definition for one profile whose key the lists `hits` ((segment id, kind))
        of its big segments hold: those lists as [key], the others empty."""

        def lists(segment_id: int) -> dict[str, list[str]]:
            return {kind: [key] if (segment_id, kind) in hits else [] for kind in TARGET_KINDS}

        references = {
            i: StoredDefinition(**{**found, **lists(i)}) if found.get("unbounded") else found  # type: ignore[typeddict-item]
            for i, found in self.references.items()
        }
        if self.big_segment_id is None:
            return replace(self, references=references)
        own = lists(self.big_segment_id)
        return replace(
            self, references=references, included=own["included"], excluded=own["excluded"]
        )

    def compile(self) -> CompiledSegment:
        return compile_segment(
            logical_op=self.logical_op,
            rules=self.rules,  # type: ignore[arg-type]
            force=self.force,
            included=self.included,
            excluded=self.excluded,
            salt=self.salt,
            references=self.references,
        )

    def predicate(self, sql: SqlBuilder) -> Predicate:
        return compile_definition(
            sql,
            logical_op=self.logical_op,
            rules=self.rules,
            force=self.force,
            included=self.included,
            excluded=self.excluded,
            salt=self.salt,
            references=self.references,
            big_segment_id=self.big_segment_id,
        )

    def decide(self, row: asyncpg.Record, compiled: CompiledSegment) -> bool:
        """The evaluator's answer for a streamed candidate row (`context`, `targeting_key`
        and `hits`, see `hits_column`); `compiled` is this definition's for no hits."""
        hits = row["hits"]
        if not hits:
            return compiled.matches_flat(row["context"])
        found = {(int(i), kind) for i, kind in (hit.split(" ", 1) for hit in hits)}
        return self.with_hits(found, row["targeting_key"]).compile().matches_flat(row["context"])


def hits_column(definition: Definition, sql: SqlBuilder, alias: str) -> str:
    """An SQL array of the lists ("<segment id> <kind>") of the definition's big segments
    that hold the key of the profile row `alias`: one primary-key probe per list."""
    ids = definition.big_segment_ids()
    if not ids:
        return "NULL::text[]"
    return f"""
        ARRAY(
            SELECT st.segment_id::text || ' ' || st.kind
            FROM segment_targets st
            WHERE st.project_id = {alias}.project_id
              AND st.segment_id = ANY({sql.param(ids)}::bigint[])
              AND st.kind = ANY({sql.param(list(TARGET_KINDS))}::text[])
              AND st.targeting_key = {alias}.targeting_key COLLATE "C"
        )
    """


def references_from_rows(rows: Mapping[int, Any]) -> References:
    """Segment rows by id (a loaded closure) as the definitions compilers inline."""
    return {
        segment_id: StoredDefinition(
            key=row["key"],
            logical_op=row["logical_op"],
            rules=list(row["rules"] or []),
            force=bool(row["force"]),
            included=list(row["included"] or []),
            excluded=list(row["excluded"] or []),
            salt=row["salt"],
            unbounded=bool(row.get("unbounded")),
        )
        for segment_id, row in rows.items()
    }


async def count_members(conn: asyncpg.Connection, project_id: int, definition: Definition) -> int:
    """The exact number of the project's profiles the definition matches now."""
    sql = SqlBuilder(project_id)
    predicate = definition.predicate(sql)
    if predicate.exact:
        return await conn.fetchval(
            f"""
            SELECT count(*)
            FROM profiles p
            WHERE p.project_id = $1
              AND {predicate.expr}
            """,
            *sql.params,
        )
    # One scan tells members from undecided rows (the predicate is evaluated once per row,
    # as a grouping key); a second one, only when some are undecided, streams those to the
    # evaluator. Both read one snapshot, so no profile is counted twice or missed when
    # writes land in between.
    if conn.is_in_transaction():
        snapshot = conn.transaction()
    else:
        snapshot = conn.transaction(isolation="repeatable_read", readonly=True)
    async with snapshot:
        counts = {
            row["decided"]: row["profiles"]
            for row in await conn.fetch(
                f"""
                SELECT d.decided, count(*) AS profiles
                FROM (
                    SELECT {predicate.expr} AS decided
                    FROM profiles p
                    WHERE p.project_id = $1
                ) d
                GROUP BY d.decided
                """,
                *sql.params,
            )
        }
        members = counts.get(True, 0)
        if not counts.get(None):
            return members
        compiled = definition.compile()
        candidates = SqlBuilder(*sql.params)
        hits = hits_column(definition, candidates, "p")
        cursor = conn.cursor(
            f"""
            SELECT p.context, p.targeting_key, {hits} AS hits
            FROM profiles p
            WHERE p.project_id = $1
              AND ({predicate.expr}) IS NULL
            """,
            *candidates.params,
            prefetch=_CANDIDATE_PREFETCH,
        )
        async for row in cursor:
            if definition.decide(row, compiled):
                members += 1
    return members


async def member_page(
    conn: asyncpg.Connection,
    project_id: int,
    definition: Definition,
    after_key: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Members in targetingKey order after `after_key`: up to `limit + 1` rows, so the caller
    can tell whether another page follows."""
    wanted = limit + 1
    if wanted <= 0:
        return []
    members: list[asyncpg.Record] = []
    scan = _scan(conn, project_id, definition, after_key, wanted * _WINDOW_PER_MEMBER, wanted)
    async for row in scan:
        members.append(row)
        if len(members) >= wanted:
            break
    await scan.aclose()
    return members


async def iter_members(
    conn: asyncpg.Connection, project_id: int, definition: Definition, batch_size: int = 1000
) -> AsyncIterator[asyncpg.Record]:
    """Every member in targetingKey order, read in keyset windows (no transaction needed)."""
    batch_size = max(batch_size, 1)
    async for row in _scan(conn, project_id, definition, None, batch_size, batch_size):
        yield row


async def _scan(
    conn: asyncpg.Connection,
    project_id: int,
    definition: Definition,
    after_key: str | None,
    window: int,
    limit: int,
) -> AsyncGenerator[asyncpg.Record, None]:
    """Members after `after_key` in key order, read window by window along the key index.

    Each statement walks the next `window` keys (the window grows with every round trip),
    evaluates the predicate on them and returns the members and undecided rows, at most
    `limit` of them (so memory stays bounded however large windows grow), plus the window's
    last row as a marker of where to go on.

    Windows rather than one `WHERE predicate ORDER BY key LIMIT n`: the planner cannot
    estimate a rule predicate's selectivity and may choose to scan and sort everything for a
    segment that matches most profiles, where walking the index stops after a few hundred
    rows."""
    # Every key is at least one character, so "" sorts before all of them.
    sql = SqlBuilder(project_id, after_key or "", window, limit)
    predicate = definition.predicate(sql)
    hits = hits_column(definition, sql, "w")
    query = f"""
        SELECT w.project_id, w.id, w.targeting_key, w.attributes, w.updated_at,
               w.decided, w.position,
               CASE WHEN w.decided THEN NULL ELSE w.context END AS context,
               CASE WHEN w.decided IS NULL THEN {hits} END AS hits
        FROM (
            SELECT p.project_id, p.id, p.targeting_key, p.attributes, p.updated_at, p.context,
                   {predicate.expr} AS decided,
                   row_number() OVER (ORDER BY p.targeting_key) AS position
            FROM (
                SELECT {PROFILE_COLUMNS}, p.context
                FROM profiles p
                WHERE p.project_id = $1
                  AND p.targeting_key > $2::text
                ORDER BY p.targeting_key
                LIMIT $3
            ) p
        ) w
        WHERE w.decided IS NOT FALSE
           OR w.position = $3
        ORDER BY w.targeting_key
        LIMIT $4
    """
    compiled: CompiledSegment | None = None
    params = sql.params
    while True:
        rows = await conn.fetch(query, *params)
        for row in rows:
            if row["decided"] is None:
                compiled = compiled or definition.compile()
                if definition.decide(row, compiled):
                    yield row
            elif row["decided"]:
                yield row
        window_full = bool(rows) and rows[-1]["position"] == params[2]
        if not window_full and len(rows) < params[3]:
            return  # the window ran out of profiles
        params[1] = rows[-1]["targeting_key"]
        params[2] = min(params[2] * _WINDOW_GROWTH, _MAX_WINDOW)


@dataclass(frozen=True)
class Overlap:
    """How the stored profiles split between two definitions A and B."""

    only_a: int
    only_b: int
    both: int

    @property
    def either(self) -> int:
        return self.only_a + self.only_b + self.both


async def count_overlap(
    conn: asyncpg.Connection, project_id: int, a: Definition, b: Definition
) -> Overlap:
    """The exact numbers of the project's profiles only A matches, only B, and both: each
    membership exactly as `count_members` decides it.

    One scan evaluates both predicates per row and groups by the pair of answers; when SQL
    leaves some row undecided for either, a second statement in the same snapshot streams
    those rows to the evaluator (as `count_members` does)."""
    sql = SqlBuilder(project_id)
    in_a, in_b = a.predicate(sql), b.predicate(sql)
    tally = {(True, False): 0, (False, True): 0, (True, True): 0}

    async def scan() -> bool:
        """Counts the decided pairs; whether some row is undecided."""
        undecided = False
        for row in await conn.fetch(
            f"""
            SELECT d.a, d.b, count(*) AS profiles
            FROM (
                SELECT {in_a.expr} AS a, {in_b.expr} AS b
                FROM profiles p
                WHERE p.project_id = $1
            ) d
            GROUP BY d.a, d.b
            """,
            *sql.params,
        ):
            pair = (row["a"], row["b"])
            if None in pair:
                undecided = True
            elif pair in tally:
                tally[pair] += row["profiles"]
        return undecided

    if in_a.exact and in_b.exact:
        await scan()
    else:
        if conn.is_in_transaction():
            snapshot = conn.transaction()
        else:
            snapshot = conn.transaction(isolation="repeatable_read", readonly=True)
        async with snapshot:
            if await scan():
                await _decide_undecided(conn, sql, a, b, in_a, in_b, tally)
    return Overlap(
        only_a=tally[(True, False)], only_b=tally[(False, True)], both=tally[(True, True)]
    )


async def _decide_undecided(
    conn: asyncpg.Connection,
    sql: SqlBuilder,
    a: Definition,
    b: Definition,
    in_a: Predicate,
    in_b: Predicate,
    tally: dict[tuple[bool, bool], int],
) -> None:
    """Adds the rows SQL left undecided for A or B to `tally`, each decided by the
    evaluator where SQL could not (the other answer is SQL's when it gave one)."""
    candidates = SqlBuilder(*sql.params)
    hits_a, hits_b = hits_column(a, candidates, "p"), hits_column(b, candidates, "p")
    cursor = conn.cursor(
        f"""
        SELECT d.a, d.b, d.context, d.targeting_key, d.hits_a, d.hits_b
        FROM (
            SELECT {in_a.expr} AS a, {in_b.expr} AS b, p.context, p.targeting_key,
                   {hits_a} AS hits_a, {hits_b} AS hits_b
            FROM profiles p
            WHERE p.project_id = $1
        ) d
        WHERE d.a IS NULL OR d.b IS NULL
        """,
        *candidates.params,
        prefetch=_CANDIDATE_PREFETCH,
    )
    compiled: dict[str, CompiledSegment] = {}
    async for row in cursor:
        answers = []
        for name, definition in (("a", a), ("b", b)):
            answer = row[name]
            if answer is None:
                if name not in compiled:
                    compiled[name] = definition.compile()
                candidate = {
                    "context": row["context"],
                    "targeting_key": row["targeting_key"],
                    "hits": row[f"hits_{name}"],
                }
                answer = definition.decide(candidate, compiled[name])  # type: ignore[arg-type]
            answers.append(bool(answer))
        pair = (answers[0], answers[1])
        if pair in tally:
            tally[pair] += 1
