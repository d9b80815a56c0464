"""The pool after interrupted work: every connection comes back idle, outside any transaction."""

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from api.app import create_app
from api.seed import seed_demo
from api.settings import Settings
from db import profiles
from db.pool import connect

STATEMENT_TIMEOUT_MS = 400
PROFILES = 100_000

# A root field that fails at once (a non-null error) beside siblings whose SQL is in flight:
# graphql-core cancels the siblings, the fast path abandons its attempt.
CANCELLING_QUERY = """
{
  a: evaluateSegment(projectKey: "demo", key: "beta_testers", context: []) { matched }
  s: segment(projectKey: "demo", key: "non_legacy_users") { key memberCount usage { usageCount } }
  m: segment(projectKey: "demo", key: "non_legacy_users") { members(first: 50) { nodes { targetingKey } } }
  f: flag(projectKey: "demo", key: "new_checkout") { key }
  p: profile(projectKey: "demo", targetingKey: "user-1") { id }
  t: segments(projectKey: "demo", first: 5) { totalCount nodes { key memberCount } }
}
"""
FOLLOW_UP = '{ segments(projectKey: "demo", first: 3) { totalCount nodes { key } } }'


@pytest.fixture
async def demo(database_url: str) -> str:
    conn = await connect(database_url)
    try:
        token = await seed_demo(conn, "demo")
        project_id = await conn.fetchval("SELECT id FROM projects WHERE key = 'demo'")
        people = (
            (
                f"bulk-{n}",
                {"app_version": f"1.{n % 9}.0", "signup_date": "2019-05-01", "plan": "pro"},
            )
            for n in range(PROFILES)
        )
        await profiles.copy_profiles(conn, project_id, people)
    finally:
        await conn.close()
    assert token is not None
    return token


@pytest.fixture
async def small_pool_client(database_url: str) -> Any:
    settings = Settings(
        database_url=database_url,
        pool_min_size=1,
        pool_max_size=4,
        statement_timeout_ms=STATEMENT_TIMEOUT_MS,
        token_cache_seconds=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def _pool_backends_busy(database_url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(
            """
            SELECT pid, state, backend_xid, xact_start
            FROM pg_stat_activity
            WHERE datname = current_database()
              AND application_name = 'segments'
              AND pid <> pg_backend_pid()
              AND (state <> 'idle' OR xact_start IS NOT NULL)
            """
        )
    finally:
        await conn.close()


async def test_cancelled_resolvers_leave_every_pooled_connection_idle(
    small_pool_client, demo, database_url
):
    headers = {"Authorization": f"Bearer {demo}"}
    for _ in range(10):
        response = await small_pool_client.post(
            "/graphql", json={"query": CANCELLING_QUERY}, headers=headers
        )
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    await asyncio.sleep(STATEMENT_TIMEOUT_MS / 1000 * 2)
    assert await _pool_backends_busy(database_url) == []

    responses = await asyncio.gather(
        *[
            small_pool_client.post("/graphql", json={"query": FOLLOW_UP}, headers=headers)
            for _ in range(20)
        ]
    )
    failures = [r.json() for r in responses if r.status_code != 200 or "errors" in r.json()]
    assert failures == []


async def test_an_interrupted_use_does_not_leak_session_state_to_the_next(database_url):
    from db.pool import Database

    db = await Database.connect(database_url, min_size=1, max_size=1, statement_timeout_ms=2000)
    try:

        async def interrupted() -> None:
            async with db.connection() as conn:
                await conn.execute("SET work_mem = '77kB'")
                await conn.fetchval("SELECT pg_sleep(5)")

        task = asyncio.create_task(interrupted())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.connection() as conn:
            assert await conn.fetchval("SHOW work_mem") != "77kB"
            assert await conn.fetchval("SELECT count(*) FROM generate_series(1, 200000)") == 200000
    finally:
        await db.close()


@pytest.fixture
async def tiny_pool(database_url: str) -> Any:
    settings = Settings(
        database_url=database_url,
        pool_min_size=1,
        pool_max_size=2,
        connect_timeout_s=0.3,
        token_cache_seconds=0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


async def test_a_full_pool_answers_server_busy_with_retry_after(tiny_pool, project):
    app, http = tiny_pool
    db = app.state.db
    headers = {"Authorization": f"Bearer {project.viewer}"}
    async with db.connection() as first, db.connection() as second:
        assert first is not second
        response = await http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "SERVER_BUSY"
    assert "busy" in error["message"] and "unavailable" not in error["message"]
    # Once connections are free again, the same request works.
    response = await http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 200


async def test_a_resolver_finding_the_pool_full_answers_server_busy(tiny_pool, project):
    app, http = tiny_pool
    db = app.state.db
    headers = {"Authorization": f"Bearer {project.viewer}"}
    query = {"query": '{ segments(projectKey: "acme", first: 1) { totalCount } }'}
    # The token lookup gets the one free connection; the resolver then finds none.
    async with db.connection():
        blocker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        original = app.state.graphql.authenticator.principal

        async def principal_then_hold(authorization: str | None) -> Any:
            found = await original(authorization)

            async def hold() -> None:
                async with db.connection():
                    await blocker

            asyncio.get_running_loop().create_task(hold())
            await asyncio.sleep(0.05)
            return found

        app.state.graphql.authenticator.principal = principal_then_hold
        try:
            response = await http.post("/graphql", json=query, headers=headers)
        finally:
            blocker.set_result(None)
            app.state.graphql.authenticator.principal = original
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVER_BUSY"


HEAVY = '{ segment(projectKey: "demo", key: "non_legacy_users") { memberCount } }'
LIGHT = '{ segments(projectKey: "demo", first: 1) { totalCount } }'


async def test_heavy_member_queries_do_not_starve_a_light_one(database_url, demo):
    settings = Settings(
        database_url=database_url,
        pool_min_size=1,
        pool_max_size=6,
        statement_timeout_ms=2500,
        token_cache_seconds=0,
    )
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {demo}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:

            async def timed(query: str) -> tuple[float, httpx.Response]:
                started = asyncio.get_running_loop().time()
                response = await http.post("/graphql", json={"query": query}, headers=headers)
                return asyncio.get_running_loop().time() - started, response

            heavy = [asyncio.create_task(timed(HEAVY)) for _ in range(12)]
            await asyncio.sleep(0.3)  # the heavy ones hold what they can get
            waits = []
            for _ in range(3):
                wait, response = await timed(LIGHT)
                assert response.status_code == 200 and "errors" not in response.json()
                waits.append(wait)
            await asyncio.gather(*heavy)
    assert max(waits) < 1.0, waits
