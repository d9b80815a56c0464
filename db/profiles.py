"""Every SQL statement about profiles: upserts, bulk import, deletes, lookups and listing."""

import re
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import asyncpg
import orjson

from db import attributes as db_attributes
from db.pagination import Listing, SqlBuilder, contains_pattern
from rules.evaluate import flatten_context

T = TypeVar("T")
R = TypeVar("R", bound=tuple[Any, ...])

PROFILE_COLUMNS = "p.project_id, p.id, p.targeting_key, p.attributes, p.updated_at"

# Rows per COPY round trip of an import (`copy_profiles`' chunks, the CLI reader's ImportChunks):
# large enough to amortise the statements, small enough that an import of millions of rows
# holds only this many in memory.
COPY_CHUNK_SIZE = 10_000

_UPSERT_SET = """
    ON CONFLICT (project_id, targeting_key) DO UPDATE
    SET attributes = EXCLUDED.attributes,
        context = EXCLUDED.context,
        updated_at = now()
"""


def profile_context(targeting_key: str, attributes: dict[str, Any]) -> dict[str, Any]:
    """The stored, flattened context: what evaluation sees for this profile (DESIGN §11)."""
    context = flatten_context(attributes)
    context["targetingKey"] = targeting_key
    return context


def _last_wins(rows: Iterable[R]) -> list[R]:
    """Rows keyed by their first item, the last of duplicates kept (at the first one's place):
    one statement may not touch a row twice."""
    return list({row[0]: row for row in rows}.values())


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def _affected(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


# What a profile write raises when PostgreSQL broke a lock cycle by aborting its transaction:
# possible when an API write and a running import write some of the same keys in different
# orders. Nothing of the aborted transaction was written; running it again is safe.
Deadlock = asyncpg.DeadlockDetectedError

# Advisory lock classes of a project's API profile writes and of its imports (the other key
# is the project id).
_PROFILE_WRITES_LOCK = 0x5E6
_PROFILE_IMPORTS_LOCK = 0x5E7


async def lock_profile_writes(conn: asyncpg.Connection, project_id: int) -> None:
    """Queue this transaction behind the project's other API profile writes until it ends.

    Upserts and deletes take it before touching a profile, so a limit check sees every other
    API write committed or none of it, and two such writers never wait for each other's
    profiles in a cycle. Imports do not take it, and they touch the project's counter row
    (sql/0004) only in their last statement (sql/0005): so a long import never holds up the
    API's writes of other keys, and an API write that waits for a key the import holds holds
    neither the counter nor anything else the import will wait for.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, $2::int)", _PROFILE_WRITES_LOCK, project_id % 2**31
    )


async def stored_profile_count(conn: asyncpg.Connection, project_id: int) -> int:
    """All of a project's profiles, for the per-project limit: its counter, one row, kept
    exact by triggers. Read FOR UPDATE so a check inside a write transaction holds until it
    commits."""
    count = await conn.fetchval(
        "SELECT profiles FROM profile_counts WHERE project_id = $1 FOR UPDATE", project_id
    )
    return count or 0


async def profile_total(conn: asyncpg.Connection, project_id: int) -> int:
    """All of a project's profiles as its counter says now (one row, no lock): what rule
    warnings compare a member count with."""
    count = await conn.fetchval(
        "SELECT profiles FROM profile_counts WHERE project_id = $1", project_id
    )
    return count or 0


async def upsert_profiles(
    conn: asyncpg.Connection, project_id: int, profiles: list[tuple[str, dict[str, Any]]]
) -> int:
    """Insert or replace profiles by key in one statement; the last of duplicate keys wins.

    Takes the project's write lock first (see `lock_profile_writes`)."""
    batch = _last_wins(_row(key, attributes) for key, attributes in profiles)
    if not batch:
        return 0
    await lock_profile_writes(conn, project_id)
    keys, attributes, contexts = (list(column) for column in zip(*batch, strict=True))
    status = await conn.execute(
        f"""
        INSERT INTO profiles (project_id, targeting_key, attributes, context)
        SELECT $1, t.targeting_key, t.attributes::jsonb, t.context::jsonb
        FROM unnest($2::text[], $3::text[], $4::text[]) AS t (targeting_key, attributes, context)
        {_UPSERT_SET}
        """,
        project_id,
        keys,
        attributes,
        contexts,
    )
    return _affected(status)


# One profile as `upsert_profiles` sends it: targetingKey, attributes and context as JSON.
_Row = tuple[str, str, str]

# The catalogue's name (jsonb_typeof) for each type a stored context's leaf can have; a
# non-empty object is never a leaf and an empty one leaves no path (flatten_context).
_JSON_TYPES = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    type(None): "null",
}


