"""Big (unbounded) segments and updateSegmentTargets for both kinds of segment (DESIGN §13)."""

from typing import Any

import pytest

from schema.ids import encode_id
from tests.mutations.helpers import (
    create_segment,
    errors_of,
    history,
    new_segment,
    sql_fetch,
    state,
    update_segment,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

BIG = """
    id key version updatedAt unbounded generation includedCount excludedCount included excluded
"""
CREATE = f"""
mutation($i: CreateSegmentInput!) {{
  createSegment(input: $i) {{ segment {{ {BIG} }} userErrors {{ field code message }} }}
}}"""
UPDATE_TARGETS = f"""
mutation($i: UpdateSegmentTargetsInput!) {{
  updateSegmentTargets(input: $i) {{
    segment {{ {BIG} }}
    addedCount removedCount
    userErrors {{ field code message }}
  }}
}}"""
TARGETS = """
query($id: ID!, $kind: TargetKind!, $first: Int, $after: String, $search: String) {
  node(id: $id) {
    ... on Segment {
      targets(kind: $kind, first: $first, after: $after, search: $search) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage endCursor }
        edges { cursor node { targetingKey addedAt } }
      }
    }
  }
}"""
LIST_BIG = """
query($p: String!, $big: Boolean) {
  segments(projectKey: $p, filter: {unbounded: $big}, orderBy: {field: KEY}) { nodes { key } }
}"""


async def new_big(gql: Any, project_key: str, name: str = "Customers") -> dict:
    data = await gql(CREATE, {"i": {"projectKey": project_key, "name": name, "unbounded": True}})
    assert data["createSegment"]["userErrors"] == []
    return data["createSegment"]["segment"]


async def update_targets(gql: Any, segment_id: str, **lists: Any) -> dict:
    data = await gql(UPDATE_TARGETS, {"i": {"segmentId": segment_id, **lists}})
    return data["updateSegmentTargets"]


async def all_targets(gql: Any, segment_id: str, kind: str, **args: Any) -> list[str]:
    keys: list[str] = []
    after = None
    while True:
        data = await gql(TARGETS, {"id": segment_id, "kind": kind, "after": after, **args})
        page = data["node"]["targets"]
        keys += [edge["node"]["targetingKey"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return keys
        after = page["pageInfo"]["endCursor"]


async def test_create_big_segment_reads_as_unbounded_with_empty_lists(gql, project):
    big = await new_big(gql, project.key)
    assert big["unbounded"] is True
    assert (big["generation"], big["includedCount"], big["excludedCount"]) == (0, 0, 0)
    assert (big["included"], big["excluded"]) == ([], [])
    plain = await new_segment(gql, project.key, name="Plain")
    assert [
        n["key"]
        for n in (await gql(LIST_BIG, {"p": project.key, "big": True}))["segments"]["nodes"]
    ] == ["customers"]
    listed = await gql(LIST_BIG, {"p": project.key, "big": False})
    assert [n["key"] for n in listed["segments"]["nodes"]] == [plain["key"]]


async def test_big_segment_refuses_included_and_excluded_fields(gql, project):
    before = await state(gql, project.key)
    payload = (
        await gql(
            CREATE,
            {
                "i": {
                    "projectKey": project.key,
                    "name": "Big",
                    "unbounded": True,
                    "included": ["u1"],
                    "excluded": ["u2"],
                }
            },
        )
    )["createSegment"]
    assert errors_of(payload) == [
        (("input", "included"), "INVALID_INPUT"),
        (("input", "excluded"), "INVALID_INPUT"),
    ]
    assert "updateSegmentTargets" in payload["userErrors"][0]["message"]
    assert await state(gql, project.key) == before
    big = await new_big(gql, project.key)
    before = await state(gql, project.key)
    payload = await update_segment(gql, big["id"], included=["u1"])
    assert errors_of(payload) == [(("input", "included"), "INVALID_INPUT")]
    assert await state(gql, project.key) == before


async def test_update_targets_of_big_segment_is_data_not_a_version(gql, project, database_url):
    big = await new_big(gql, project.key)
    payload = await update_targets(
        gql, big["id"], addIncluded=["u3", "u1", "u2", "u1"], addExcluded=["x1"]
    )
    assert payload["userErrors"] == []
    assert (payload["addedCount"], payload["removedCount"]) == (4, 0)
    segment = payload["segment"]
    assert (segment["includedCount"], segment["excludedCount"]) == (3, 1)
    assert (segment["version"], segment["updatedAt"]) == (big["version"], big["updatedAt"])
    assert (segment["included"], segment["excluded"], segment["generation"]) == ([], [], 0)
    # Adding a key already there and removing one that is not change nothing.
    payload = await update_targets(
        gql, big["id"], addIncluded=["u1"], removeIncluded=["u2", "nobody"]
    )
    assert (payload["addedCount"], payload["removedCount"]) == (0, 1)
    assert payload["segment"]["includedCount"] == 2
    assert await all_targets(gql, big["id"], "INCLUDED") == ["u1", "u3"]
    assert await all_targets(gql, big["id"], "EXCLUDED") == ["x1"]
    rows = await sql_fetch(
        database_url,
        "SELECT kind, targeting_key FROM segment_targets WHERE project_id = $1 ORDER BY 1, 2",
        project.id,
    )
    assert [tuple(row) for row in rows] == [
        ("excluded", "x1"),
        ("included", "u1"),
        ("included", "u3"),
    ]


async def test_update_targets_of_standard_segment_is_an_ordinary_write(gql, project):
    plain = await new_segment(gql, project.key, name="Plain", included=["a"], excluded=["z"])
    payload = await update_targets(
        gql, plain["id"], addIncluded=["b", "a"], removeExcluded=["z"], addExcluded=["y"]
    )
    assert payload["userErrors"] == []
    assert (payload["addedCount"], payload["removedCount"]) == (2, 1)
    segment = payload["segment"]
    assert (segment["included"], segment["excluded"]) == (["a", "b"], ["y"])
    assert (segment["includedCount"], segment["excludedCount"]) == (2, 1)
    assert segment["version"] == plain["version"] + 1
    assert await all_targets(gql, plain["id"], "INCLUDED") == ["a", "b"]
    assert await all_targets(gql, plain["id"], "INCLUDED", search="b") == ["b"]


async def test_update_targets_writes_one_audit_event_with_counts_and_a_sample(gql, project):
    big = await new_big(gql, project.key)
    keys = [f"user-{i:05d}" for i in range(10_000)]
    payload = await update_targets(gql, big["id"], addIncluded=keys)
    assert payload["addedCount"] == 10_000
    events = (await history(gql, big["id"]))["nodes"]
    assert [event["action"] for event in events] == ["UPDATED", "CREATED"]
    changes = {change["field"]: change for change in events[0]["changes"]}
    assert changes["includedCount"]["before"] == 0
    assert changes["includedCount"]["after"] == 10_000
    added = changes["includedAdded"]["after"]
    assert added["count"] == 10_000
    assert 0 < len(added["sample"]) <= 100
    assert set(added["sample"]) <= set(keys)


@pytest.mark.parametrize(
    "lists, expected",
    [
        ({}, [(("input",), "INVALID_INPUT")]),
        ({"addIncluded": [f"k{i}" for i in range(10_001)]}, [(("input",), "LIMIT_EXCEEDED")]),
        ({"addIncluded": ["ok", ""]}, [(("input", "addIncluded", "1"), "INVALID_INPUT")]),
        ({"addExcluded": ["x" * 257]}, [(("input", "addExcluded", "0"), "INVALID_INPUT")]),
        ({"addExcluded": ["a\x00b"]}, [(("input", "addExcluded", "0"), "INVALID_INPUT")]),
        (
            {"addIncluded": ["a", "b"], "removeIncluded": ["b"]},
            [(("input", "removeIncluded", "0"), "INVALID_INPUT")],
        ),
    ],
)
async def test_bad_target_updates_change_nothing(gql, project, lists, expected):
    big = await new_big(gql, project.key)
    await update_targets(gql, big["id"], addIncluded=["keep"])
    before = await state(gql, project.key)
    payload = await update_targets(gql, big["id"], **lists)
    assert errors_of(payload) == expected
    assert payload["segment"] is None
    assert await state(gql, project.key) == before
    assert await all_targets(gql, big["id"], "INCLUDED") == ["keep"]


async def test_moving_a_key_between_lists_is_allowed(gql, project):
    big = await new_big(gql, project.key)
    await update_targets(gql, big["id"], addIncluded=["u1"])
    payload = await update_targets(gql, big["id"], removeIncluded=["u1"], addExcluded=["u1"])
    assert payload["userErrors"] == []
    assert (payload["segment"]["includedCount"], payload["segment"]["excludedCount"]) == (0, 1)


async def test_standard_segment_keeps_its_target_limit(gql, project):
    plain = await new_segment(
        gql, project.key, name="Plain", included=[f"a{i}" for i in range(9_000)]
    )
    payload = await update_targets(gql, plain["id"], addExcluded=[f"b{i}" for i in range(6_001)])
    assert errors_of(payload) == [(("input",), "LIMIT_EXCEEDED")]


async def test_update_targets_of_unknown_deleted_or_foreign_segment(gql, project, other_project):
    payload = await update_targets(gql, encode_id("Segment", 9_999_999), addIncluded=["u"])
    assert errors_of(payload) == [(("input", "segmentId"), "NOT_FOUND")]
    theirs = await gql(
        CREATE,
        {"i": {"projectKey": other_project.key, "name": "Theirs", "unbounded": True}},
        token=other_project.editor,
    )
    payload = await update_targets(gql, theirs["createSegment"]["segment"]["id"], addIncluded=["u"])
    assert errors_of(payload) == [(("input", "segmentId"), "NOT_FOUND")]


async def test_viewer_cannot_update_targets(gql, project):
    big = await new_big(gql, project.key)
    errors = await gql.errors(
        UPDATE_TARGETS, {"i": {"segmentId": big["id"], "addIncluded": ["u"]}}, token=project.viewer
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_targets_connection_pages_by_key_with_prefix_search(gql, project):
    big = await new_big(gql, project.key)
    keys = ["b", "a", "ab", "abc", "B", "ac", "a\U0010ffff", "a\U0010ffffz", "é"]
    await update_targets(gql, big["id"], addIncluded=keys)
    ordered = sorted(keys)  # code point order
    assert await all_targets(gql, big["id"], "INCLUDED", first=2) == ordered
    assert await all_targets(gql, big["id"], "INCLUDED", first=2, search="a") == [
        k for k in ordered if k.startswith("a")
    ]
    assert await all_targets(gql, big["id"], "INCLUDED", search="ab") == ["ab", "abc"]
    assert await all_targets(gql, big["id"], "INCLUDED", search="a\U0010ffff") == [
        "a\U0010ffff",
        "a\U0010ffffz",
    ]
    assert await all_targets(gql, big["id"], "INCLUDED", search="A") == []
    data = await gql(TARGETS, {"id": big["id"], "kind": "INCLUDED", "first": 3, "search": "a"})
    page = data["node"]["targets"]
    assert page["totalCount"] == 6
    data = await gql(TARGETS, {"id": big["id"], "kind": "INCLUDED", "first": 3})
    assert data["node"]["targets"]["totalCount"] == len(keys)
    second = await gql(
        TARGETS,
        {
            "id": big["id"],
            "kind": "INCLUDED",
            "first": 3,
            "after": data["node"]["targets"]["pageInfo"]["endCursor"],
        },
    )
    assert second["node"]["targets"]["pageInfo"]["hasPreviousPage"] is True


async def test_a_bad_targets_cursor_is_bad_user_input(gql, project):
    big = await new_big(gql, project.key)
    errors = await gql.errors(TARGETS, {"id": big["id"], "kind": "INCLUDED", "after": "nope"})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_create_payload_without_unbounded_is_a_standard_segment(gql, project, database_url):
    payload = await create_segment(gql, project.key, name="Plain")
    assert payload["userErrors"] == []
    rows = await sql_fetch(
        database_url, "SELECT unbounded FROM segments WHERE project_id = $1", project.id
    )
    assert [row["unbounded"] for row in rows] == [False]


async def test_targets_keep_needing_a_live_segment_row(gql, project, database_url):
    """sql/0014 checks the reference per statement instead of per row; it still holds."""
    import asyncpg

    from db.pool import connect

    big = await new_big(gql, project.key)
    await update_targets(gql, big["id"], addIncluded=["u1"])
    conn = await connect(database_url)
    try:
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="segment_targets"):
            await conn.execute(
                """
                INSERT INTO segment_targets (project_id, segment_id, kind, targeting_key)
                VALUES ($1, 987654321, 'included', 'x')
                """,
                project.id,
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="segment_targets"):
            async with conn.transaction():
                # Only the targets still point at the segment: its revisions go first.
                await conn.execute(
                    "DELETE FROM segment_revisions WHERE project_id = $1", project.id
                )
                await conn.execute(
                    "DELETE FROM segments WHERE project_id = $1 AND key = 'customers'", project.id
                )
    finally:
        await conn.close()
    assert await all_targets(gql, big["id"], "INCLUDED") == ["u1"]
