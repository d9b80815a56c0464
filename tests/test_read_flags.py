"""Reading flags: the `flags` connection, `flag(projectKey, key)` and its per-environment
targeting rules with their segments (DESIGN §6)."""

import pytest

from tests.conftest import GraphQLClient

CREATE_SEGMENT = """
mutation($input: CreateSegmentInput!) {
  createSegment(input: $input) { segment { id key } userErrors { code message } }
}
"""

CREATE_FLAG = """
mutation($input: CreateFlagInput!) {
  createFlag(input: $input) { flag { id key } userErrors { code message } }
}
"""

SET_RULES = """
mutation($input: SetTargetingRulesInput!) {
  setTargetingRules(input: $input) { flag { id } userErrors { field code message } }
}
"""

ARCHIVE_FLAG = """
mutation($input: ArchiveFlagInput!) {
  archiveFlag(input: $input) { flag { archived } userErrors { code message } }
}
"""

FLAGS = """
query($p: String!, $first: Int, $after: String, $search: String) {
  flags(projectKey: $p, first: $first, after: $after, search: $search) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id key name description archived } }
    nodes { key }
  }
}
"""

RULES = """
query($p: String!, $key: String!, $env: String!) {
  flag(projectKey: $p, key: $key) {
    key
    targetingRules(environmentKey: $env) {
      id orderIndex kind logicalOp variationKey rolloutKey
      segment { id key deleted }
      rules { __typename ... on Condition { attribute operator value } }
    }
  }
}
"""


async def create_flag(
    gql, project_key: str, key: str, name: str | None = None, description: str | None = None
) -> str:
    data = await gql(
        CREATE_FLAG,
        {
            "input": {
                "projectKey": project_key,
                "key": key,
                "name": name or key.title(),
                "description": description,
            }
        },
    )
    assert data["createFlag"]["userErrors"] == []
    return data["createFlag"]["flag"]["id"]


async def create_segment(gql, project_key: str, key: str) -> str:
    data = await gql(
        CREATE_SEGMENT, {"input": {"projectKey": project_key, "name": key, "key": key}}
    )
    assert data["createSegment"]["userErrors"] == []
    return data["createSegment"]["segment"]["id"]


async def set_rules(gql, flag_id: str, environment: str, rules: list[dict]) -> None:
    data = await gql(
        SET_RULES, {"input": {"flagId": flag_id, "environmentKey": environment, "rules": rules}}
    )
    assert data["setTargetingRules"]["userErrors"] == []


async def flags_page(gql, project_key: str, **args) -> dict:
    return (await gql(FLAGS, {"p": project_key, **args}))["flags"]


def keys(connection: dict) -> list[str]:
    return [edge["node"]["key"] for edge in connection["edges"]]


@pytest.fixture
async def seven_flags(gql, project) -> list[str]:
    keys = [
        "checkout",
        "banner",
        "dark-mode",
        "search-v2",
        "beta-banner",
        "api-limits",
        "onboarding",
    ]
    for key in keys:
        await create_flag(gql, project.key, key, description=f"About {key}")
    return sorted(keys)


async def test_flags_walk_by_key_returns_every_flag_once(gql, project, seven_flags):
    seen: list[str] = []
    after = None
    while True:
        conn = await flags_page(gql, project.key, first=3, after=after)
        assert conn["totalCount"] == 7
        assert keys(conn) == seven_flags[len(seen) : len(seen) + 3]
        assert [n["key"] for n in conn["nodes"]] == keys(conn)
        assert conn["pageInfo"]["hasPreviousPage"] is (len(seen) > 0)
        assert conn["pageInfo"]["startCursor"] == conn["edges"][0]["cursor"]
        assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        seen += keys(conn)
        assert conn["pageInfo"]["hasNextPage"] is (len(seen) < 7)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == seven_flags


async def test_flags_show_their_fields_and_archived_state(gql, project, seven_flags):
    flag_id = (await flags_page(gql, project.key, search="checkout"))["edges"][0]["node"]["id"]
    archived = await gql(ARCHIVE_FLAG, {"input": {"flagId": flag_id}})
    assert archived["archiveFlag"]["userErrors"] == []

    conn = await flags_page(gql, project.key, first=100)
    by_key = {e["node"]["key"]: e["node"] for e in conn["edges"]}
    # Archived flags stay listed, marked as such.
    assert len(by_key) == 7
    assert by_key["checkout"] == {
        "id": flag_id,
        "key": "checkout",
        "name": "Checkout",
        "description": "About checkout",
        "archived": True,
    }
    assert not by_key["banner"]["archived"]


FLAG_SEARCHES = [
    ("banner", ["banner", "beta-banner"]),
    ("BANNER", ["banner", "beta-banner"]),
    ("Dark-Mode", ["dark-mode"]),
    ("v2", ["search-v2"]),
    ("%", []),
    (
        "",
        ["api-limits", "banner", "beta-banner", "checkout", "dark-mode", "onboarding", "search-v2"],
    ),
]


async def test_flags_search_matches_key_or_name_case_insensitively(gql, project, seven_flags):
    for search, expected in FLAG_SEARCHES:
        conn = await flags_page(gql, project.key, search=search)
        assert keys(conn) == expected, search
        assert conn["totalCount"] == len(expected), search


async def test_flags_search_matches_the_name(gql, project):
    await create_flag(gql, project.key, "f1", name="New Checkout Flow")
    await create_flag(gql, project.key, "f2", name="Pricing page")
    assert keys(await flags_page(gql, project.key, search="checkout flow")) == ["f1"]


