"""A revoked key is refused from the moment its revocation commits, also when a lookup of the
same token was in flight at that moment (and would otherwise be cached as valid)."""

import asyncio
import random

import httpx
import pytest

from api.app import create_app
from api.settings import Settings
from db import api_keys
from db.pool import connect

TRIALS = 300
QUERY = {"query": "{ __typename }"}


@pytest.fixture
async def caching_app(database_url: str):
    settings = Settings(
        database_url=database_url, pool_min_size=2, pool_max_size=10, token_cache_seconds=30
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        for _ in range(100):  # the cache is on once the server listens for key changes
            if app.state.graphql.authenticator.caching:
                break
            await asyncio.sleep(0.02)
        assert app.state.graphql.authenticator.caching
        yield app


async def test_no_lookup_racing_a_revocation_keeps_the_key_alive(
    caching_app, project, database_url
):
    revoker = await connect(database_url)
    accepted_after_revocation = 0
    transport = httpx.ASGITransport(app=caching_app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:

            async def request(token: str, delay: float) -> int:
                await asyncio.sleep(delay)
                response = await http.post(
                    "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
                )
                return response.status_code

            async def revoke(token: str, delay: float) -> None:
                await asyncio.sleep(delay)
                assert await api_keys.revoke_api_key(revoker, token)

            for trial in range(TRIALS):
                token = await api_keys.create_api_key(
                    revoker, project.id, "viewer", f"race {trial}"
                )
                await asyncio.gather(
                    revoke(token, random.uniform(0, 0.002)),
                    *[request(token, random.uniform(0, 0.003)) for _ in range(3)],
                )
                # The revocation has committed; give its notification time to arrive.
                await asyncio.sleep(0.03)
                if await request(token, 0) != 401:
                    accepted_after_revocation += 1
    finally:
        await revoker.close()
    assert accepted_after_revocation == 0
