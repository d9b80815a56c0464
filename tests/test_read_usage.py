"""Segment.usage: which live flags reference a segment, per environment, and what that costs.

Usage counts (flag, environment) pairs of non-archived flags; `filter.inUse` uses the same
definition. A page of segments with their usage, flags and environments costs a fixed
number of SQL statements, however many segments it holds (DESIGN §5).
"""

import asyncio

import pytest

from db import api_keys
from db.pool import connect
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

DELETE_SEGMENT = """
mutation($input: DeleteSegmentInput!) {
  deleteSegment(input: $input) { deletedSegmentId userErrors { code message } }
}
"""

USAGE = """
query($p: String!, $key: String!) {
  segment(projectKey: $p, key: $key) {
    usage {
      usageCount
      usedInFlags { ruleCount flag { id key name archived } environment { id key name } }
    }
  }
}
"""

PAGE_WITH_USAGE = """
query($p: String!, $first: Int!) {
  segments(projectKey: $p, first: $first, orderBy: {field: KEY}) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    nodes {
      key
      usage {
        usageCount
        usedInFlags { ruleCount flag { id key name } environment { key name } }
      }
    }
  }
}
"""


async def create_segment(gql, project_key: str, key: str, **fields) -> str:
    """The new segment's id (fields as CreateSegmentInput takes them)."""
    data = await gql(
        CREATE_SEGMENT, {"input": {"projectKey": project_key, "name": key, "key": key, **fields}}
    )
    assert data["createSegment"]["userErrors"] == []
    return data["createSegment"]["segment"]["id"]


async def create_flag(gql, project_key: str, key: str) -> str:
    data = await gql(
        CREATE_FLAG, {"input": {"projectKey": project_key, "key": key, "name": f"Flag {key}"}}
    )
    assert data["createFlag"]["userErrors"] == []
    return data["createFlag"]["flag"]["id"]


async def set_rules(gql, flag_id: str, environment: str, segment_ids: list[str]) -> None:
    rules = [{"segmentId": sid, "variationKey": "on"} for sid in segment_ids]
    data = await gql(
        SET_RULES, {"input": {"flagId": flag_id, "environmentKey": environment, "rules": rules}}
    )
    assert data["setTargetingRules"]["userErrors"] == []


async def archive(gql, flag_id: str) -> None:
    data = await gql(ARCHIVE_FLAG, {"input": {"flagId": flag_id}})
    assert data["archiveFlag"]["userErrors"] == []


async def usage_of(gql, project_key: str, key: str) -> dict:
    return (await gql(USAGE, {"p": project_key, "key": key}))["segment"]["usage"]


def pairs(usage: dict) -> list[tuple[str, str, int]]:
    return [
        (u["flag"]["key"], u["environment"]["key"], u["ruleCount"]) for u in usage["usedInFlags"]
    ]


async def test_unused_segment_has_empty_usage(gql, project):
    await create_segment(gql, project.key, "lonely")
    assert await usage_of(gql, project.key, "lonely") == {"usageCount": 0, "usedInFlags": []}


async def test_usage_lists_each_flag_and_environment_with_its_rule_count(gql, project):
    beta = await create_segment(gql, project.key, "beta")
    other = await create_segment(gql, project.key, "other")
    checkout = await create_flag(gql, project.key, "checkout")
    banner = await create_flag(gql, project.key, "banner")
    # beta twice in checkout/production (around another segment), once in checkout/staging,
    # once in banner/staging.
    await set_rules(gql, checkout, "production", [beta, other, beta])
    await set_rules(gql, checkout, "staging", [beta])
    await set_rules(gql, banner, "staging", [other, beta])
    await set_rules(gql, banner, "production", [other])

    usage = await usage_of(gql, project.key, "beta")

    assert usage["usageCount"] == 3
    # By flag key, then environment key.
    assert pairs(usage) == [
        ("banner", "staging", 1),
        ("checkout", "production", 2),
        ("checkout", "staging", 1),
    ]
    first = usage["usedInFlags"][0]
    assert first["flag"] == {
        "id": banner,
        "key": "banner",
        "name": "Flag banner",
        "archived": False,
    }
    assert first["environment"]["key"] == "staging"
    assert first["environment"]["name"] == "Staging"
    assert pairs(await usage_of(gql, project.key, "other")) == [
        ("banner", "production", 1),
        ("banner", "staging", 1),
        ("checkout", "production", 1),
    ]


