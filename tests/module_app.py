"""One database and app per test module, a fresh project per test: every row the API shows is
project-scoped, so tests stay isolated while skipping the cost of a database each.

A test folder's conftest imports these fixtures (they override the root conftest's of the
same names); the app lives on the module's event loop, so each module sets
`pytestmark = pytest.mark.asyncio(loop_scope="module")`.
"""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from api.settings import Settings
from tests.conftest import GraphQLClient, Project, _admin, make_project, with_database


@dataclass
class Shared:
    database_url: str
    http: httpx.AsyncClient


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(server_url: str, template_name: str) -> AsyncIterator[Shared]:
    name = f"segments_m_{uuid.uuid4().hex[:12]}"
    await _admin(
        server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}" STRATEGY FILE_COPY'
    )
    url = with_database(server_url, name)
    try:
        app = create_app(Settings(database_url=url, pool_min_size=1, pool_max_size=20))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                yield Shared(url, http)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(shared: Shared) -> str:
    return shared.database_url


@pytest_asyncio.fixture(loop_scope="module")
async def project(shared: Shared) -> Project:
    return await make_project(shared.database_url, f"acme-{uuid.uuid4().hex[:8]}")


@pytest_asyncio.fixture(loop_scope="module")
async def other_project(shared: Shared) -> Project:
    return await make_project(shared.database_url, f"globex-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def gql(shared: Shared, project: Project) -> GraphQLClient:
    return GraphQLClient(shared.http, project.editor)
