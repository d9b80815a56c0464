"""Who is in a segment (DESIGN §11): Segment.memberCount, Segment.members and previewSegment
over GraphQL. Membership is evaluation: a stored profile is a member exactly when
evaluateSegment on its context matches."""

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from api.settings import Settings
from db.pool import connect
from tests.conftest import GraphQLClient
from tests.mutations.helpers import CREATE_SEGMENT, condition, delete_segment, group, new_segment

pytestmark = pytest.mark.asyncio(loop_scope="module")

UPSERT = "mutation($i: UpsertProfilesInput!) { upsertProfiles(input: $i) { upsertedCount userErrors { field code } } }"
DELETE = "mutation($i: DeleteProfilesInput!) { deleteProfiles(input: $i) { deletedCount } }"
MEMBERS = """
query($p: String!, $k: String!, $first: Int, $after: String) {
  segment(projectKey: $p, key: $k) {
    memberCount
    members(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id targetingKey attributes } }
      nodes { targetingKey }
    }
  }
}"""
PREVIEW = """
query($i: PreviewSegmentInput!) {
  previewSegment(input: $i) {
    memberCount
    sample { targetingKey attributes }
    userErrors { field code message }
  }
}"""

PEOPLE = {
    "ada": {"country": "DE", "plan": "pro", "seats": 12, "user": {"role": "admin"}},
    "bob": {"country": "AT", "plan": "free", "seats": "3", "user": {"role": "member"}},
    "cyd": {"country": "FR", "plan": "pro", "seats": 40, "beta": "True"},
    "dee": {"country": "DE", "plan": "enterprise", "seats": 250, "beta": True},
    "eve": {"country": "US", "plan": "pro", "email": "eve@example.com", "app_version": "v2.1.0"},
    "fay": {"country": "CH", "plan": "free", "app_version": "1.9.9", "tags": ["partner", "eu"]},
    "gus": {},
}


async def upsert(
    gql: GraphQLClient, project_key: str, profiles: dict[str, Any], token: str | None = None
) -> None:
    entries = [
        {"targetingKey": key, "attributes": attributes} for key, attributes in profiles.items()
    ]
    data = await gql(UPSERT, {"i": {"projectKey": project_key, "profiles": entries}}, token=token)
    assert data["upsertProfiles"]["userErrors"] == []


async def members(gql: GraphQLClient, project_key: str, key: str, **page: Any) -> dict:
    data = await gql(MEMBERS, {"p": project_key, "k": key, **page})
    return data["segment"]


def keys(connection: dict) -> list[str]:
    return [node["targetingKey"] for node in connection["nodes"]]


async def preview(
    gql: GraphQLClient, project_key: str, token: str | None = None, **definition: Any
) -> dict:
    data = await gql(PREVIEW, {"i": {"projectKey": project_key, **definition}}, token=token)
    return data["previewSegment"]


async def test_member_count_and_members_are_the_stored_profiles_the_rules_match(gql, project):
    await upsert(gql, project.key, PEOPLE)
    await new_segment(
        gql,
        project.key,
        name="DACH pro",
        key="dach_pro",
        rules=[condition("country", "IN", ["DE", "AT", "CH"]), condition("plan", "NEQ", "free")],
    )
    segment = await members(gql, project.key, "dach_pro")
    assert segment["memberCount"] == 2
    assert segment["members"]["totalCount"] == 2
    assert keys(segment["members"]) == ["ada", "dee"]
    assert segment["members"]["edges"][0]["node"]["attributes"] == PEOPLE["ada"]
    assert segment["members"]["pageInfo"]["hasNextPage"] is False
    assert segment["members"]["pageInfo"]["hasPreviousPage"] is False


