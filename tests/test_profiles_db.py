"""Profile storage: upserts, bulk import through COPY, deletes, lookups and listing."""

import asyncio
import resource
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import orjson
import pytest

from db import profiles
from db.pagination import PageRequest
from db.pool import connect
from rules.evaluate import flatten_context
from tests.conftest import Project


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(database_url)
    yield connection
    await connection.close()


def page(limit: int, after: tuple[str, int] | None = None) -> PageRequest:
    return PageRequest(column="targeting_key", descending=False, limit=limit, after=after)


async def stored(conn: asyncpg.Connection, project: Project, key: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT attributes, context, updated_at FROM profiles WHERE project_id = $1 AND targeting_key = $2",
        project.id,
        key,
    )
    return dict(row)


async def counted(conn: asyncpg.Connection, project: Project) -> int:
    """The project's counter, checked against its rows counted one by one."""
    counter = await profiles.stored_profile_count(conn, project.id)
    assert counter == await profiles.count_all_profiles(conn, project.id)
    return counter


def test_context_is_the_flattened_attributes_with_the_targeting_key() -> None:
    attributes = {"user": {"plan": "pro", "org": {"id": 7}}, "a.b": [1, {"c": 2}], "empty": {}}
    assert profiles.profile_context("u1", attributes) == {
        "user.plan": "pro",
        "user.org.id": 7,
        "a.b": [1, {"c": 2}],
        "targetingKey": "u1",
    }
    # The profile's key wins over an attribute of the same name.
    assert profiles.profile_context("u1", {"targetingKey": "other"}) == {"targetingKey": "u1"}


async def test_upsert_inserts_then_replaces_attributes_and_context(
    conn: asyncpg.Connection, project: Project
) -> None:
    assert (
        await profiles.upsert_profiles(conn, project.id, [("u1", {"plan": "free", "age": 30})]) == 1
    )
    first = await stored(conn, project, "u1")
    assert first["attributes"] == {"plan": "free", "age": 30}
    assert (
        await profiles.upsert_profiles(conn, project.id, [("u1", {"user": {"plan": "pro"}})]) == 1
    )
    second = await stored(conn, project, "u1")
    assert second["attributes"] == {"user": {"plan": "pro"}}
    assert second["context"] == {"user.plan": "pro", "targetingKey": "u1"}
    assert second["updated_at"] > first["updated_at"]
    assert await counted(conn, project) == 1


async def test_upsert_keeps_the_last_of_duplicate_keys(
    conn: asyncpg.Connection, project: Project
) -> None:
    count = await profiles.upsert_profiles(
        conn, project.id, [("u1", {"n": 1}), ("u2", {"n": 2}), ("u1", {"n": 3})]
    )
    assert count == 2
    assert (await stored(conn, project, "u1"))["attributes"] == {"n": 3}
    assert await profiles.upsert_profiles(conn, project.id, []) == 0


async def test_upsert_is_one_statement_and_all_or_nothing(
    conn: asyncpg.Connection, project: Project
) -> None:
    # A NUL character cannot be stored in jsonb: the whole batch fails, nothing is written.
    with pytest.raises(asyncpg.PostgresError):
        await profiles.upsert_profiles(
            conn, project.id, [("ok", {"n": 1}), ("bad", {"s": "a\x00b"})]
        )
    assert await counted(conn, project) == 0


async def test_stored_values_survive_exactly(conn: asyncpg.Connection, project: Project) -> None:
    attributes = {
        "quote": 'it\'s "x" \\ y',
        "unicode": "ünï ✓ 日本 🎉",
        "float": 0.1,
        "tiny": 1.5e-7,
        "int": 2**63 - 1,
        "neg": -(2**63),
        "bool": False,
        "null": None,
        "list": [1, "2", [3], {"four": 4}],
    }
    await profiles.upsert_profiles(conn, project.id, [("k", attributes)])
    row = await profiles.profile_by_key(conn, project.id, "k")
    assert row is not None
    assert row["attributes"] == attributes
    assert type(row["attributes"]["float"]) is float
    assert (await stored(conn, project, "k"))["context"] == profiles.profile_context(
        "k", attributes
    )


