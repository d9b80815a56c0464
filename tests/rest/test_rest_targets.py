"""Big segments over REST (DESIGN §13, §16): `unbounded` on create, counts in the segment JSON,
and `POST .../targets` editing target lists in batches, through the same core as
updateSegmentTargets."""

from typing import Any

import pytest

from tests.mutations.test_big_segments import all_targets
from tests.rest.test_rest_segments import auth

EVALUATE = """
query($p: String!, $k: String!, $key: String!) {
  evaluateSegment(projectKey: $p, key: $k, context: {targetingKey: $key}) { matched }
}"""
BY_KEY = "query($p: String!, $k: String!) { segment(projectKey: $p, key: $k) { id } }"


async def _targets(client: Any, project: Any, key: str, body: Any, token: str | None = None):
    return await client.post(
        f"/projects/{project.key}/segments/{key}/targets",
        json=body,
        headers=auth(token or project.editor),
    )


async def _create(client: Any, project: Any, body: dict[str, Any]):
    return await client.post(
        f"/projects/{project.key}/segments", json=body, headers=auth(project.editor)
    )


async def _read(client: Any, project: Any, key: str) -> dict[str, Any]:
    response = await client.get(
        f"/projects/{project.key}/segments/{key}", headers=auth(project.viewer)
    )
    assert response.status_code == 200
    return response.json()


async def _matched(gql: Any, project: Any, key: str, targeting_key: str) -> bool:
    data = await gql(EVALUATE, {"p": project.key, "k": key, "key": targeting_key})
    return data["evaluateSegment"]["matched"]


async def test_create_unbounded_over_rest_and_edit_its_targets_in_batches(client, project, gql):
    created = await _create(client, project, {"name": "Customers", "unbounded": True})
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["unbounded"], body["included_count"], body["generation"]) == (True, 0, 0)
    assert (body["included"], body["excluded"]) == ([], [])

    edited = await _targets(
        client,
        project,
        "customers",
        {"included": {"add": ["u2", "u1", "u3", "u1"]}, "excluded": {"add": ["x1"]}},
    )
    assert edited.status_code == 200, edited.json()
    answer = edited.json()
    assert (answer["added_count"], answer["removed_count"]) == (4, 0)
    segment = answer["segment"]
    assert (segment["included_count"], segment["excluded_count"]) == (3, 1)
    # Target changes of a big segment are data: the version does not move.
    assert segment["version"] == body["version"]
    assert (segment["included"], segment["excluded"]) == ([], [])

    again = await _targets(
        client, project, "customers", {"included": {"add": ["u1"], "remove": ["u2", "absent"]}}
    )
    assert again.status_code == 200, again.json()
    assert (again.json()["added_count"], again.json()["removed_count"]) == (0, 1)
    read = await _read(client, project, "customers")
    assert (read["included_count"], read["excluded_count"]) == (2, 1)
    # The same rows GraphQL reads and evaluation probes.
    segment_id = (await gql(BY_KEY, {"p": project.key, "k": "customers"}))["segment"]["id"]
    assert await all_targets(gql, segment_id, "INCLUDED") == ["u1", "u3"]
    assert await _matched(gql, project, "customers", "u3")
    assert not await _matched(gql, project, "customers", "u2")


async def test_unbounded_with_target_lists_is_400_and_creates_nothing(client, project):
    refused = await _create(
        client, project, {"name": "Customers", "unbounded": True, "included": ["u1"]}
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", "included")
    missing = await client.get(
        f"/projects/{project.key}/segments/customers", headers=auth(project.viewer)
    )
    assert missing.status_code == 404


async def test_targets_of_a_standard_segment_are_an_ordinary_write(client, project):
    created = (await _create(client, project, {"name": "Beta", "included": ["a"]})).json()
    edited = await _targets(
        client, project, "beta", {"included": {"add": ["b"]}, "excluded": {"add": ["z"]}}
    )
    assert edited.status_code == 200, edited.json()
    segment = edited.json()["segment"]
    assert (segment["included"], segment["excluded"]) == (["a", "b"], ["z"])
    assert segment["version"] == created["version"] + 1
    assert (segment["unbounded"], segment["included_count"]) == (False, 2)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 400, "INVALID_INPUT", None),
        ({"included": {"add": ["ok", "x" * 257]}}, 400, "INVALID_INPUT", "included.add.1"),
        ({"included": {"add": ["k"], "remove": ["k"]}}, 400, "INVALID_INPUT", "included.remove.0"),
        ({"included": {"add": [f"k{i}" for i in range(10_001)]}}, 422, "LIMIT_EXCEEDED", None),
        ({"included": {"add": "u1"}}, 400, "INVALID_INPUT", "included.add"),
        ({"included": ["u1"]}, 400, "INVALID_INPUT", "included"),
        ({"everyone": {"add": ["u1"]}}, 400, "INVALID_INPUT", "everyone"),
    ],
    ids=["empty", "too-long", "add-and-remove", "over-10000", "not-a-list", "flat", "unknown"],
)
async def test_bad_target_batches_are_refused_and_change_nothing(
    client, project, gql, body, status, code, field
):
    await _create(client, project, {"name": "Customers", "unbounded": True})
    await _targets(client, project, "customers", {"included": {"add": ["keep"]}})
    refused = await _targets(client, project, "customers", body)
    assert refused.status_code == status, refused.json()
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    read = await _read(client, project, "customers")
    assert read["included_count"] == 1
    segment_id = (await gql(BY_KEY, {"p": project.key, "k": "customers"}))["segment"]["id"]
    assert await all_targets(gql, segment_id, "INCLUDED") == ["keep"]


async def test_targets_need_an_editor_and_a_live_segment(client, project, other_project):
    await _create(client, project, {"name": "Customers", "unbounded": True})
    batch = {"included": {"add": ["u1"]}}
    viewer = await _targets(client, project, "customers", batch, token=project.viewer)
    assert viewer.status_code == 403
    assert (await _targets(client, project, "nobody", batch)).status_code == 404
    # Another project's key does not reach this project's segment.
    foreign = await _targets(client, project, "customers", batch, token=other_project.editor)
    assert foreign.status_code == 404
    assert (await _read(client, project, "customers"))["included_count"] == 0