async def test_usage_ids_of_flag_and_environment_resolve_with_node(gql, project):
    seg = await create_segment(gql, project.key, "beta")
    flag = await create_flag(gql, project.key, "checkout")
    await set_rules(gql, flag, "production", [seg])
    used = (await usage_of(gql, project.key, "beta"))["usedInFlags"][0]

    data = await gql(
        """query($f: ID!, $e: ID!) {
            f: node(id: $f) { ... on Flag { key } }
            e: node(id: $e) { ... on Environment { key } }
        }""",
        {"f": used["flag"]["id"], "e": used["environment"]["id"]},
    )
    assert data == {"f": {"key": "checkout"}, "e": {"key": "production"}}


async def test_archived_flags_do_not_count_as_usage(gql, project):
    seg = await create_segment(gql, project.key, "beta")
    live = await create_flag(gql, project.key, "live")
    old = await create_flag(gql, project.key, "old")
    await set_rules(gql, live, "production", [seg])
    await set_rules(gql, old, "production", [seg, seg])
    await set_rules(gql, old, "staging", [seg])
    assert (await usage_of(gql, project.key, "beta"))["usageCount"] == 3

    await archive(gql, old)

    usage = await usage_of(gql, project.key, "beta")
    assert usage["usageCount"] == 1
    assert pairs(usage) == [("live", "production", 1)]


async def test_replacing_targeting_rules_removes_the_usage(gql, project):
    seg = await create_segment(gql, project.key, "beta")
    flag = await create_flag(gql, project.key, "checkout")
    await set_rules(gql, flag, "production", [seg])

    await set_rules(gql, flag, "production", [])

    assert (await usage_of(gql, project.key, "beta"))["usageCount"] == 0


async def test_segment_used_only_by_archived_flags_is_unused_and_deletable(gql, project):
    seg = await create_segment(gql, project.key, "beta")
    flag = await create_flag(gql, project.key, "old")
    await set_rules(gql, flag, "production", [seg])
    await archive(gql, flag)

    data = await gql(
        """query($p: String!) { segments(projectKey: $p, filter: {inUse: false}) { nodes { key } } }""",
        {"p": project.key},
    )
    assert [n["key"] for n in data["segments"]["nodes"]] == ["beta"]
    deleted = await gql(DELETE_SEGMENT, {"input": {"id": seg}})
    assert deleted["deleteSegment"]["userErrors"] == []


IN_USE = """
query($p: String!, $inUse: Boolean) {
  segments(projectKey: $p, orderBy: {field: KEY}, filter: {inUse: $inUse}) {
    totalCount
    nodes { key usage { usageCount } }
  }
}
"""


async def test_in_use_filter_agrees_with_usage(gql, project):
    ids = {key: await create_segment(gql, project.key, key) for key in ("a", "b", "c", "d", "e")}
    live = await create_flag(gql, project.key, "live")
    old = await create_flag(gql, project.key, "old")
    await set_rules(gql, live, "production", [ids["a"], ids["a"]])
    await set_rules(gql, live, "staging", [ids["c"]])
    await set_rules(gql, old, "production", [ids["d"], ids["a"]])
    await archive(gql, old)
    # e is referenced by a live flag, then the reference is replaced away.
    await set_rules(gql, live, "staging", [ids["c"], ids["e"]])
    await set_rules(gql, live, "staging", [ids["c"]])

    used = (await gql(IN_USE, {"p": project.key, "inUse": True}))["segments"]
    unused = (await gql(IN_USE, {"p": project.key, "inUse": False}))["segments"]
    everything = (await gql(IN_USE, {"p": project.key, "inUse": None}))["segments"]

    assert [n["key"] for n in used["nodes"]] == ["a", "c"]
    assert used["totalCount"] == 2
    assert [n["key"] for n in unused["nodes"]] == ["b", "d", "e"]
    assert unused["totalCount"] == 3
    assert everything["totalCount"] == 5
    for node in everything["nodes"]:
        assert (node["usage"]["usageCount"] > 0) == (node["key"] in {"a", "c"})


async def test_usage_of_other_projects_flags_is_invisible(gql, client, project, other_project):
    theirs = GraphQLClient(client, other_project.editor)
    seg = await create_segment(theirs, other_project.key, "beta")
    flag = await create_flag(theirs, other_project.key, "checkout")
    await set_rules(theirs, flag, "production", [seg])
    await create_segment(gql, project.key, "beta")

    assert await usage_of(gql, project.key, "beta") == {"usageCount": 0, "usedInFlags": []}
    data = await gql(IN_USE, {"p": project.key, "inUse": True})
    assert data["segments"]["nodes"] == []