async def test_delete_removes_known_keys_and_ignores_unknown(
    conn: asyncpg.Connection, project: Project, other_project: Project
) -> None:
    await profiles.upsert_profiles(conn, project.id, [("a", {}), ("b", {}), ("c", {})])
    await profiles.upsert_profiles(conn, other_project.id, [("a", {})])
    assert await profiles.delete_profiles(conn, project.id, ["a", "b", "nope"]) == 2
    assert await profiles.profile_by_key(conn, project.id, "a") is None
    assert await profiles.profile_by_key(conn, other_project.id, "a") is not None
    assert await profiles.delete_profiles(conn, project.id, []) == 0


async def test_lookups_by_key_and_id_stay_in_their_project(
    conn: asyncpg.Connection, project: Project, other_project: Project
) -> None:
    await profiles.upsert_profiles(conn, project.id, [("a", {"n": 1}), ("b", {"n": 2})])
    await profiles.upsert_profiles(conn, other_project.id, [("c", {"n": 3})])
    a = await profiles.profile_by_key(conn, project.id, "a")
    c = await profiles.profile_by_key(conn, other_project.id, "c")
    assert a is not None and c is not None
    assert set(a.keys()) == {"project_id", "id", "targeting_key", "attributes", "updated_at"}
    rows = await profiles.profiles_by_id(conn, project.id, [a["id"], c["id"], 999_999])
    assert [row["targeting_key"] for row in rows] == ["a"]
    assert await profiles.profile_by_key(conn, project.id, "c") is None


async def test_listing_pages_by_key_and_searches_case_insensitively(
    conn: asyncpg.Connection, project: Project
) -> None:
    keys = [f"user-{n:03d}" for n in range(30)] + ["Admin-1", "ADMIN_2", "x%y"]
    await profiles.upsert_profiles(conn, project.id, [(key, {}) for key in keys])
    first = await profiles.profile_listing(project.id, None).page(conn, page(10))
    assert [row["targeting_key"] for row in first] == sorted(keys)[:11]  # limit + 1
    cursor = (first[9]["targeting_key"], first[9]["id"])
    second = await profiles.profile_listing(project.id, None).page(conn, page(10, cursor))
    assert [row["targeting_key"] for row in second] == sorted(keys)[10:21]
    assert await profiles.profile_listing(project.id, None).outside(conn, page(10, cursor), True)
    assert not await profiles.profile_listing(project.id, None).outside(conn, page(10), True)

    admins = await profiles.profile_listing(project.id, "admin").page(conn, page(10))
    assert [row["targeting_key"] for row in admins] == ["ADMIN_2", "Admin-1"]
    assert await profiles.profile_listing(project.id, "admin").count(conn) == 2
    assert (
        await profiles.profile_listing(project.id, "%").count(conn) == 1
    )  # a literal percent sign
    assert await profiles.profile_listing(project.id, "_").count(conn) == 1
    assert await profiles.profile_listing(project.id, None).count(conn) == len(keys)
    assert await counted(conn, project) == len(keys)


async def test_copy_streams_many_profiles_in_chunks(
    conn: asyncpg.Connection, project: Project
) -> None:
    consumed = 0

    def generated() -> Iterator[tuple[str, dict[str, Any]]]:
        nonlocal consumed
        for n in range(50_000):
            consumed += 1
            yield f"u{n:06d}", {"n": n, "user": {"even": n % 2 == 0}, "tags": ["a"] * (n % 3)}

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert await profiles.copy_profiles(conn, project.id, generated()) == 50_000
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert consumed == 50_000
    assert grown_kib < 100_000  # chunks, not the whole input, in memory
    assert await counted(conn, project) == 50_000
    row = await stored(conn, project, "u012345")
    assert row["context"] == {"n": 12345, "user.even": False, "tags": [], "targetingKey": "u012345"}


