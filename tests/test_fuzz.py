"""Generated queries and mutations from the live schema never get a 5xx or leak internals."""

import asyncio

import httpx
import pytest
from graphql import BooleanValueNode, IntValueNode, NullValueNode, StringValueNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, queries

from api.app import create_app
from api.settings import Settings
from schema.build import export_sdl
from tests.conftest import make_project

LEAKS = ("Traceback", "asyncpg", "SELECT ", "INSERT ", "psycopg", 'File "/')


def scalars():
    """Literal strategies for our custom scalars."""

    def to_node(value):
        if value is None:
            return NullValueNode()
        if isinstance(value, bool):
            return BooleanValueNode(value=value)
        if isinstance(value, int):
            return IntValueNode(value=str(value))
        return StringValueNode(value=str(value))

    scalar_json = (st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=20)).map(
        to_node
    )
    dates = st.datetimes().map(lambda d: StringValueNode(value=d.isoformat()))
    return {"JSON": scalar_json, "DateTime": dates}


@pytest.mark.parametrize("mode", ["queries", "mutations"])
def test_generated_operations_get_no_5xx_and_no_internal_errors(database_url, mode):
    loop = asyncio.new_event_loop()
    app = create_app(Settings(database_url=database_url, pool_min_size=1, pool_max_size=4))
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    project = loop.run_until_complete(make_project(database_url, "acme"))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    # Some real objects, so generated ids and keys sometimes hit something.
    loop.run_until_complete(
        http.post(
            "/graphql",
            json={
                "query": 'mutation { createSegment(input: {projectKey: "acme", name: "Beta", key: "beta"}) { segment { id } } }'
            },
            headers={"Authorization": f"Bearer {project.editor}"},
        )
    )
    generate = queries if mode == "queries" else mutations
    strategy = generate(export_sdl(), custom_scalars=scalars())

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(query=strategy)
    def check(query: str) -> None:
        response = loop.run_until_complete(
            http.post(
                "/graphql",
                json={"query": query},
                headers={"Authorization": f"Bearer {project.editor}"},
            )
        )
        assert response.status_code < 500, response.text
        for leak in LEAKS:
            assert leak not in response.text, response.text
        codes = [e.get("extensions", {}).get("code") for e in response.json().get("errors", [])]
        assert "INTERNAL_SERVER_ERROR" not in codes, (query, response.text)

    try:
        check()
    finally:
        loop.run_until_complete(http.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()