async def seed_used_segments(database_url: str, project_id: int, count: int) -> None:
    """`count` segments, each referenced by two flags in both environments, plus an
    archived flag referencing all of them."""
    conn = await connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                """
                INSERT INTO segments (project_id, key, name, salt)
                SELECT $1, 'seg' || lpad(i::text, 4, '0'), 'Segment ' || i, 'seg' || i
                FROM generate_series(1, $2) AS i
                """,
                project_id,
                count,
            )
            await conn.execute(
                """
                INSERT INTO flags (project_id, key, name, archived_at)
                VALUES ($1, 'flag-a', 'Flag A', NULL), ($1, 'flag-b', 'Flag B', NULL),
                       ($1, 'flag-old', 'Old', now())
                """,
                project_id,
            )
            await conn.execute(
                """
                INSERT INTO targeting_rules (project_id, flag_id, environment_id, order_index,
                                             kind, segment_id, variation_key)
                SELECT s.project_id, f.id, e.id,
                       row_number() OVER (PARTITION BY f.id, e.id ORDER BY s.id, copy) - 1,
                       'SEGMENT', s.id, 'on'
                FROM segments s
                JOIN flags f ON f.project_id = s.project_id
                JOIN environments e ON e.project_id = s.project_id
                CROSS JOIN generate_series(1, 2) AS copy
                WHERE s.project_id = $1
                """,
                project_id,
            )
    finally:
        await conn.close()


async def clear_seed(database_url: str, project_id: int) -> None:
    conn = await connect(database_url)
    try:
        for table in ("targeting_rules", "flags", "segments"):
            await conn.execute(f"DELETE FROM {table} WHERE project_id = $1", project_id)
    finally:
        await conn.close()


async def fresh_token(database_url: str, project_id: int) -> str:
    """A token the server has never seen, so the measured request pays its lookup."""
    conn = await connect(database_url)
    try:
        return await api_keys.create_api_key(conn, project_id, "viewer", "counting viewer")
    finally:
        await conn.close()


@pytest.fixture
async def warm_pool(app):
    """Every pool connection open and past asyncpg's one-time type introspection (it sends
    three extra statements the first time a connection binds an array parameter), as in a
    server that has run for a while: counts then measure the request alone."""
    pool = app.state.db.pool
    conns = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        for conn in conns:
            await conn.fetch("SELECT $1::bigint[], $2::text[]", [1], ["a"])
    finally:
        for conn in conns:
            await pool.release(conn)


async def statements_for(
    gql, statements, database_url, project, query, variables
) -> tuple[int, dict]:
    token = await fresh_token(database_url, project.id)
    async with statements.block() as s:
        data = await gql(query, variables, token=token)
    return s.count, data


ISSUE_PAGE = """
query($p: String!, $first: Int!) {
  segments(projectKey: $p, first: $first) {
    nodes {
      usage { usageCount usedInFlags { ruleCount flag { id key name } environment { key name } } }
    }
  }
}
"""

EXPECTED_USAGE = [
    ("flag-a", "production", 2),
    ("flag-a", "staging", 2),
    ("flag-b", "production", 2),
    ("flag-b", "staging", 2),
]


async def test_page_of_segments_with_usage_costs_a_fixed_number_of_statements(
    gql, project, database_url, statements, warm_pool
):
    await seed_used_segments(database_url, project.id, 100)
    counts = {}
    for size in (10, 100):
        counts[size], data = await statements_for(
            gql, statements, database_url, project, ISSUE_PAGE, {"p": project.key, "first": size}
        )
        nodes = data["segments"]["nodes"]
        assert len(nodes) == size
        for node in nodes:
            assert node["usage"]["usageCount"] == 4
            assert [
                (u["flag"]["key"], u["environment"]["key"], u["ruleCount"])
                for u in node["usage"]["usedInFlags"]
            ] == EXPECTED_USAGE
    print("statements per request (token lookup included):", counts)
    assert counts[10] == counts[100]
    assert counts[100] <= 6


async def test_page_info_and_total_count_do_not_make_cost_depend_on_page_size(
    gql, project, database_url, statements, warm_pool
):
    await seed_used_segments(database_url, project.id, 100)
    counts = {}
    for size in (10, 100):
        counts[size], data = await statements_for(
            gql,
            statements,
            database_url,
            project,
            PAGE_WITH_USAGE,
            {"p": project.key, "first": size},
        )
        assert data["segments"]["totalCount"] == 100
        assert data["segments"]["pageInfo"]["hasNextPage"] is (size < 100)
        assert data["segments"]["pageInfo"]["hasPreviousPage"] is False
        assert all(n["usage"]["usageCount"] == 4 for n in data["segments"]["nodes"])
    print("statements per request with totalCount and pageInfo:", counts)
    assert counts[10] == counts[100]