async def test_copy_takes_async_iterables_and_replaces_existing_profiles(
    conn: asyncpg.Connection, project: Project
) -> None:
    await profiles.upsert_profiles(conn, project.id, [("u1", {"old": True})])

    async def rows() -> AsyncIterator[tuple[str, dict[str, Any]]]:
        for n in range(25_000):
            yield f"u{n % 20_000}", {"n": n}  # the last 5,000 repeat keys of the first chunk

    assert await profiles.copy_profiles(conn, project.id, rows()) == 25_000
    assert await counted(conn, project) == 20_000
    assert (await stored(conn, project, "u1"))["attributes"] == {"n": 20_001}
    assert (await stored(conn, project, "u7000"))["attributes"] == {"n": 7000}


async def test_copy_stores_keys_and_values_that_copy_text_would_read_as_escapes(
    conn: asyncpg.Connection, project: Project
) -> None:
    """Imports send COPY's text format: a tab, newline, carriage return or backslash in a key
    or a value must arrive as written, not as a field or row break or an escape."""
    tricky = {
        "tab\tkey": {"v": "a\tb", "path\\with": "back\\slash"},
        "new\nline\r\n": {"quote": '"\\N"', "n": r"\N"},
        "back\\slash\\": {"unicode": "žluťoučký 🐎", "escaped": "\u00e9 \\u0041"},
        r"\N": {"empty": "", "list": ["\t", "\\", "\n"]},
    }
    assert await profiles.copy_profiles(conn, project.id, list(tricky.items())) == 4
    for key, attributes in tricky.items():
        row = await stored(conn, project, key)
        assert row["attributes"] == attributes
        assert row["context"] == {**flatten_context(attributes), "targetingKey": key}


async def test_profiles_keep_needing_their_project(
    conn: asyncpg.Connection, project: Project
) -> None:
    """sql/0016 checks the reference to projects per statement instead of per row; it holds
    for upserts, imports and updates (the counter's own key may be the first to say so), and
    a project with profiles cannot go."""
    missing = 987_654_321
    with pytest.raises(asyncpg.ForeignKeyViolationError, match='"projects"'):
        await profiles.upsert_profiles(conn, missing, [("a", {})])
    with pytest.raises(asyncpg.ForeignKeyViolationError, match='"projects"'):
        await profiles.copy_profiles(conn, missing, [("a", {}), ("b", {})])
    await profiles.upsert_profiles(conn, project.id, [("kept", {})])
    with pytest.raises(asyncpg.ForeignKeyViolationError, match='"projects"'):
        await conn.execute(
            "UPDATE profiles SET project_id = $1 WHERE project_id = $2", missing, project.id
        )
    # A bare project (no environments, keys or segments to hold it) with one profile.
    bare = await conn.fetchval(
        "INSERT INTO projects (key, name) VALUES ('bare-' || gen_random_uuid(), 'Bare') RETURNING id"
    )
    await profiles.upsert_profiles(conn, bare, [("only", {})])
    with pytest.raises(asyncpg.ForeignKeyViolationError, match='from "profiles"'):
        async with conn.transaction():
            await conn.execute("DELETE FROM profile_counts WHERE project_id = $1", bare)
            await conn.execute("DELETE FROM projects WHERE id = $1", bare)
    assert await counted(conn, project) == 1


async def test_copy_is_all_or_nothing(conn: asyncpg.Connection, project: Project) -> None:
    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for n in range(15_000):
            yield f"u{n}", {"n": n}
        yield "bad", {"n": 2**70}  # beyond what JSON numbers may hold here

    with pytest.raises(orjson.JSONEncodeError):
        await profiles.copy_profiles(conn, project.id, rows())
    assert await counted(conn, project) == 0
    # The connection is still usable, and a second import works.
    assert await profiles.copy_profiles(conn, project.id, [("a", {})]) == 1


async def test_copy_inside_a_callers_transaction_rolls_back_with_it(
    conn: asyncpg.Connection, project: Project
) -> None:
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await profiles.copy_profiles(conn, project.id, [("a", {}), ("b", {})])
            raise RuntimeError("caller gives up")
    assert await counted(conn, project) == 0


# The per-project counter (sql/0004): one row per project kept exact by statement triggers.


