"""SEGMENTS_CORS_ORIGINS lets the listed browser origins call /graphql; no one else."""

import httpx
import pytest

from api.app import create_app
from api.settings import Settings

ALLOWED = "https://admin.example.test"
REFUSED = "https://evil.example.test"
PREFLIGHT = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest.fixture
async def cors_client(database_url):
    settings = Settings(
        database_url=database_url,
        pool_min_size=1,
        cors_origins=f"{ALLOWED}, https://other.example.test",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def test_cors_origins_are_read_comma_separated_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEGMENTS_CORS_ORIGINS", "https://a.test, https://b.test:8443/ ,")
    assert Settings().cors_origins == ["https://a.test", "https://b.test:8443"]
    monkeypatch.setenv("SEGMENTS_CORS_ORIGINS", "")
    assert Settings().cors_origins == []


@pytest.mark.parametrize("origin", ["admin.example.com", "https://a.test/path", "ftp://a.test"])
def test_a_value_that_is_not_an_origin_is_refused(monkeypatch, origin):
    monkeypatch.setenv("SEGMENTS_CORS_ORIGINS", origin)
    with pytest.raises(ValueError, match="is not an origin"):
        Settings()


async def test_a_preflight_from_an_allowed_origin_answers_204(cors_client):
    response = await cors_client.options("/graphql", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert set(response.headers["access-control-allow-methods"].split(", ")) >= {"GET", "POST"}
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers


async def test_a_preflight_from_another_origin_is_refused(cors_client):
    response = await cors_client.options("/graphql", headers={"Origin": REFUSED, **PREFLIGHT})
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_a_request_from_an_allowed_origin_may_be_read_by_it(cors_client, project):
    response = await cors_client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Origin": ALLOWED, "Authorization": f"Bearer {project.viewer}"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED


async def test_a_request_from_another_origin_gets_no_cors_headers(cors_client, project):
    response = await cors_client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Origin": REFUSED, "Authorization": f"Bearer {project.viewer}"},
    )
    assert "access-control-allow-origin" not in response.headers


async def test_without_cors_origins_no_response_has_cors_headers(client, project):
    preflight = await client.options("/graphql", headers={"Origin": ALLOWED, **PREFLIGHT})
    assert preflight.status_code == 405
    assert not any(h.startswith("access-control-") for h in preflight.headers)
    response = await client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Origin": ALLOWED, "Authorization": f"Bearer {project.viewer}"},
    )
    assert response.status_code == 200
    assert not any(h.startswith("access-control-") for h in response.headers)


async def test_the_rest_api_answers_the_allowed_origins_too(cors_client, project):
    path = f"/projects/{project.key}/segments"
    preflight = await cors_client.options(
        path, headers={"Origin": ALLOWED, **PREFLIGHT, "Access-Control-Request-Method": "PUT"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ALLOWED
    refused = await cors_client.options(path, headers={"Origin": REFUSED, **PREFLIGHT})
    assert refused.status_code == 400
    listed = await cors_client.get(
        path, headers={"Origin": ALLOWED, "Authorization": f"Bearer {project.viewer}"}
    )
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == ALLOWED