RULE_SEGMENTS = """
query($p: String!) {
  flag(projectKey: $p, key: "flag-a") {
    targetingRules(environmentKey: "production") {
      segment { key project { key } usage { usageCount usedInFlags { flag { key } environment { key } } } }
    }
  }
}
"""


async def test_segments_of_targeting_rules_load_in_batches(
    gql, project, database_url, statements, warm_pool
):
    counts = {}
    for size in (3, 50):
        await seed_used_segments(database_url, project.id, size)
        counts[size], data = await statements_for(
            gql, statements, database_url, project, RULE_SEGMENTS, {"p": project.key}
        )
        rules = data["flag"]["targetingRules"]
        assert len(rules) == 2 * size
        assert all(r["segment"]["project"]["key"] == project.key for r in rules)
        assert all(r["segment"]["usage"]["usageCount"] == 4 for r in rules)
        await clear_seed(database_url, project.id)
    print("statements for a flag's rules with segments:", counts)
    assert counts[3] == counts[50]


REFERENCE_PAGE = """
query($p: String!) {
  segments(projectKey: $p, first: 50, orderBy: {field: KEY}) {
    nodes {
      key
      usage {
        usageCount
        usedInFlags { flag { key } environment { key } }
        usedInSegments { key }
        indirectFlags { flag { key } environment { key } }
      }
    }
  }
}
"""


async def test_a_page_with_references_and_indirect_usage_costs_what_a_plain_page_costs(
    gql, project, other_project, client, database_url, statements, warm_pool
):
    """usedInSegments and indirectFlags are one batched statement each, however many
    segments reference each other and however many flags reach them."""
    other = GraphQLClient(client, other_project.editor)
    for i in range(50):
        await create_segment(other, other_project.key, f"plain-{i:02}")
    flag = await create_flag(gql, project.key, "through")
    tops = []
    for chain in range(10):  # ten chains c-0 → c-1 → … → c-4, the flag on every top
        following = None
        for depth in reversed(range(5)):
            rules = [{"segment": {"segmentKey": following}}] if following else []
            key = f"c{chain}-{depth}"
            top = await create_segment(gql, project.key, key, rules=rules)
            following = key
        tops.append(top)
    await set_rules(gql, flag, "production", tops)

    plain, _ = await statements_for(
        gql, statements, database_url, other_project, REFERENCE_PAGE, {"p": other_project.key}
    )
    linked, data = await statements_for(
        gql, statements, database_url, project, REFERENCE_PAGE, {"p": project.key}
    )
    nodes = {node["key"]: node["usage"] for node in data["segments"]["nodes"]}
    assert len(nodes) == 50
    assert nodes["c0-0"]["usedInFlags"] == [
        {"flag": {"key": "through"}, "environment": {"key": "production"}}
    ]
    assert nodes["c0-0"]["usedInSegments"] == []
    assert nodes["c0-4"]["usedInSegments"] == [{"key": "c0-3"}]
    assert nodes["c0-4"]["indirectFlags"] == [
        {"flag": {"key": "through"}, "environment": {"key": "production"}}
    ]
    print("statements for 50 segments with usage, plain and with references:", plain, linked)
    assert linked == plain


async def test_the_benchmarked_list_page_costs_three_statements_two_with_a_cached_token(
    gql, app, project, database_url, statements, warm_pool
):
    """The bench's list scenario (every field, rules, usage): the token lookup, the page and
    one usage statement; once the token is cached, the page and the usage only."""
    from bench.scenarios import LIST

    await seed_used_segments(database_url, project.id, 60)
    authenticator = app.state.authenticator
    for _ in range(100):  # the token cache is on once the key-change listener is up
        if authenticator.caching:
            break
        await asyncio.sleep(0.05)
    assert authenticator.caching
    variables = {"projectKey": project.key, "first": 50}
    first, data = await statements_for(gql, statements, database_url, project, LIST, variables)
    assert len(data["segments"]["nodes"]) == 50
    assert all(n["usage"]["usageCount"] == 4 for n in data["segments"]["nodes"])
    token = await fresh_token(database_url, project.id)
    await gql(LIST, variables, token=token)
    async with statements.block() as cached:
        again = await gql(LIST, variables, token=token)
    assert again == data
    assert (first, cached.count) == (3, 2)
