"""Segments in segments (DESIGN §12) on write and read: SegmentMatch keys resolved to live
segments, the cycle and depth checks over the project's reference graph, and the closure of
referenced definitions that evaluators and the SQL compiler are given."""

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from core import attributes
from db import segments as db_segments
from db.members import references_from_rows
from db.pool import Database
from rules import references, validate
from rules.models import Limits, References, StoredRule, referenced_ids, rules_as_input
from rules.problems import Path, Problem, ProblemCode, Refused

# Stands for a segment not stored yet (a create, a preview): no row has id 0.
_NEW = 0


async def resolve_keys(
    conn: asyncpg.Connection, project_id: int, keys: Iterable[str], *, lock: bool
) -> dict[str, int]:
    """The ids of the live segments of the project with these keys (absent keys are not
    found). With `lock`, they stay share-locked until the transaction ends, so none can be
    deleted before the references written meanwhile commit."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await db_segments.live_segments_by_key(conn, project_id, wanted, lock=lock)
    return {row["key"]: row["id"] for row in rows}


async def rules_input_now(
    conn: asyncpg.Connection, project_id: int, stored: list[StoredRule], at: Path, *, lock: bool
) -> list[dict[str, Any]] | Refused:
    """Stored rules (references by segment id) in the input shapes a write takes, each
    reference naming the key its segment has now; NOT_FOUND at `at` when one of them was
    deleted since. What a revert or a change request writes again: the segments it
    references stay the same ones however they were renamed, and a key another segment took
    since never redirects a reference.

    With `lock` (inside the write's transaction) it takes the reference-graph lock and
    share-locks the referenced segments, as `resolve_keys` does, so none is renamed or
    deleted before the write commits; without, it reads what is committed (an impact)."""
    wanted = sorted(set(referenced_ids(stored)))
    if not wanted:
        return rules_as_input(stored, {})
    if lock:
        await db_segments.lock_reference_graph(conn, project_id)
    rows = await db_segments.segments_by_id(conn, project_id, wanted, lock=lock)
    gone = sorted(row["key"] for row in rows if row["deleted_at"] is not None)
    if gone:
        return Refused.one(
            ProblemCode.NOT_FOUND,
            f"rules: they reference the segment {gone[0]!r}, deleted since.",
            at,
        )
    return rules_as_input(stored, {row["id"]: row["key"] for row in rows})


async def graph_problems(
    conn: asyncpg.Connection,
    project_id: int,
    segment_id: int | None,
    rules: list[Any],
    paths: Mapping[str, Path],
    segment_ids: Mapping[str, int],
    own_key: str,
    at: Path = ("input", "rules"),
) -> list[Problem]:
    """SEGMENT_CYCLE when `segment_id` (None: a new segment) referencing what `rules`
    references would close a cycle; LIMIT_EXCEEDED when a chain of references through it,
    from the segments that reach it to the ones it reaches, would hold more than 5 segments.
    `paths` and `segment_ids` (key → input path, key → id) place the problem at the
    reference that closes the cycle. Call holding `db_segments.lock_reference_graph`."""
    targets = sorted(set(referenced_ids(rules)))
    if not targets:
        return []
    rows = await db_segments.reference_graph(conn, project_id, targets, segment_id)
    graph: dict[int, list[int]] = {row["id"]: list(row["refs"]) for row in rows}
    keys = {row["id"]: row["key"] for row in rows}
    me = _NEW if segment_id is None else segment_id
    keys[me] = own_key
    graph[me] = [target for target in referenced_ids(rules)]
    cycle = references.find_cycle(graph, me)
    if cycle is not None:
        first = keys.get(cycle[1], "")
        path = paths.get(first) if segment_ids.get(first) == cycle[1] else None
        return [
            Problem(
                path or at,
                ProblemCode.SEGMENT_CYCLE,
                "This reference would close a cycle: "
                + " → ".join(keys.get(node, "?") for node in cycle),
            )
        ]
    chain = references.chain_through(graph, me)
    if chain > references.MAX_CHAIN:
        return [
            Problem(
                at,
                ProblemCode.LIMIT_EXCEEDED,
                f"A chain of references through this segment would hold {chain} segments; "
                f"at most {references.MAX_CHAIN} are allowed (counting the first).",
            )
        ]
    return []


async def load_closure(
    conn: asyncpg.Connection, project_id: int, rules: list[Any]
) -> dict[int, asyncpg.Record]:
    """The rows of every segment `rules` reaches through references (one statement; none
    when it references nothing), by id."""
    direct = sorted(set(referenced_ids(rules)))
    if not direct:
        return {}
    return {row["id"]: row for row in await db_segments.reference_closure(conn, project_id, direct)}


async def references_of(conn: asyncpg.Connection, project_id: int, rules: list[Any]) -> References:
    """The `references` mapping `compile_segment` and `compile_definition` take for `rules`:
    the reusable loader for anything that evaluates stored rules (segments, CUSTOM rules)."""
    return references_from_rows(await load_closure(conn, project_id, rules))


async def preview_rules(
    db: Database, project_id: int | None, rules_input: object, path: Path, limits: Limits
) -> tuple[list[StoredRule], list[Problem], References]:
    """An unsaved definition's rules checked like a create's (references resolved to live
    segments, chain depth, declared attributes when strict), with the closure to compile
    them with."""
    paths = validate.referenced_keys(rules_input, path)
    if not paths or project_id is None:
        stored, problems = validate.validate_rules(rules_input, path, limits)  # type: ignore[arg-type]
        if not problems and project_id is not None:
            async with db.connection() as conn:
                problems = await attributes.strict_problems(conn, project_id, stored, path)
        return stored, problems, {}
    async with db.connection() as conn:
        segment_ids = await resolve_keys(conn, project_id, paths, lock=False)
        stored, problems = validate.validate_rules(rules_input, path, limits, segment_ids)  # type: ignore[arg-type]
        if not problems:
            problems = await graph_problems(
                conn, project_id, None, stored, paths, segment_ids, "(preview)", path
            )
        if not problems:
            problems = await attributes.strict_problems(conn, project_id, stored, path)
        if problems:
            return stored, problems, {}
        return stored, [], await references_of(conn, project_id, stored)