@pytest.mark.parametrize(
    "logical_op,rules,force,included,excluded,expected",
    [
        # Coercion as in evaluation: "3" is the number 3, "True" the boolean true.
        ("AND", [condition("seats", "LTE", 12)], False, [], [], ["ada", "bob"]),
        ("AND", [condition("beta", "EQ", True)], False, [], [], ["cyd", "dee"]),
        # A missing attribute: NEQ and NIN hold, EQ and IN do not.
        (
            "AND",
            [condition("user.role", "NEQ", "admin")],
            False,
            [],
            [],
            ["bob", "cyd", "dee", "eve", "fay", "gus"],
        ),
        (
            "OR",
            [
                condition("email", "ENDS_WITH", "@example.com"),
                condition("tags", "CONTAINS", "partner"),
            ],
            False,
            [],
            [],
            ["eve", "fay"],
        ),
        ("NOT", [condition("plan", "EQ", "pro")], False, [], [], ["bob", "dee", "fay", "gus"]),
        ("AND", [condition("app_version", "SEMVER_GT", "2.0.0")], False, [], [], ["eve"]),
        ("AND", [condition("country", "REGEX", "^(D|F)")], False, [], [], ["ada", "cyd", "dee"]),
        (
            "AND",
            [group(condition("plan", "EQ", "pro"), condition("seats", "GT", 20), logical_op="AND")],
            False,
            [],
            [],
            ["cyd"],
        ),
        # Targets: included stored profiles are in, excluded ones out; unknown keys add nobody.
        (
            "AND",
            [condition("plan", "EQ", "pro")],
            False,
            ["gus", "nobody"],
            ["ada"],
            ["cyd", "eve", "gus"],
        ),
        # No rules: only included targets, or everyone when forced.
        ("AND", [], False, ["bob"], [], ["bob"]),
        ("OR", [], True, [], ["ada"], ["ada", "bob", "cyd", "dee", "eve", "fay", "gus"]),
    ],
)
async def test_membership_is_exactly_what_evaluate_segment_says(
    gql, project, logical_op, rules, force, included, excluded, expected
):
    await upsert(gql, project.key, PEOPLE)
    await new_segment(
        gql,
        project.key,
        name="Case",
        key="case",
        logicalOp=logical_op,
        rules=rules,
        force=force,
        included=included,
        excluded=excluded,
    )
    evaluated = await gql(
        "query($p: String!, "
        + ", ".join(f"$c{i}: JSON!" for i in range(len(PEOPLE)))
        + ") { "
        + " ".join(
            f'e{i}: evaluateSegment(projectKey: $p, key: "case", context: $c{i}) {{ matched }}'
            for i in range(len(PEOPLE))
        )
        + " }",
        {
            "p": project.key,
            **{
                f"c{i}": {**attributes, "targetingKey": key}
                for i, (key, attributes) in enumerate(PEOPLE.items())
            },
        },
    )
    by_evaluation = [key for i, key in enumerate(PEOPLE) if evaluated[f"e{i}"]["matched"]]
    assert by_evaluation == expected

    segment = await members(gql, project.key, "case")
    assert keys(segment["members"]) == expected
    assert segment["memberCount"] == len(expected)
    shown = await preview(
        gql,
        project.key,
        logicalOp=logical_op,
        rules=rules,
        force=force,
        included=included,
        excluded=excluded,
        sampleSize=100,
    )
    assert shown["userErrors"] == []
    assert [p["targetingKey"] for p in shown["sample"]] == expected
    assert shown["memberCount"] == len(expected)


async def test_members_change_as_soon_as_profiles_do(gql, project):
    await upsert(gql, project.key, PEOPLE)
    await new_segment(
        gql, project.key, name="Pro", key="pro", rules=[condition("plan", "EQ", "pro")]
    )
    assert keys((await members(gql, project.key, "pro"))["members"]) == ["ada", "cyd", "eve"]

    await upsert(
        gql, project.key, {"ada": {"plan": "free"}, "bob": {"plan": "pro"}, "zed": {"plan": "pro"}}
    )
    await gql(DELETE, {"i": {"projectKey": project.key, "targetingKeys": ["cyd"]}})

    segment = await members(gql, project.key, "pro")
    assert keys(segment["members"]) == ["bob", "eve", "zed"]
    assert segment["memberCount"] == 3