def _row(targeting_key: str, attributes: dict[str, Any]) -> _Row:
    return (targeting_key, _dumps(attributes), _dumps(profile_context(targeting_key, attributes)))


# COPY's text format: a backslash starts an escape, tab and newline end a field and a row.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


@dataclass(frozen=True, slots=True)
class PackedChunk:
    """An ImportChunk ready to send (and small to pass between processes): its rows as COPY
    text, how many of them hold each (path, JSON type), and how many profiles it read."""

    data: bytes
    paths: Counter[tuple[str, str]]
    read: int


class ImportChunk:
    """Profiles for one COPY of an import: the last of duplicate keys kept (one statement may
    not touch a row twice), each as its COPY text line and its context's paths and value
    types, from which `pack` counts what the import adds to the catalogue itself (sql/0015)."""

    __slots__ = ("_profiles", "read")

    def __init__(self) -> None:
        self._profiles: dict[str, tuple[bytes, tuple[str, ...], tuple[type, ...]]] = {}
        self.read = 0  # profiles added, duplicates included

    def add(
        self, targeting_key: str, attributes: dict[str, Any], encoded: bytes | None = None
    ) -> None:
        """`encoded` is the attributes' compact JSON when the caller has it already
        (rules.profiles.encoded_profile)."""
        context = profile_context(targeting_key, attributes)
        key = targeting_key
        if _NEEDS_ESCAPE.search(key) is not None:
            key = key.translate(_COPY_ESCAPES)
        # orjson writes control characters escaped, so only backslashes need doubling.
        line = b"\t".join(
            (
                key.encode(),
                (orjson.dumps(attributes) if encoded is None else encoded).replace(b"\\", b"\\\\"),
                orjson.dumps(context).replace(b"\\", b"\\\\"),
            )
        )
        # What sql/0013's attribute_paths() reads from the stored context, kept cheaply: its
        # paths and the Python types of its values, named and counted once per chunk.
        self._profiles[targeting_key] = (line, tuple(context), tuple(map(type, context.values())))
        self.read += 1

    def pack(self) -> PackedChunk:
        kept = self._profiles.values()
        by_type: Counter[tuple[str, type]] = Counter()
        for _, paths, types in kept:
            by_type.update(zip(paths, types, strict=True))
        counted: Counter[tuple[str, str]] = Counter()
        for (path, kind), profiles in by_type.items():
            if path != "targetingKey":
                counted[(path, _JSON_TYPES[kind])] += profiles
        return PackedChunk(b"".join(line + b"\n" for line, _, _ in kept), counted, self.read)


async def copy_profiles(
    conn: asyncpg.Connection,
    project_id: int,
    rows: AsyncIterable[tuple[str, dict[str, Any]]] | Iterable[tuple[str, dict[str, Any]]],
) -> int:
    """Bulk upsert of `(targeting_key, attributes)` pairs: `copy_import_chunks` over them in
    chunks of COPY_CHUNK_SIZE."""
    return await copy_import_chunks(conn, project_id, _chunks(rows, COPY_CHUNK_SIZE))