async def test_the_counter_follows_inserts_replacements_and_deletes(
    conn: asyncpg.Connection, project: Project, other_project: Project
) -> None:
    assert await profiles.stored_profile_count(conn, project.id) == 0  # no row yet
    await profiles.upsert_profiles(conn, project.id, [("a", {}), ("b", {}), ("a", {"n": 1})])
    assert await counted(conn, project) == 2
    # Replacing counts nothing; only the new key does.
    await profiles.upsert_profiles(conn, project.id, [("a", {"n": 2}), ("b", {"n": 2}), ("c", {})])
    assert await counted(conn, project) == 3
    await profiles.upsert_profiles(conn, other_project.id, [("a", {}), ("z", {})])
    assert await counted(conn, other_project) == 2
    assert await profiles.delete_profiles(conn, project.id, ["a", "nope", "z"]) == 1
    assert await counted(conn, project) == 2
    assert await counted(conn, other_project) == 2
    # A failed statement and a rolled-back transaction leave the counter as it was.
    with pytest.raises(asyncpg.PostgresError):
        await profiles.upsert_profiles(conn, project.id, [("d", {}), ("bad", {"s": "a\x00b"})])
    with pytest.raises(RuntimeError):
        async with conn.transaction():
            await profiles.upsert_profiles(conn, project.id, [("e", {}), ("f", {})])
            await profiles.delete_profiles(conn, project.id, ["b"])
            assert await counted(conn, project) == 3
            raise RuntimeError("caller gives up")
    assert await counted(conn, project) == 2
    # Writes that bypass db/profiles.py are counted all the same, several projects at once.
    await conn.execute(
        """
        INSERT INTO profiles (project_id, targeting_key, attributes, context)
        SELECT p, 'raw' || i, '{}', '{}' FROM unnest($1::bigint[]) AS p, generate_series(1, 5) AS i
        """,
        [project.id, other_project.id],
    )
    assert await counted(conn, project) == 7 and await counted(conn, other_project) == 7
    await conn.execute("DELETE FROM profiles WHERE targeting_key LIKE 'raw%'")
    assert await counted(conn, project) == 2 and await counted(conn, other_project) == 2
    await conn.execute("TRUNCATE profiles")
    assert await counted(conn, project) == 0 and await counted(conn, other_project) == 0


async def test_a_profile_write_waits_for_another_one_of_its_project(
    database_url: str, conn: asyncpg.Connection, project: Project, other_project: Project
) -> None:
    """Writers of a project queue on its counter, so a limit check sees the others' rows."""
    second = await connect(database_url)
    third = await connect(database_url)

    async def write_and_count() -> int:
        async with second.transaction():
            await profiles.upsert_profiles(second, project.id, [("b", {})])
            return await profiles.stored_profile_count(second, project.id)

    try:
        async with conn.transaction():
            await profiles.upsert_profiles(conn, project.id, [("a", {})])
            waiting = asyncio.ensure_future(write_and_count())
            await asyncio.sleep(0.3)
            assert not waiting.done(), "a second writer of the project did not wait"
            # Another project's writers do not wait.
            await asyncio.wait_for(
                profiles.upsert_profiles(third, other_project.id, [("a", {})]), timeout=2
            )
        # The first committed: the waiting writer's count includes its profile.
        assert await asyncio.wait_for(waiting, timeout=5) == 2
    finally:
        await second.close()
        await third.close()
    assert await counted(conn, project) == 2


async def test_the_migration_counts_profiles_stored_before_it(
    database_url: str, project: Project
) -> None:
    """sql/0004 starts each project's counter at the profiles it already holds."""
    from db.migrate import migration_files

    conn = await connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute("DROP TABLE profile_counts CASCADE")
            await conn.execute(
                "DROP FUNCTION profile_counts_add, profile_counts_subtract, profile_counts_clear CASCADE"
            )
            await conn.execute(
                """
                INSERT INTO profiles (project_id, targeting_key, attributes, context)
                SELECT $1, 'k' || i, '{}', '{}' FROM generate_series(1, 42) AS i
                """,
                project.id,
            )
            await conn.execute(dict(migration_files())["0004_profile_counts"])
        assert await counted(conn, project) == 42
    finally:
        await conn.close()