async def test_member_pages_continue_after_their_cursor_while_profiles_are_added(gql, project):
    await upsert(
        gql,
        project.key,
        {key: {"plan": "pro"} for key in ("b", "d", "f", "h")} | {"c": {"plan": "free"}},
    )
    await new_segment(
        gql, project.key, name="Pro", key="pro", rules=[condition("plan", "EQ", "pro")]
    )
    first = (await members(gql, project.key, "pro", first=2))["members"]
    assert keys(first) == ["b", "d"]
    assert first["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": first["edges"][0]["cursor"],
        "endCursor": first["edges"][1]["cursor"],
    }

    # New members before the cursor do not shift the next page; new ones after it appear in order.
    await upsert(
        gql, project.key, {"a": {"plan": "pro"}, "e": {"plan": "pro"}, "g": {"plan": "free"}}
    )
    second = (
        await members(gql, project.key, "pro", first=2, after=first["pageInfo"]["endCursor"])
    )["members"]
    assert keys(second) == ["e", "f"]
    assert second["pageInfo"]["hasNextPage"] is True
    assert second["pageInfo"]["hasPreviousPage"] is True
    assert second["totalCount"] == 6

    last = (await members(gql, project.key, "pro", first=2, after=second["pageInfo"]["endCursor"]))[
        "members"
    ]
    assert keys(last) == ["h"]
    assert last["pageInfo"]["hasNextPage"] is False
    # Past the end: an empty page that still knows members precede it.
    beyond = (await members(gql, project.key, "pro", first=2, after=last["pageInfo"]["endCursor"]))[
        "members"
    ]
    assert beyond["nodes"] == [] and beyond["pageInfo"]["hasPreviousPage"] is True


async def test_a_cursor_of_a_profile_that_left_the_segment_still_continues_the_list(gql, project):
    await upsert(gql, project.key, {key: {"plan": "pro"} for key in ("a", "b", "c", "d")})
    await new_segment(
        gql, project.key, name="Pro", key="pro", rules=[condition("plan", "EQ", "pro")]
    )
    first = (await members(gql, project.key, "pro", first=2))["members"]
    await upsert(gql, project.key, {"b": {"plan": "free"}})
    rest = (await members(gql, project.key, "pro", first=2, after=first["pageInfo"]["endCursor"]))[
        "members"
    ]
    assert keys(rest) == ["c", "d"]


async def test_members_page_size_defaults_to_50_and_is_checked(gql, project):
    await upsert(gql, project.key, {f"u{i:03}": {"plan": "pro"} for i in range(60)})
    await new_segment(
        gql, project.key, name="Pro", key="pro", rules=[condition("plan", "EQ", "pro")]
    )
    assert len((await members(gql, project.key, "pro"))["members"]["nodes"]) == 50
    for page in ({"first": 101}, {"first": -1}, {"after": "bogus"}):
        errors = await gql.errors(MEMBERS, {"p": project.key, "k": "pro", **page})
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_deleted_segment_still_counts_its_members_as_stored(gql, project):
    await upsert(gql, project.key, PEOPLE)
    segment = await new_segment(
        gql, project.key, name="Pro", key="pro", rules=[condition("plan", "EQ", "pro")]
    )
    assert (await delete_segment(gql, segment["id"]))["userErrors"] == []
    data = await gql(
        "query($p: String!) { segments(projectKey: $p, filter: {includeDeleted: true}) "
        "{ nodes { deleted memberCount members { nodes { targetingKey } } } } }",
        {"p": project.key},
    )
    assert data["segments"]["nodes"] == [
        {
            "deleted": True,
            "memberCount": 3,
            "members": {"nodes": [{"targetingKey": k} for k in ("ada", "cyd", "eve")]},
        }
    ]


async def test_members_of_a_page_of_segments_are_counted_per_segment(gql, project):
    await upsert(gql, project.key, PEOPLE)
    await new_segment(
        gql, project.key, name="A pro", key="pro", rules=[condition("plan", "EQ", "pro")]
    )
    await new_segment(
        gql, project.key, name="B free", key="free", rules=[condition("plan", "EQ", "free")]
    )
    await new_segment(
        gql, project.key, name="C pro again", key="pro2", rules=[condition("plan", "EQ", "pro")]
    )
    data = await gql(
        "query($p: String!) { segments(projectKey: $p) { nodes { key memberCount members(first: 1) { totalCount nodes { targetingKey } } } } }",
        {"p": project.key},
    )
    assert data["segments"]["nodes"] == [
        {
            "key": "pro",
            "memberCount": 3,
            "members": {"totalCount": 3, "nodes": [{"targetingKey": "ada"}]},
        },
        {
            "key": "free",
            "memberCount": 2,
            "members": {"totalCount": 2, "nodes": [{"targetingKey": "bob"}]},
        },
        {
            "key": "pro2",
            "memberCount": 3,
            "members": {"totalCount": 3, "nodes": [{"targetingKey": "ada"}]},
        },
    ]


