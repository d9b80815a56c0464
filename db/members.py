"""Who is in a segment: counts, pages and streams of the stored profiles a definition matches.

Membership is evaluation (DESIGN §11). `db.rules_sql` compiles the definition into one
three-valued SQL predicate: TRUE members and FALSE non-members are settled in SQL, and the
few rows it leaves NULL are decided by the Python evaluator on their stored context, so every
answer here is exactly what `compile_segment(...).evaluate` says of each profile.
"""

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

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


class Membership(Protocol):
    """What counts and member scans read of a definition: `Definition`, or `Difference`."""

    def big_segment_ids(self) -> list[int]: ...

    def predicate(self, sql: SqlBuilder) -> Predicate: ...

    def compile(self) -> Any: ...

    def decide(self, row: asyncpg.Record, compiled: Any) -> bool: ...


@dataclass(frozen=True)
class Difference:
    """The profiles `plus` matches and `minus` does not (who enters a segment when its
    definition changes from `minus` to `plus`; swapped, who leaves). Scanned for member
    pages like a Definition: SQL's Kleene `plus AND NOT minus` is TRUE or FALSE wherever
    the two settle it, and NULL rows are decided by the evaluator on both definitions."""

    plus: Definition
    minus: Definition

    def big_segment_ids(self) -> list[int]:
        return sorted({*self.plus.big_segment_ids(), *self.minus.big_segment_ids()})

    def predicate(self, sql: SqlBuilder) -> Predicate:
        plus, minus = self.plus.predicate(sql), self.minus.predicate(sql)
        return Predicate(f"(({plus.expr}) AND NOT ({minus.expr}))", plus.exact and minus.exact)

    def compile(self) -> tuple[CompiledSegment, CompiledSegment]:
        return self.plus.compile(), self.minus.compile()

    def decide(
        self, row: asyncpg.Record, compiled: tuple[CompiledSegment, CompiledSegment]
    ) -> bool:
        # `hits` holds the lists of both definitions' big segments; each reads its own.
        return self.plus.decide(row, compiled[0]) and not self.minus.decide(row, compiled[1])


def hits_column(definition: Membership, sql: SqlBuilder, alias: str) -> str:
    """An SQL array of the lists ("<segment id> <kind>") of the definition's big segments
    that hold the key of the profile row `alias`: one primary-key probe per list."""
    return _hits_of(definition.big_segment_ids(), sql, alias)


def _hits_of(ids: list[int], sql: SqlBuilder, alias: str) -> str:
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
    outcomes = await count_outcomes(conn, project_id, [definition])
    return sum(profiles for (member,), profiles in outcomes.items() if member)


async def count_outcomes(
    conn: asyncpg.Connection, project_id: int, definitions: Sequence[Definition]
) -> dict[tuple[bool, ...], int]:
    """How many of the project's profiles each combination of memberships holds: the
    profiles p by (p in definitions[0], p in definitions[1], ...), exactly.

    One scan tells the combinations SQL settles from the undecided rows (each predicate is
    evaluated once per row, as a grouping key: PostgreSQL groups in parallel workers and
    hands the leader a few rows, where FILTER aggregates would compute every predicate once
    per aggregate, or, fenced, ship a million rows to the leader); a second one, only when some are undecided,
    streams those to the evaluator, which decides every definition of the row. Both read
    one snapshot, so no profile is counted twice or missed when writes land in between."""
    sql = SqlBuilder(project_id)
    predicates = [definition.predicate(sql) for definition in definitions]
    columns = ", ".join(f"{p.expr} AS d{i}" for i, p in enumerate(predicates))
    names = ", ".join(f"d.d{i}" for i in range(len(predicates)))
    snapshot: Any
    if conn.is_in_transaction() or all(p.exact for p in predicates):
        snapshot = contextlib.nullcontext()  # one statement is its own snapshot
    else:
        snapshot = conn.transaction(isolation="repeatable_read", readonly=True)
    outcomes: dict[tuple[bool, ...], int] = {}
    async with snapshot:
        undecided = 0
        for row in await conn.fetch(
            f"""
            SELECT {names}, count(*) AS profiles
            FROM (
                SELECT {columns}
                FROM profiles p
                WHERE p.project_id = $1
            ) d
            GROUP BY {names}
            """,
            *sql.params,
        ):
            decided = tuple(row[i] for i in range(len(predicates)))
            if None in decided:
                undecided += row["profiles"]
            else:
                outcomes[decided] = outcomes.get(decided, 0) + row["profiles"]
        if not undecided:
            return outcomes
        compiled = [definition.compile() for definition in definitions]
        candidates = SqlBuilder(*sql.params)
        wanted = sorted({i for definition in definitions for i in definition.big_segment_ids()})
        hits = _hits_of(wanted, candidates, "p")
        # Every predicate, exact ones too: each binds parameters of the statement.
        anyone = " OR ".join(f"({p.expr}) IS NULL" for p in predicates)
        cursor = conn.cursor(
            f"""
            SELECT p.context, p.targeting_key, {hits} AS hits
            FROM profiles p
            WHERE p.project_id = $1
              AND ({anyone})
            """,
            *candidates.params,
            prefetch=_CANDIDATE_PREFETCH,
        )
        async for row in cursor:
            # The evaluator decides every definition of the row, so SQL's verdicts on
            # the decided ones never mix with another evaluation of the same profile.
            decided = tuple(
                definition.decide(row, one)
                for definition, one in zip(definitions, compiled, strict=True)
            )
            outcomes[decided] = outcomes.get(decided, 0) + 1
    return outcomes


@dataclass(frozen=True)
class ImpactCounts:
    """Who a change of definition lets in and out (DESIGN §14): members before and after,
    and the profiles that enter (after, not before) and leave (before, not after)."""

    before: int
    after: int
    entering: int
    leaving: int


async def count_impact(
    conn: asyncpg.Connection, project_id: int, before: Definition, after: Definition | None
) -> ImpactCounts:
    """The counts of a change from `before` to `after` (None: the segment is deleted and
    matches nobody), all four from one scan of the project's profiles."""
    if after is None:
        members = await count_members(conn, project_id, before)
        return ImpactCounts(before=members, after=0, entering=0, leaving=members)
    outcomes = await count_outcomes(conn, project_id, [before, after])
    stay = outcomes.get((True, True), 0)
    entering = outcomes.get((False, True), 0)
    leaving = outcomes.get((True, False), 0)
    return ImpactCounts(
        before=stay + leaving, after=stay + entering, entering=entering, leaving=leaving
    )


async def member_page(
    conn: asyncpg.Connection,
    project_id: int,
    definition: Membership,
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
    definition: Membership,
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
    compiled: Any = None
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
    membership exactly as `count_members` decides it, both from one scan (`count_outcomes`)."""
    outcomes = await count_outcomes(conn, project_id, [a, b])
    return Overlap(
        only_a=outcomes.get((True, False), 0),
        only_b=outcomes.get((False, True), 0),
        both=outcomes.get((True, True), 0),
    )
