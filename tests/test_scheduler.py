"""The change request scheduler in real server processes (DESIGN §14): with two `segments
serve` on one database every due request is applied exactly once, within 5 s of its time;
a request that came due while no server ran is applied when one starts."""

import asyncio
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import GraphQLClient, make_project
from tests.mutations.helpers import (
    apply_request,
    change_request,
    editor_token,
    new_segment,
    propose,
    review,
    sql_fetch,
)
from tests.serve import live_server

DUE_WITHIN_S = 5.0


async def scheduled(gql: GraphQLClient, reviewer: str, key: str, apply_at: datetime) -> str:
    """A request renaming a new segment, approved and scheduled at `apply_at`; its id."""
    segment = await new_segment(gql, "acme", name=key)
    proposed = await propose(gql, update={"id": segment["id"], "name": f"{key} renamed"})
    request_id = proposed["changeRequest"]["id"]
    assert (await review(gql, request_id, "APPROVE", token=reviewer))["userErrors"] == []
    payload = await apply_request(gql, request_id, applyAt=apply_at.isoformat())
    assert payload["changeRequest"]["state"] == "SCHEDULED", payload
    return request_id


async def wait_applied(gql: GraphQLClient, request_ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        shown = [await change_request(gql, request_id) for request_id in request_ids]
        if all(s["state"] != "SCHEDULED" for s in shown) or time.monotonic() > deadline:
            return shown
        await asyncio.sleep(0.2)


APPLIED_EVENTS = """
    SELECT c.id, c.apply_at, e.created_at
    FROM change_requests c
    JOIN audit_events e
      ON e.project_id = c.project_id AND e.entity_type = 'changeRequest' AND e.entity_id = c.id
    WHERE c.project_id = $1
      AND e.changes @> '[{"field": "state", "after": "APPLIED"}]'
"""


async def test_two_servers_apply_each_due_request_exactly_once_and_in_time(database_url):
    project = await make_project(database_url, "acme")
    reviewer = await editor_token(database_url, project, "reviewer")
    with ExitStack() as stack:
        servers = [stack.enter_context(live_server(database_url)) for _ in range(2)]
        async with (
            httpx.AsyncClient(base_url=servers[0].url, timeout=30) as first,
            httpx.AsyncClient(base_url=servers[1].url, timeout=30) as second,
        ):
            clients = [GraphQLClient(first, project.editor), GraphQLClient(second, project.editor)]
            due = datetime.now(UTC) + timedelta(seconds=3)
            ids = [
                await scheduled(
                    clients[n % 2], reviewer, f"seg-{n}", due + timedelta(seconds=n / 10)
                )
                for n in range(6)
            ]
            shown = await wait_applied(clients[0], ids, timeout=3 + DUE_WITHIN_S + 2)
    assert [s["state"] for s in shown] == ["APPLIED"] * 6
    assert [s["segment"]["version"] for s in shown] == [2] * 6
    assert [s["segment"]["name"] for s in shown] == [f"seg-{n} renamed" for n in range(6)]
    events = await sql_fetch(database_url, APPLIED_EVENTS, project.id)
    assert len(events) == 6 and len({e["id"] for e in events}) == 6  # once each
    assert all((e["created_at"] - e["apply_at"]).total_seconds() <= DUE_WITHIN_S for e in events)
    # One version written per request: a second apply would have left another update.
    updates = await sql_fetch(
        database_url,
        """
        SELECT count(*) AS n FROM audit_events
        WHERE project_id = $1 AND entity_type = 'segment' AND action = 'UPDATED'
        """,
        project.id,
    )
    assert updates[0]["n"] == 6


async def test_a_request_due_while_no_server_ran_is_applied_on_start(database_url):
    project = await make_project(database_url, "acme")
    reviewer = await editor_token(database_url, project, "reviewer")
    with live_server(database_url, SEGMENTS_SCHEDULER_INTERVAL="0") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            gql = GraphQLClient(http, project.editor)
            due = datetime.now(UTC) + timedelta(seconds=1)
            request_id = await scheduled(gql, reviewer, "restarted", due)
    # No server runs now; the request comes due.
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.5)
    rows = await sql_fetch(database_url, "SELECT state FROM change_requests")
    assert [r["state"] for r in rows] == ["SCHEDULED"]
    with live_server(database_url) as server:
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            gql = GraphQLClient(http, project.editor)
            [shown] = await wait_applied(gql, [request_id], timeout=DUE_WITHIN_S)
    assert shown["state"] == "APPLIED", shown
    assert shown["segment"]["name"] == "restarted renamed"
    assert time.monotonic() - started <= DUE_WITHIN_S + 1
