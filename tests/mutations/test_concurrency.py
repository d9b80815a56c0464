"""Mutations racing each other through the HTTP app: unique keys, delete vs attach (DESIGN §3)."""

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from db import flags as db_flags
from db import projects as db_projects
from db import segments as db_segments
from db.audit import record_event
from db.pool import connect
from rules.problems import Refused
from schema.ids import decode_id_of
from tests.mutations.helpers import (
    CREATE_ENVIRONMENT,
    create_flag,
    create_segment,
    delete_segment,
    errors_of,
    new_flag,
    new_segment,
    restore_segment,
    set_rules,
    sql_fetch,
    update_segment,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


LIVE_FLAGS_ON_DELETED_SEGMENTS = """
    SELECT f.key AS flag, s.key AS segment
    FROM targeting_rules tr
    JOIN flags f ON f.project_id = tr.project_id AND f.id = tr.flag_id
    JOIN segments s ON s.project_id = tr.project_id AND s.id = tr.segment_id
    WHERE tr.project_id = $1 AND f.archived_at IS NULL AND s.deleted_at IS NOT NULL
"""


async def test_sixteen_simultaneous_creates_of_one_key_have_exactly_one_winner(
    gql, project, database_url
):
    payloads = await asyncio.gather(
        *(create_segment(gql, project.key, name=f"Launch {i}", key="launch") for i in range(16))
    )
    winners = [p for p in payloads if p["segment"] is not None]
    losers = [p for p in payloads if p["segment"] is None]
    assert len(winners) == 1 and winners[0]["userErrors"] == []
    assert [errors_of(p) for p in losers] == [[(("input", "key"), "KEY_TAKEN")]] * 15
    rows = await sql_fetch(
        database_url,
        "SELECT name FROM segments WHERE project_id = $1 AND key = 'launch'",
        project.id,
    )
    assert [r["name"] for r in rows] == [winners[0]["segment"]["name"]]
    events = await sql_fetch(
        database_url, "SELECT action FROM audit_events WHERE project_id = $1", project.id
    )
    assert [e["action"] for e in events] == ["CREATED"]


async def test_simultaneous_creates_from_one_name_get_distinct_derived_keys(gql, project):
    payloads = await asyncio.gather(
        *(create_segment(gql, project.key, name="Launch") for _ in range(16))
    )
    assert all(p["userErrors"] == [] for p in payloads)
    keys = sorted(p["segment"]["key"] for p in payloads)
    assert keys == sorted(["launch"] + [f"launch_{n}" for n in range(2, 17)])


def one_winner(payloads: list[dict], result: str) -> list[list]:
    """The user errors of the losers, after checking exactly one payload carries `result`."""
    assert [p[result] is not None for p in payloads].count(True) == 1, payloads
    return [errors_of(p) for p in payloads if p[result] is None]


async def test_simultaneous_renames_to_one_key_have_exactly_one_winner(gql, project):
    segments = [await new_segment(gql, project.key, name=f"S{i}") for i in range(8)]
    payloads = await asyncio.gather(*(update_segment(gql, s["id"], key="launch") for s in segments))
    assert one_winner(payloads, "segment") == [[(("input", "key"), "KEY_TAKEN")]] * 7


async def test_a_restore_racing_a_create_of_its_key_has_exactly_one_winner(gql, project):
    for round_ in range(5):
        key = f"launch-{round_}"
        old = await new_segment(gql, project.key, name="Old", key=key)
        await delete_segment(gql, old["id"])
        payloads = await asyncio.gather(
            restore_segment(gql, old["id"]), create_segment(gql, project.key, name="New", key=key)
        )
        assert one_winner(payloads, "segment") == [[(("input", "key"), "KEY_TAKEN")]]


async def test_simultaneous_flag_and_environment_creates_of_one_key_have_one_winner(gql, project):
    flags = await asyncio.gather(*(create_flag(gql, project.key, "checkout") for _ in range(8)))
    assert one_winner(flags, "flag") == [[(("input", "key"), "KEY_TAKEN")]] * 7
    environments = await asyncio.gather(
        *(
            gql(CREATE_ENVIRONMENT, {"i": {"projectKey": project.key, "key": "qa", "name": "QA"}})
            for _ in range(8)
        )
    )
    payloads = [data["createEnvironment"] for data in environments]
    assert one_winner(payloads, "environment") == [[(("input", "key"), "KEY_TAKEN")]] * 7


async def later(delay: float, request: Awaitable[dict]) -> dict:
    await asyncio.sleep(delay)
    return await request


async def test_delete_and_attach_racing_never_both_succeed(gql, project, database_url):
    flag = await new_flag(gql, project.key, "checkout")
    for round_ in range(10):
        segment = await new_segment(gql, project.key, name=f"Race {round_}")
        attach = set_rules(gql, flag["id"], [{"segmentId": segment["id"], "variationKey": "on"}])
        # Attaching does more work before it takes the lock; starting the delete a little later
        # each round spreads the two over every interleaving.
        deleted, attached = await asyncio.gather(
            later(round_ * 0.002, delete_segment(gql, segment["id"])), attach
        )
        if deleted["userErrors"] == []:
            assert errors_of(attached) == [
                (("input", "rules", "0", "segmentId"), "SEGMENT_DELETED")
            ]
        else:
            assert errors_of(deleted) == [(("input", "id"), "SEGMENT_IN_USE")]
            assert attached["userErrors"] == []
        assert await sql_fetch(database_url, LIVE_FLAGS_ON_DELETED_SEGMENTS, project.id) == []


# The tests below hold one side of a race open in a transaction of their own (doing what the
# mutation's db function does), send the other side through the API, and let it wait on the lock.


@asynccontextmanager
async def open_transaction(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(database_url)
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield conn
        await transaction.commit()
    except BaseException:
        await transaction.rollback()
        raise
    finally:
        await conn.close()


async def blocked_on_a_lock(conn: asyncpg.Connection, request: Awaitable[Any]) -> asyncio.Task:
    """Start the request and return once it waits for a lock held by `conn`'s transaction."""
    task = asyncio.ensure_future(request)
    for _ in range(500):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()"
        )
        if waiting:
            return task
        assert not task.done(), f"the request did not wait for the lock: {task.result()}"
        await asyncio.sleep(0.01)
    raise AssertionError("the request never waited for the lock")


async def test_attach_waits_for_an_uncommitted_delete_and_then_refuses(gql, project, database_url):
    segment = await new_segment(gql, project.key)
    flag = await new_flag(gql, project.key)
    async with open_transaction(database_url) as conn:
        deleted = await db_segments.delete_segment(
            conn,
            project.id,
            decode_id_of(segment["id"], "Segment"),
            actor="test",
            expected_version=None,
        )
        assert not isinstance(deleted, Refused)
        attach = await blocked_on_a_lock(
            conn, set_rules(gql, flag["id"], [{"segmentId": segment["id"], "variationKey": "on"}])
        )
    attached = await attach
    assert errors_of(attached) == [(("input", "rules", "0", "segmentId"), "SEGMENT_DELETED")]
    assert await sql_fetch(database_url, LIVE_FLAGS_ON_DELETED_SEGMENTS, project.id) == []


async def test_delete_waits_for_an_uncommitted_attach_and_then_refuses(gql, project, database_url):
    segment = await new_segment(gql, project.key, name="Beta")
    flag = await new_flag(gql, project.key, "checkout")
    segment_id = decode_id_of(segment["id"], "Segment")
    async with open_transaction(database_url) as conn:
        await db_flags.lock_flag(conn, project.id, decode_id_of(flag["id"], "Flag"))
        [locked] = await db_segments.lock_for_attach(conn, project.id, [segment_id])
        assert locked["deleted_at"] is None
        environment = await db_projects.environment_by_key(conn, project.id, "production")
        rule = {
            "kind": "SEGMENT",
            "segment_id": segment_id,
            "logical_op": None,
            "rules": [],
            "variation_key": "on",
            "rollout_key": None,
        }
        await db_flags.replace_rules(
            conn, project.id, decode_id_of(flag["id"], "Flag"), environment, [rule], actor="test"
        )
        delete = await blocked_on_a_lock(conn, delete_segment(gql, segment["id"]))
    deleted = await delete
    assert errors_of(deleted) == [(("input", "id"), "SEGMENT_IN_USE")]
    assert deleted["blockingUsage"]["usedInFlags"][0]["flag"]["key"] == "checkout"


async def test_a_create_racing_a_rename_to_its_key_gets_key_taken_not_a_deadlock(
    gql, project, database_url
):
    segment = await new_segment(gql, project.key, name="Old", key="old")
    segment_id = decode_id_of(segment["id"], "Segment")
    async with open_transaction(database_url) as conn:
        # What updateSegment does: rename under the row lock, then record the audit event.
        await conn.execute(
            "UPDATE segments SET key = 'launch', version = version + 1 WHERE id = $1", segment_id
        )
        create = await blocked_on_a_lock(
            conn, create_segment(gql, project.key, name="Launch", key="launch")
        )
        await asyncio.wait_for(
            record_event(
                conn,
                project.id,
                entity_type="segment",
                entity_id=segment_id,
                action="UPDATED",
                actor="test",
                changes=[{"field": "key", "before": "old", "after": "launch"}],
            ),
            timeout=5,
        )
    payload = await create
    assert errors_of(payload) == [(("input", "key"), "KEY_TAKEN")]


LIVE_SEGMENTS_ON_DELETED_SEGMENTS = """
    SELECT s.key AS segment, r.key AS referenced
    FROM segment_references sr
    JOIN segments s ON s.project_id = sr.project_id AND s.id = sr.segment_id
    JOIN segments r ON r.project_id = sr.project_id AND r.id = sr.referenced_id
    WHERE sr.project_id = $1 AND s.deleted_at IS NULL AND r.deleted_at IS NOT NULL
"""


def reference(key: str) -> dict:
    return {"segment": {"segmentKey": key}}


async def test_delete_and_reference_racing_never_leave_a_reference_to_a_deleted_segment(
    gql, project, database_url
):
    referencing = await new_segment(gql, project.key, name="Referencing", key="referencing")
    for round_ in range(20):
        target = await new_segment(gql, project.key, name=f"Target {round_}")
        update = update_segment(gql, referencing["id"], rules=[reference(target["key"])])
        # The update resolves and locks the key after some work; spread the delete over it.
        deleted, updated = await asyncio.gather(
            later((round_ % 10) * 0.002, delete_segment(gql, target["id"])), update
        )
        if deleted["userErrors"] == []:
            assert errors_of(updated) == [
                (("input", "rules", "0", "segment", "segmentKey"), "NOT_FOUND")
            ]
        else:
            assert errors_of(deleted) == [(("input", "id"), "SEGMENT_IN_USE")]
            assert updated["userErrors"] == []
            # Free the target again for the next round's segment.
            assert (await update_segment(gql, referencing["id"], rules=[]))["userErrors"] == []
        assert await sql_fetch(database_url, LIVE_SEGMENTS_ON_DELETED_SEGMENTS, project.id) == []


async def test_two_updates_closing_a_cycle_together_never_both_succeed(gql, project, database_url):
    a = await new_segment(gql, project.key, name="A", key="a")
    b = await new_segment(gql, project.key, name="B", key="b")
    for round_ in range(20):
        a_to_b = update_segment(gql, a["id"], rules=[reference("b")])
        b_to_a = later((round_ % 5) * 0.001, update_segment(gql, b["id"], rules=[reference("a")]))
        results = await asyncio.gather(a_to_b, b_to_a)
        outcomes = sorted(errors_of(result) for result in results)
        assert outcomes == [
            [],
            [(("input", "rules", "0", "segment", "segmentKey"), "SEGMENT_CYCLE")],
        ]
        cycles = await sql_fetch(
            database_url,
            """
            SELECT 1 FROM segment_references x
            JOIN segment_references y
              ON y.project_id = x.project_id
             AND y.segment_id = x.referenced_id AND y.referenced_id = x.segment_id
            WHERE x.project_id = $1
            """,
            project.id,
        )
        assert cycles == []
        for segment in (a, b):
            assert (await update_segment(gql, segment["id"], rules=[]))["userErrors"] == []


async def test_a_reference_waits_for_an_uncommitted_delete_and_then_is_not_found(
    gql, project, database_url
):
    target = await new_segment(gql, project.key, name="Target", key="target")
    referencing = await new_segment(gql, project.key, name="Referencing", key="referencing")
    target_id = decode_id_of(target["id"], "Segment")
    async with open_transaction(database_url) as conn:
        deleted = await db_segments.delete_segment(
            conn, project.id, target_id, actor="test", expected_version=None
        )
        assert not isinstance(deleted, Refused)
        update = await blocked_on_a_lock(
            conn, update_segment(gql, referencing["id"], rules=[reference("target")])
        )
    assert errors_of(await update) == [
        (("input", "rules", "0", "segment", "segmentKey"), "NOT_FOUND")
    ]