async def test_preview_counts_and_samples_the_first_members_by_key(gql, project):
    await upsert(gql, project.key, PEOPLE)
    rules = [condition("country", "IN", ["DE", "AT", "FR", "CH"])]
    shown = await preview(gql, project.key, rules=rules, sampleSize=2)
    assert shown == {
        "memberCount": 5,
        "sample": [
            {"targetingKey": "ada", "attributes": PEOPLE["ada"]},
            {"targetingKey": "bob", "attributes": PEOPLE["bob"]},
        ],
        "userErrors": [],
    }
    default = await preview(gql, project.key, rules=rules)
    assert [p["targetingKey"] for p in default["sample"]] == ["ada", "bob", "cyd", "dee", "fay"]
    none = await preview(gql, project.key, rules=rules, sampleSize=0)
    assert none == {"memberCount": 5, "sample": [], "userErrors": []}
    # Nothing was saved.
    data = await gql(
        "query($p: String!) { segments(projectKey: $p) { totalCount } }", {"p": project.key}
    )
    assert data["segments"]["totalCount"] == 0


async def test_a_viewer_may_preview(gql, project):
    await upsert(gql, project.key, PEOPLE)
    shown = await preview(
        gql, project.key, token=project.viewer, rules=[condition("plan", "EQ", "free")]
    )
    assert shown["memberCount"] == 2


async def test_preview_validates_the_definition_like_create_segment(gql, project):
    await upsert(gql, project.key, PEOPLE)
    rules = [
        condition("plan", "EQ", "pro"),
        condition("seats", "GT", "many"),
        group(condition("", "EXISTS")),
        {"condition": {"attribute": "x", "operator": "EQ", "value": 1}, "group": {"rules": []}},
        condition("name", "REGEX", "(?<=x)y"),
    ]
    shown = await preview(gql, project.key, rules=rules, included=[""], sampleSize=101)
    assert shown["memberCount"] is None
    assert shown["sample"] == []
    assert [(tuple(e["field"]), e["code"]) for e in shown["userErrors"]] == [
        (("input", "rules", "1", "condition", "value"), "INVALID_RULE"),
        (("input", "rules", "2", "group", "rules", "0", "condition", "attribute"), "INVALID_RULE"),
        (("input", "rules", "3"), "INVALID_RULE"),
        (("input", "rules", "4", "condition", "value"), "INVALID_RULE"),
        (("input", "included", "0"), "INVALID_INPUT"),
        (("input", "sampleSize"), "INVALID_INPUT"),
    ]
    created = await gql(
        CREATE_SEGMENT,
        {"i": {"projectKey": project.key, "name": "X", "rules": rules, "included": [""]}},
    )
    assert [e["field"] for e in created["createSegment"]["userErrors"]] == [
        e["field"] for e in shown["userErrors"][:-1]
    ]


async def test_preview_enforces_the_condition_limit_and_sample_size_bounds(gql, project):
    too_many = await preview(gql, project.key, rules=[condition("n", "EQ", i) for i in range(51)])
    assert [(tuple(e["field"]), e["code"]) for e in too_many["userErrors"]] == [
        (("input", "rules"), "LIMIT_EXCEEDED")
    ]
    negative = await preview(gql, project.key, sampleSize=-1)
    assert [(tuple(e["field"]), e["code"]) for e in negative["userErrors"]] == [
        (("input", "sampleSize"), "INVALID_INPUT")
    ]


async def test_preview_of_an_unknown_project_is_not_found(gql, project):
    shown = await preview(gql, "no-such-project", force=True)
    assert shown == {
        "memberCount": None,
        "sample": [],
        "userErrors": [
            {"field": ["input", "projectKey"], "code": "NOT_FOUND", "message": "No such project."}
        ],
    }


async def test_members_are_only_the_segments_own_projects_profiles(gql, project, other_project):
    await upsert(gql, project.key, {"mine": {"plan": "pro"}})
    await upsert(
        gql,
        other_project.key,
        {"theirs": {"plan": "pro"}, "also-theirs": {"plan": "pro"}},
        token=other_project.editor,
    )
    await new_segment(
        gql, project.key, name="Pro", key="pro", rules=[condition("plan", "EQ", "pro")], force=False
    )
    segment = await members(gql, project.key, "pro")
    assert keys(segment["members"]) == ["mine"] and segment["memberCount"] == 1
    shown = await preview(gql, project.key, force=True)
    assert shown["memberCount"] == 1 and [p["targetingKey"] for p in shown["sample"]] == ["mine"]