async def copy_import_chunks(
    conn: asyncpg.Connection,
    project_id: int,
    chunks: AsyncIterable[PackedChunk] | Iterable[PackedChunk],
) -> int:
    """Bulk upsert for imports: COPY each chunk into a temporary table, upsert it from there.

    Memory stays flat however many chunks come; the caller keeps them small (COPY_CHUNK_SIZE).
    Runs in a transaction (a savepoint inside the caller's), so it applies all or nothing;
    a later duplicate of a key replaces the earlier one, as repeated upserts would. Returns
    the number of profiles read, duplicates included.

    The project's counter is not touched while the chunks are written (sql/0005: the triggers
    sum this project's rows in a transaction-local setting instead), so the project's API
    writes go on during a long import; the sum is added in one last statement, which locks
    the counter until the caller's transaction ends, and the caller checks the limit then.
    The attribute catalogue is deferred the same way (sql/0013) and added just before it; the
    paths of the rows written are counted here, from the chunks, and the triggers subtract
    only what replaced rows held (sql/0015), so PostgreSQL does not walk every new context.
    """
    read = 0
    paths: Counter[tuple[str, str]] = Counter()
    async with conn.transaction():
        # Imports of one project queue, as they did behind the counter: two writing the same
        # keys in different orders would otherwise deadlock, each holding thousands.
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, $2::int)", _PROFILE_IMPORTS_LOCK, project_id % 2**31
        )
        await conn.execute(
            "SELECT set_config('segments.deferred_count_project', $1, true),"
            " set_config('segments.deferred_count', '0', true)",
            str(project_id),
        )
        await conn.execute(
            """
            CREATE TEMPORARY TABLE IF NOT EXISTS profiles_import (
                targeting_key  text NOT NULL,
                attributes     text NOT NULL,
                context        text NOT NULL
            ) ON COMMIT DELETE ROWS
            """
        )
        await conn.execute("TRUNCATE profiles_import")
        await db_attributes.defer_counts(conn)
        async for chunk in _each(chunks):
            await conn.copy_to_table("profiles_import", source=_once(chunk.data), format="text")
            await conn.execute(
                f"""
                INSERT INTO profiles (project_id, targeting_key, attributes, context)
                SELECT $1, i.targeting_key, i.attributes::jsonb, i.context::jsonb
                FROM profiles_import i
                {_UPSERT_SET}
                """,
                project_id,
            )
            paths.update(chunk.paths)
            read += chunk.read
            await conn.execute("TRUNCATE profiles_import")
        await db_attributes.add_import_paths(conn, project_id, paths)
        added = await conn.fetchval("SELECT current_setting('segments.deferred_count')::bigint")
        await conn.execute("SELECT set_config('segments.deferred_count_project', '', true)")
        await db_attributes.add_deferred_counts(conn, project_id)
        if added:
            await conn.execute(
                """
                INSERT INTO profile_counts AS c (project_id, profiles) VALUES ($1, $2)
                ON CONFLICT (project_id) DO UPDATE SET profiles = c.profiles + EXCLUDED.profiles
                """,
                project_id,
                added,
            )
    return read


async def _once(data: bytes) -> AsyncIterator[bytes]:
    """`data` as the async iterable asyncpg's COPY takes (bare bytes it would read as a path)."""
    yield data


async def _each(items: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _chunks(
    rows: AsyncIterable[tuple[str, dict[str, Any]]] | Iterable[tuple[str, dict[str, Any]]],
    size: int,
) -> AsyncIterator[PackedChunk]:
    chunk = ImportChunk()
    async for key, attributes in _each(rows):
        chunk.add(key, attributes)
        if chunk.read >= size:
            yield chunk.pack()
            chunk = ImportChunk()
    if chunk.read:
        yield chunk.pack()


async def delete_profiles(
    conn: asyncpg.Connection, project_id: int, targeting_keys: list[str]
) -> int:
    """Hard-delete profiles by key; unknown keys are ignored. Returns how many went.

    Takes the project's write lock first (see `lock_profile_writes`)."""
    await lock_profile_writes(conn, project_id)
    status = await conn.execute(
        "DELETE FROM profiles WHERE project_id = $1 AND targeting_key = ANY($2::text[])",
        project_id,
        list(targeting_keys),
    )
    return _affected(status)


async def profile_by_key(
    conn: asyncpg.Connection, project_id: int, targeting_key: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""
        SELECT {PROFILE_COLUMNS}
        FROM profiles p
        WHERE p.project_id = $1 AND p.targeting_key = $2
        """,
        project_id,
        targeting_key,
    )


async def profiles_by_id(
    conn: asyncpg.Connection, project_id: int, ids: list[int]
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""
        SELECT {PROFILE_COLUMNS}
        FROM profiles p
        WHERE p.project_id = $1 AND p.id = ANY($2::bigint[])
        """,
        project_id,
        list(ids),
    )


def _filtered(project_id: int, search: str | None) -> SqlBuilder:
    sql = SqlBuilder(project_id)
    sql.where("p.project_id = $1")
    if search:
        sql.where(f"p.targeting_key ILIKE {sql.param(contains_pattern(search))}")
    return sql


def profile_listing(project_id: int, search: str | None) -> Listing:
    return Listing("profiles p", PROFILE_COLUMNS, partial(_filtered, project_id, search))


async def count_all_profiles(conn: asyncpg.Connection, project_id: int) -> int:
    """All of a project's profiles, counted row by row: a scan of the project's profiles, so
    for tools (the benchmark) and tests only; the limit reads `stored_profile_count`."""
    return await conn.fetchval(
        "SELECT count(*) FROM profiles p WHERE p.project_id = $1", project_id
    )
