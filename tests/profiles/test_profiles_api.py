"""Stored profiles over GraphQL (DESIGN §11): upsert and delete in batches, all or nothing, and
reading them back by key, by page and by node id."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from api.app import create_app
from api.settings import Settings
from db.pool import connect
from tests.conftest import GraphQLClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

ERRORS = "userErrors { field code message }"
UPSERT = f"mutation($i: UpsertProfilesInput!) {{ upsertProfiles(input: $i) {{ upsertedCount {ERRORS} }} }}"
DELETE = f"mutation($i: DeleteProfilesInput!) {{ deleteProfiles(input: $i) {{ deletedCount {ERRORS} }} }}"
PROFILE = "query($p: String!, $k: String!) { profile(projectKey: $p, targetingKey: $k) { id targetingKey attributes updatedAt } }"
PROFILES = """
query($p: String!, $first: Int, $after: String, $search: String) {
  profiles(projectKey: $p, first: $first, after: $after, search: $search) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { targetingKey } }
    nodes { targetingKey attributes }
  }
}"""


async def upsert(
    gql: GraphQLClient, project_key: str, profiles: list[tuple[str, Any]], token: str | None = None
) -> dict:
    entries = [{"targetingKey": key, "attributes": attributes} for key, attributes in profiles]
    data = await gql(UPSERT, {"i": {"projectKey": project_key, "profiles": entries}}, token=token)
    return data["upsertProfiles"]


async def delete(
    gql: GraphQLClient, project_key: str, keys: list[str], token: str | None = None
) -> dict:
    data = await gql(DELETE, {"i": {"projectKey": project_key, "targetingKeys": keys}}, token=token)
    return data["deleteProfiles"]


async def stored(gql: GraphQLClient, project_key: str) -> dict[str, Any]:
    """targetingKey → attributes of every stored profile (tests keep it under 100)."""
    data = await gql(PROFILES, {"p": project_key, "first": 100})
    return {node["targetingKey"]: node["attributes"] for node in data["profiles"]["nodes"]}


def errors_of(payload: dict) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(e["field"]), e["code"]) for e in payload["userErrors"]]


def nested(depth: int) -> dict:
    """An attributes object whose objects nest `depth` levels (the outer one is level 1)."""
    value: dict = {"leaf": True}
    for _ in range(depth - 1):
        value = {"next": value}
    return value


def of_size(size: int) -> dict:
    """An attributes object whose compact JSON encoding is exactly `size` bytes."""
    overhead = len(orjson.dumps({"blob": ""}))
    return {"blob": "x" * (size - overhead)}


async def test_upsert_stores_profiles_that_read_back_exactly(gql, project):
    attributes = {
        "plan": "pro",
        "user": {"role": "admin", "tags": ["a", "b"]},
        "seats": 3,
        "beta": True,
        "x": None,
    }
    payload = await upsert(gql, project.key, [("user-1", attributes), ("user-2", {})])
    assert payload == {"upsertedCount": 2, "userErrors": []}

    profile = (await gql(PROFILE, {"p": project.key, "k": "user-1"}))["profile"]
    assert profile["targetingKey"] == "user-1"
    assert profile["attributes"] == attributes
    assert profile["updatedAt"]
    assert (await gql(PROFILE, {"p": project.key, "k": "user-3"}))["profile"] is None


async def test_upsert_replaces_the_stored_attributes_instead_of_merging(gql, project):
    await upsert(gql, project.key, [("user-1", {"plan": "free", "country": "DE"})])
    before = (await gql(PROFILE, {"p": project.key, "k": "user-1"}))["profile"]

    assert (await upsert(gql, project.key, [("user-1", {"plan": "pro"})]))["upsertedCount"] == 1

    after = (await gql(PROFILE, {"p": project.key, "k": "user-1"}))["profile"]
    assert after["attributes"] == {"plan": "pro"}
    assert after["id"] == before["id"]
    assert after["updatedAt"] > before["updatedAt"]


async def test_a_key_given_twice_in_one_call_keeps_the_later_attributes(gql, project):
    payload = await upsert(
        gql, project.key, [("user-1", {"plan": "free"}), ("user-1", {"plan": "pro"})]
    )
    assert payload["userErrors"] == []
    assert await stored(gql, project.key) == {"user-1": {"plan": "pro"}}


async def test_one_bad_entry_rejects_the_whole_batch_and_each_error_has_its_path(gql, project):
    await upsert(gql, project.key, [("kept", {"v": 1})])
    payload = await upsert(
        gql,
        project.key,
        [
            ("fine", {"plan": "pro"}),
            ("", {"plan": "pro"}),
            ("k" * 257, {}),
            ("not-an-object", [1, 2]),
            ("scalar", "pro"),
            ("too-deep", nested(11)),
            ("too-big", of_size(32 * 1024 + 1)),
            ("nul", {"name": "a\u0000b"}),
            ("also-fine", {"plan": "free"}),
        ],
    )
    assert payload["upsertedCount"] == 0
    assert errors_of(payload) == [
        (("input", "profiles", "1", "targetingKey"), "INVALID_INPUT"),
        (("input", "profiles", "2", "targetingKey"), "INVALID_INPUT"),
        (("input", "profiles", "3", "attributes"), "INVALID_INPUT"),
        (("input", "profiles", "4", "attributes"), "INVALID_INPUT"),
        (("input", "profiles", "5", "attributes"), "INVALID_INPUT"),
        (("input", "profiles", "6", "attributes"), "INVALID_INPUT"),
        (("input", "profiles", "7", "attributes"), "INVALID_INPUT"),
    ]
    assert await stored(gql, project.key) == {"kept": {"v": 1}}


async def test_attributes_may_take_32_kib_and_nest_10_deep_but_no_more(gql, project):
    # Arrays count as levels too: an object holding 9 nested arrays is 10 deep.
    at_limit = await upsert(
        gql,
        project.key,
        [
            ("big", of_size(32 * 1024)),
            ("deep", nested(10)),
            ("deep-list", {"a": [[[[[[[[[1]]]]]]]]]}),
        ],
    )
    assert at_limit == {"upsertedCount": 3, "userErrors": []}
    over = await upsert(
        gql,
        project.key,
        [
            ("big", of_size(32 * 1024 + 1)),
            ("deep", nested(11)),
            ("deep-list", {"a": [[[[[[[[[[1]]]]]]]]]]}),
        ],
    )
    assert errors_of(over) == [
        (("input", "profiles", str(index), "attributes"), "INVALID_INPUT") for index in range(3)
    ]


async def test_a_targeting_key_may_be_256_characters(gql, project):
    payload = await upsert(gql, project.key, [("k" * 256, {})])
    assert payload == {"upsertedCount": 1, "userErrors": []}


async def test_an_upsert_takes_1_to_1000_profiles(gql, project):
    none = await upsert(gql, project.key, [])
    assert errors_of(none) == [(("input", "profiles"), "INVALID_INPUT")]
    too_many = await upsert(gql, project.key, [(f"u{i}", {}) for i in range(1001)])
    assert errors_of(too_many) == [(("input", "profiles"), "LIMIT_EXCEEDED")]
    assert await stored(gql, project.key) == {}
    most = await upsert(gql, project.key, [(f"u{i}", {"i": i}) for i in range(1000)])
    assert most == {"upsertedCount": 1000, "userErrors": []}


async def test_delete_removes_the_listed_profiles_and_ignores_unknown_keys(gql, project):
    await upsert(gql, project.key, [("a", {}), ("b", {}), ("c", {})])
    payload = await delete(gql, project.key, ["a", "c", "never-stored"])
    assert payload == {"deletedCount": 2, "userErrors": []}
    assert await stored(gql, project.key) == {"b": {}}
    again = await delete(gql, project.key, ["a"])
    assert again == {"deletedCount": 0, "userErrors": []}


async def test_a_delete_takes_1_to_1000_well_formed_keys(gql, project):
    await upsert(gql, project.key, [("a", {})])
    assert errors_of(await delete(gql, project.key, [])) == [
        (("input", "targetingKeys"), "INVALID_INPUT")
    ]
    too_many = await delete(gql, project.key, ["a"] + [f"u{i}" for i in range(1000)])
    assert errors_of(too_many) == [(("input", "targetingKeys"), "LIMIT_EXCEEDED")]
    malformed = await delete(gql, project.key, ["a", ""])
    assert errors_of(malformed) == [(("input", "targetingKeys", "1"), "INVALID_INPUT")]
    assert await stored(gql, project.key) == {"a": {}}


async def test_a_viewer_may_read_profiles_but_not_write_them(gql, project):
    await upsert(gql, project.key, [("a", {"plan": "pro"})])
    for query, variables in (
        (
            UPSERT,
            {
                "i": {
                    "projectKey": project.key,
                    "profiles": [{"targetingKey": "b", "attributes": {}}],
                }
            },
        ),
        (DELETE, {"i": {"projectKey": project.key, "targetingKeys": ["a"]}}),
    ):
        errors = await gql.errors(query, variables, token=project.viewer)
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    data = await gql(PROFILES, {"p": project.key}, token=project.viewer)
    assert data["profiles"]["nodes"] == [{"targetingKey": "a", "attributes": {"plan": "pro"}}]


async def test_writes_to_an_unknown_project_are_not_found(gql, project):
    upserted = await upsert(gql, "no-such-project", [("a", {})])
    assert errors_of(upserted) == [(("input", "projectKey"), "NOT_FOUND")]
    deleted = await delete(gql, "no-such-project", ["a"])
    assert errors_of(deleted) == [(("input", "projectKey"), "NOT_FOUND")]


async def test_the_same_targeting_key_in_two_projects_is_two_profiles(gql, project, other_project):
    await upsert(gql, project.key, [("shared", {"owner": "acme"})])
    await upsert(
        gql, other_project.key, [("shared", {"owner": "globex"})], token=other_project.editor
    )
    # Deleting by key in one's own project leaves the other project's profile alone.
    assert (await delete(gql, project.key, ["shared"]))["deletedCount"] == 1
    theirs = await gql(PROFILE, {"p": other_project.key, "k": "shared"}, token=other_project.viewer)
    assert theirs["profile"]["attributes"] == {"owner": "globex"}


async def test_profiles_page_by_targeting_key_and_cursors_survive_inserts(gql, project):
    await upsert(gql, project.key, [(key, {}) for key in ("b", "d", "f", "h", "j")])
    first = (await gql(PROFILES, {"p": project.key, "first": 2}))["profiles"]
    assert [e["node"]["targetingKey"] for e in first["edges"]] == ["b", "d"]
    assert first["totalCount"] == 5
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False

    await upsert(gql, project.key, [("a", {}), ("e", {})])
    second = (
        await gql(PROFILES, {"p": project.key, "first": 2, "after": first["pageInfo"]["endCursor"]})
    )["profiles"]
    assert [n["targetingKey"] for n in second["nodes"]] == ["e", "f"]
    assert second["pageInfo"]["hasPreviousPage"] is True
    last = (
        await gql(
            PROFILES, {"p": project.key, "first": 10, "after": second["pageInfo"]["endCursor"]}
        )
    )["profiles"]
    assert [n["targetingKey"] for n in last["nodes"]] == ["h", "j"]
    assert last["pageInfo"]["hasNextPage"] is False


async def test_profiles_search_matches_a_substring_of_the_key_in_any_case(gql, project):
    await upsert(
        gql,
        project.key,
        [("Alice@Example.com", {}), ("bob@example.com", {}), ("carol@other.org", {})],
    )
    data = (await gql(PROFILES, {"p": project.key, "search": "EXAMPLE"}))["profiles"]
    assert [n["targetingKey"] for n in data["nodes"]] == ["Alice@Example.com", "bob@example.com"]
    assert data["totalCount"] == 2


async def test_profiles_page_size_and_cursor_are_checked(gql, project):
    for variables in ({"first": 101}, {"first": -1}, {"after": "not-a-cursor"}):
        errors = await gql.errors(PROFILES, {"p": project.key, **variables})
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    await upsert(gql, project.key, [(f"u{i:03}", {}) for i in range(60)])
    default = (await gql(PROFILES, {"p": project.key}))["profiles"]
    assert len(default["nodes"]) == 50


async def test_a_profile_is_fetchable_by_its_node_id(gql, project):
    await upsert(gql, project.key, [("user-1", {"plan": "pro"})])
    profile_id = (await gql(PROFILE, {"p": project.key, "k": "user-1"}))["profile"]["id"]
    data = await gql(
        "query($id: ID!) { node(id: $id) { __typename id ... on Profile { targetingKey attributes } } }",
        {"id": profile_id},
    )
    assert data["node"] == {
        "__typename": "Profile",
        "id": profile_id,
        "targetingKey": "user-1",
        "attributes": {"plan": "pro"},
    }
    await delete(gql, project.key, ["user-1"])
    assert (await gql("query($id: ID!) { node(id: $id) { id } }", {"id": profile_id}))[
        "node"
    ] is None


# The per-project limit, lowered to 3 on an app of its own.


@pytest_asyncio.fixture(loop_scope="module")
async def limited_gql(shared, project) -> AsyncIterator[GraphQLClient]:
    app = create_app(
        Settings(
            database_url=shared.database_url,
            pool_min_size=1,
            pool_max_size=4,
            max_profiles_per_project=3,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http, project.editor)


async def test_an_upsert_that_would_pass_the_project_limit_writes_nothing(limited_gql, project):
    assert (await upsert(limited_gql, project.key, [("a", {}), ("b", {})]))["userErrors"] == []
    over = await upsert(limited_gql, project.key, [("c", {}), ("d", {})])
    assert errors_of(over) == [(("input", "profiles"), "LIMIT_EXCEEDED")]
    assert over["upsertedCount"] == 0
    assert set(await stored(limited_gql, project.key)) == {"a", "b"}
    # Replacing stored profiles does not add to the count.
    replaced = await upsert(limited_gql, project.key, [("a", {"v": 2}), ("b", {"v": 2}), ("c", {})])
    assert replaced == {"upsertedCount": 3, "userErrors": []}
    # Deleting makes room again.
    await delete(limited_gql, project.key, ["a", "b"])
    assert (await upsert(limited_gql, project.key, [("d", {}), ("e", {})]))["userErrors"] == []
    assert set(await stored(limited_gql, project.key)) == {"c", "d", "e"}


async def test_concurrent_upserts_cannot_pass_the_project_limit_together(limited_gql, project):
    results = await asyncio.gather(
        *(upsert(limited_gql, project.key, [(f"k{n}", {})]) for n in range(12))
    )
    accepted = [r for r in results if not r["userErrors"]]
    refused = [r for r in results if r["userErrors"]]
    assert len(accepted) == 3 and all(r["upsertedCount"] == 1 for r in accepted)
    assert all(errors_of(r) == [(("input", "profiles"), "LIMIT_EXCEEDED")] for r in refused)
    assert len(await stored(limited_gql, project.key)) == 3


async def test_the_limit_reads_the_project_counter_not_its_rows(shared, limited_gql, project):
    conn = await connect(shared.database_url)
    try:
        # A counter at the limit refuses a new profile although no row is stored.
        await conn.execute(
            "INSERT INTO profile_counts (project_id, profiles) VALUES ($1, 3)", project.id
        )
        over = await upsert(limited_gql, project.key, [("a", {})])
        assert errors_of(over) == [(("input", "profiles"), "LIMIT_EXCEEDED")]
        # Rolled back: neither the row nor the counter moved.
        assert (
            await conn.fetchval(
                "SELECT profiles FROM profile_counts WHERE project_id = $1", project.id
            )
            == 3
        )
        assert await stored(limited_gql, project.key) == {}
    finally:
        await conn.close()