# A count that outlives the statement timeout fails with a typed error, promptly.

SLOW_PROFILES = 300_000


async def _store_slow_profiles(database_url: str, project_id: int) -> None:
    conn = await connect(database_url)
    try:
        await conn.execute(
            """
            INSERT INTO profiles (project_id, targeting_key, attributes, context)
            SELECT $1, 'p' || i, jsonb_build_object('n', i), jsonb_build_object('n', i, 'targetingKey', 'p' || i)
            FROM generate_series(1, $2) AS i
            """,
            project_id,
            SLOW_PROFILES,
        )
    finally:
        await conn.close()


async def _app_client(
    database_url: str, token: str, statement_timeout_ms: int
) -> AsyncIterator[GraphQLClient]:
    app = create_app(
        Settings(
            database_url=database_url,
            pool_min_size=1,
            pool_max_size=4,
            statement_timeout_ms=statement_timeout_ms,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield GraphQLClient(http, token)


@pytest_asyncio.fixture(loop_scope="module")
async def impatient_gql(shared, project) -> AsyncIterator[GraphQLClient]:
    await _store_slow_profiles(shared.database_url, project.id)
    async for client in _app_client(shared.database_url, project.editor, statement_timeout_ms=30):
        yield client


async def test_a_count_beyond_the_statement_timeout_fails_with_query_timeout(
    impatient_gql, project
):
    rules = [condition("n", "GTE", 0), condition("n", "LT", SLOW_PROFILES * 2)]
    started = time.monotonic()
    response = await impatient_gql.raw(
        PREVIEW, {"i": {"projectKey": project.key, "rules": rules, "sampleSize": 0}}
    )
    elapsed = time.monotonic() - started
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TIMEOUT"]
    assert elapsed < 2, "the count was not cut off by the statement timeout"
    # The cancelled work left every pooled connection usable.
    for _ in range(6):
        data = await impatient_gql(
            "query($p: String!) { profiles(projectKey: $p, first: 1) { nodes { targetingKey } } }",
            {"p": project.key},
        )
        assert data["profiles"]["nodes"] == [{"targetingKey": "p1"}]


# All member work of one request shares one budget (the statement timeout): many slow counts
# cannot hold a request and its connection for one timeout each.

BUDGET_MS = 400
SLOW_SEGMENTS = 20
SEGMENT_COUNTS = (
    "query($p: String!) { segments(projectKey: $p, first: 100) { nodes { key memberCount } } }"
)


@pytest_asyncio.fixture(loop_scope="module")
async def budgeted_gql(shared, project, gql) -> AsyncIterator[GraphQLClient]:
    await _store_slow_profiles(shared.database_url, project.id)
    for n in range(SLOW_SEGMENTS):
        # Distinct definitions: each is a count of its own, none answered from the cache.
        rules = [condition("n", "GTE", n), condition("n", "LT", SLOW_PROFILES * 2)]
        await new_segment(gql, project.key, name=f"Slow {n}", key=f"slow-{n}", rules=rules)
    async for client in _app_client(
        shared.database_url, project.viewer, statement_timeout_ms=BUDGET_MS
    ):
        yield client


async def test_many_slow_member_counts_share_one_budget_per_request(budgeted_gql, project):
    started = time.monotonic()
    response = await budgeted_gql.raw(SEGMENT_COUNTS, {"p": project.key})
    elapsed = time.monotonic() - started
    body = response.json()
    # About one budget in all. Each count here takes ~0.2 s on its own, under the budget, so
    # with a budget per count the request would take ~4 s and succeed.
    assert elapsed < 5 * BUDGET_MS / 1000, f"{elapsed:.2f} s for {SLOW_SEGMENTS} counts"
    # The counts left when the budget ran out fail with the statement timeout's error.
    assert body.get("errors"), "the counts all fit in one budget: make them slower"
    assert {e["extensions"]["code"] for e in body["errors"]} == {"QUERY_TIMEOUT"}, body["errors"]
    # The next request gets a budget of its own, and its connection is usable.
    data = await budgeted_gql(
        "query($p: String!) { profiles(projectKey: $p, first: 1) { nodes { targetingKey } } }",
        {"p": project.key},
    )
    assert data["profiles"]["nodes"] == [{"targetingKey": "p1"}]