async def test_flags_first_defaults_to_50_and_is_bounded(gql, project):
    await create_flag(gql, project.key, "only")
    assert keys(await flags_page(gql, project.key)) == ["only"]
    for first in (101, -1):
        errors = await gql.errors(FLAGS, {"p": project.key, "first": first})
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_flags_cursor_from_a_segment_list_is_bad_user_input(gql, project, seven_flags):
    await create_segment(gql, project.key, "beta")
    segments = await gql(
        "query($p: String!) { segments(projectKey: $p) { pageInfo { endCursor } } }",
        {"p": project.key},
    )
    errors = await gql.errors(
        FLAGS, {"p": project.key, "after": segments["segments"]["pageInfo"]["endCursor"]}
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_targeting_rules_come_in_order_per_environment_with_their_segments(gql, project):
    beta = await create_segment(gql, project.key, "beta")
    staff = await create_segment(gql, project.key, "staff")
    flag = await create_flag(gql, project.key, "checkout")
    custom = {
        "logicalOp": "OR",
        "rules": [{"condition": {"attribute": "user.plan", "operator": "EQ", "value": "pro"}}],
        "rolloutKey": "half",
    }
    await set_rules(
        gql,
        flag,
        "production",
        [
            {"segmentId": staff, "variationKey": "on"},
            custom,
            {"segmentId": beta, "variationKey": "off"},
        ],
    )
    await set_rules(gql, flag, "staging", [{"segmentId": beta, "variationKey": "on"}])

    production = (await gql(RULES, {"p": project.key, "key": "checkout", "env": "production"}))[
        "flag"
    ]
    staging = (await gql(RULES, {"p": project.key, "key": "checkout", "env": "staging"}))["flag"]

    rules = production["targetingRules"]
    assert [r["orderIndex"] for r in rules] == [0, 1, 2]
    assert [r["kind"] for r in rules] == ["SEGMENT", "CUSTOM", "SEGMENT"]
    assert [r["segment"] and r["segment"]["key"] for r in rules] == ["staff", None, "beta"]
    assert rules[0]["segment"] == {"id": staff, "key": "staff", "deleted": False}
    assert [(r["variationKey"], r["rolloutKey"]) for r in rules] == [
        ("on", None),
        (None, "half"),
        ("off", None),
    ]
    assert rules[1]["logicalOp"] == "OR"
    assert rules[1]["rules"] == [
        {"__typename": "Condition", "attribute": "user.plan", "operator": "EQ", "value": "pro"}
    ]
    assert rules[0]["rules"] == [] and rules[0]["logicalOp"] is None
    assert len({r["id"] for r in rules}) == 3
    assert [r["segment"]["key"] for r in staging["targetingRules"]] == ["beta"]


async def test_targeting_rules_of_an_environment_without_rules_or_unknown_are_empty(gql, project):
    await create_flag(gql, project.key, "checkout")
    for env in ("production", "staging", "nowhere"):
        data = await gql(RULES, {"p": project.key, "key": "checkout", "env": env})
        assert data["flag"]["targetingRules"] == []


async def test_targeting_rules_reflect_the_latest_replacement(gql, project):
    beta = await create_segment(gql, project.key, "beta")
    staff = await create_segment(gql, project.key, "staff")
    flag = await create_flag(gql, project.key, "checkout")
    await set_rules(gql, flag, "production", [{"segmentId": beta, "variationKey": "on"}])
    await set_rules(
        gql,
        flag,
        "production",
        [{"segmentId": staff, "variationKey": "on"}, {"segmentId": beta, "variationKey": "on"}],
    )
    data = await gql(RULES, {"p": project.key, "key": "checkout", "env": "production"})
    assert [r["segment"]["key"] for r in data["flag"]["targetingRules"]] == ["staff", "beta"]


async def test_several_flags_with_rules_in_one_request(gql, project):
    beta = await create_segment(gql, project.key, "beta")
    staff = await create_segment(gql, project.key, "staff")
    a = await create_flag(gql, project.key, "a")
    b = await create_flag(gql, project.key, "b")
    await set_rules(gql, a, "production", [{"segmentId": beta, "variationKey": "on"}])
    await set_rules(gql, b, "production", [{"segmentId": staff, "variationKey": "on"}])
    await set_rules(gql, b, "staging", [{"segmentId": beta, "variationKey": "on"}])
    data = await gql(
        """query($p: String!) {
          a: flag(projectKey: $p, key: "a") { targetingRules(environmentKey: "production") { segment { key } } }
          b: flag(projectKey: $p, key: "b") {
            prod: targetingRules(environmentKey: "production") { segment { key } }
            stag: targetingRules(environmentKey: "staging") { segment { key } }
          }
        }""",
        {"p": project.key},
    )
    assert data == {
        "a": {"targetingRules": [{"segment": {"key": "beta"}}]},
        "b": {"prod": [{"segment": {"key": "staff"}}], "stag": [{"segment": {"key": "beta"}}]},
    }


async def test_unknown_flag_is_null(gql, project):
    assert (await gql(RULES, {"p": project.key, "key": "nope", "env": "production"})) == {
        "flag": None
    }


async def test_another_projects_flags_are_invisible(gql, client, project, other_project):
    theirs = GraphQLClient(client, other_project.editor)
    their_flag = await create_flag(theirs, other_project.key, "checkout")
    await create_flag(gql, project.key, "mine")

    assert (await gql(RULES, {"p": other_project.key, "key": "checkout", "env": "production"})) == {
        "flag": None
    }
    listed = await flags_page(gql, other_project.key)
    assert listed["edges"] == [] and listed["totalCount"] == 0
    assert (await gql("query($id: ID!) { node(id: $id) { id } }", {"id": their_flag})) == {
        "node": None
    }
    assert keys(await flags_page(gql, project.key)) == ["mine"]
    # A flag key of theirs does not resolve in our project either.
    assert (await gql(RULES, {"p": project.key, "key": "checkout", "env": "production"})) == {
        "flag": None
    }
