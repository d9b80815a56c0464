"""Segments that reference segments (DESIGN §12): resolution on write, storage by id, cycles,
chain depth, in-use protection, usage, and how Segment.rules shows a reference."""

import pytest

from tests.mutations.helpers import (
    archive_flag,
    condition,
    create_segment,
    delete_segment,
    errors_of,
    group,
    new_flag,
    new_segment,
    ref,
    restore_segment,
    set_rules,
    sql_fetch,
    state,
    update_segment,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


RULES_WITH_REFS = """
query($p: String!, $k: String!) {
  segment(projectKey: $p, key: $k) {
    rules {
      __typename
      ... on SegmentMatch { negate segment { key name } }
      ... on ConditionGroup { rules { __typename ... on SegmentMatch { negate segment { key } } } }
    }
  }
}
"""

USAGE = """
query($p: String!, $k: String!) {
  segment(projectKey: $p, key: $k) {
    usage {
      usageCount
      usedInFlags { ruleCount flag { key } environment { key } }
      usedInSegments { key }
      indirectFlags { ruleCount flag { key } environment { key } }
    }
  }
}
"""

DELETE_WITH_USAGE = """
mutation($i: DeleteSegmentInput!) {
  deleteSegment(input: $i) {
    deletedSegmentId
    userErrors { field code message }
    blockingUsage { usageCount usedInFlags { flag { key } } usedInSegments { key } }
  }
}
"""


async def _id(gql, project_key: str, key: str) -> str:
    data = await gql(
        "query($p: String!, $k: String!) { segment(projectKey: $p, key: $k) { id } }",
        {"p": project_key, "k": key},
    )
    return data["segment"]["id"]


async def _chain(gql, project_key: str, keys: list[str]) -> dict[str, dict]:
    """Segments keys[0] → keys[1] → … created from the end, each referencing the next."""
    made: dict[str, dict] = {}
    following: str | None = None
    for key in reversed(keys):
        rules = [ref(following)] if following else [condition("plan", "EQ", key)]
        made[key] = await new_segment(gql, project_key, name=key, key=key, rules=rules)
        following = key
    return made


async def test_a_reference_is_stored_by_id_and_shown_as_a_segment_match(gql, project, database_url):
    b = await new_segment(gql, project.key, name="B", key="b")
    await new_segment(
        gql, project.key, name="A", key="a", rules=[ref("b"), group(ref("b", negate=True))]
    )
    stored = await sql_fetch(
        database_url, "SELECT rules FROM segments WHERE project_id = $1 AND key = 'a'", project.id
    )
    b_id = (
        await sql_fetch(
            database_url, "SELECT id FROM segments WHERE key = 'b' AND project_id = $1", project.id
        )
    )[0]["id"]
    assert stored[0]["rules"] == [
        {"segmentId": b_id, "negate": False},
        {"logicalOp": "AND", "rules": [{"segmentId": b_id, "negate": True}]},
    ]
    # Renaming the referenced segment's key keeps the reference.
    assert (await update_segment(gql, b["id"], key="b-renamed"))["userErrors"] == []
    data = await gql(RULES_WITH_REFS, {"p": project.key, "k": "a"})
    assert data["segment"]["rules"] == [
        {
            "__typename": "SegmentMatch",
            "negate": False,
            "segment": {"key": "b-renamed", "name": "B"},
        },
        {
            "__typename": "ConditionGroup",
            "rules": [
                {"__typename": "SegmentMatch", "negate": True, "segment": {"key": "b-renamed"}}
            ],
        },
    ]


async def test_an_unknown_or_deleted_key_is_not_found_at_its_path(gql, project):
    gone = await new_segment(gql, project.key, name="Gone", key="gone")
    assert (await delete_segment(gql, gone["id"]))["userErrors"] == []
    before = await state(gql, project.key)
    payload = await create_segment(
        gql,
        project.key,
        name="A",
        rules=[condition("plan", "EQ", "pro"), ref("nope"), group(ref("gone"))],
    )
    assert errors_of(payload) == [
        (("input", "rules", "1", "segment", "segmentKey"), "NOT_FOUND"),
        (("input", "rules", "2", "group", "rules", "0", "segment", "segmentKey"), "NOT_FOUND"),
    ]
    assert await state(gql, project.key) == before


async def test_a_segment_of_another_project_cannot_be_referenced(gql, project, other_project):
    theirs = await create_segment(
        gql, other_project.key, token=other_project.editor, name="Theirs", key="theirs"
    )
    assert theirs["userErrors"] == []
    payload = await create_segment(gql, project.key, name="A", rules=[ref("theirs")])
    assert errors_of(payload) == [(("input", "rules", "0", "segment", "segmentKey"), "NOT_FOUND")]


async def test_a_rule_with_both_a_condition_and_a_segment_is_invalid(gql, project):
    await new_segment(gql, project.key, name="B", key="b")
    both = {**condition("plan", "EQ", "pro"), **ref("b")}
    payload = await create_segment(gql, project.key, name="A", rules=[both])
    assert errors_of(payload) == [(("input", "rules", "0"), "INVALID_RULE")]


async def test_a_reference_counts_as_one_condition(gql, project):
    await new_segment(gql, project.key, name="B", key="b")
    rules = [condition("n", "EQ", i) for i in range(49)]
    assert (await create_segment(gql, project.key, name="Fits", rules=[*rules, ref("b")]))[
        "userErrors"
    ] == []
    payload = await create_segment(
        gql, project.key, name="Too many", rules=[*rules, ref("b"), ref("b")]
    )
    assert errors_of(payload) == [(("input", "rules"), "LIMIT_EXCEEDED")]


async def test_a_self_reference_is_a_cycle(gql, project):
    a = await new_segment(gql, project.key, name="A", key="a")
    payload = await update_segment(gql, a["id"], rules=[ref("a")])
    assert errors_of(payload) == [
        (("input", "rules", "0", "segment", "segmentKey"), "SEGMENT_CYCLE")
    ]
    assert payload["userErrors"][0]["message"].endswith("a → a")


async def test_a_reference_closing_a_cycle_is_refused_naming_it(gql, project):
    made = await _chain(gql, project.key, ["a", "b", "c"])
    before = await state(gql, project.key)
    payload = await update_segment(gql, made["c"]["id"], rules=[condition("x", "EXISTS"), ref("a")])
    assert errors_of(payload) == [
        (("input", "rules", "1", "segment", "segmentKey"), "SEGMENT_CYCLE")
    ]
    assert payload["userErrors"][0]["message"].endswith("c → a → b → c")
    assert await state(gql, project.key) == before


async def test_a_chain_of_five_segments_is_allowed_and_six_is_not(gql, project):
    made = await _chain(gql, project.key, ["s1", "s2", "s3", "s4", "s5"])
    assert made["s1"]["rules"][0]["__typename"] == "SegmentMatch"
    # A sixth segment on top: the chain s0 → s1 → … → s5 holds 6.
    payload = await create_segment(gql, project.key, name="s0", rules=[ref("s1")])
    assert errors_of(payload) == [(("input", "rules"), "LIMIT_EXCEEDED")]
    # Nor may the end of the chain grow: s5 → t would make s1's chain 6 long.
    await new_segment(gql, project.key, name="t", key="t")
    payload = await update_segment(gql, made["s5"]["id"], rules=[ref("t")])
    assert errors_of(payload) == [(("input", "rules"), "LIMIT_EXCEEDED")]
    # In the middle neither: s1 → s2 → s3 → t2 → t3 → t4 would hold 6.
    await _chain(gql, project.key, ["t2", "t3", "t4"])
    payload = await update_segment(gql, made["s3"]["id"], rules=[ref("t2")])
    assert errors_of(payload) == [(("input", "rules"), "LIMIT_EXCEEDED")]
    # s1 → s2 → s3 → t3 → t4 holds exactly 5: allowed.
    assert (await update_segment(gql, made["s3"]["id"], rules=[ref("t3")]))["userErrors"] == []
    # A preview is a new segment: referencing s1 makes 6.
    preview = await gql(
        "query($i: PreviewSegmentInput!) { previewSegment(input: $i) { userErrors { field code } } }",
        {"i": {"projectKey": project.key, "rules": [ref("s1")]}},
    )
    assert preview["previewSegment"]["userErrors"] == [
        {"field": ["input", "rules"], "code": "LIMIT_EXCEEDED"}
    ]


async def test_a_referenced_segment_is_in_use_and_cannot_be_deleted(gql, project):
    await _chain(gql, project.key, ["a", "b"])
    b_id = await _id(gql, project.key, "b")
    data = await gql(DELETE_WITH_USAGE, {"i": {"id": b_id}})
    payload = data["deleteSegment"]
    assert errors_of(payload) == [(("input", "id"), "SEGMENT_IN_USE")]
    assert payload["blockingUsage"] == {
        "usageCount": 0,
        "usedInFlags": [],
        "usedInSegments": [{"key": "a"}],
    }
    listed = await gql(
        "query($p: String!, $u: Boolean) { segments(projectKey: $p, filter: {inUse: $u}) { nodes { key } } }",
        {"p": project.key, "u": True},
    )
    assert listed["segments"]["nodes"] == [{"key": "b"}]
    # Once the referencing segment is deleted, b is free.
    a_id = await _id(gql, project.key, "a")
    assert (await delete_segment(gql, a_id))["userErrors"] == []
    assert (await delete_segment(gql, b_id))["userErrors"] == []
    # a cannot come back while it references a deleted segment.
    assert errors_of(await restore_segment(gql, a_id)) == [(("input", "id"), "SEGMENT_DELETED")]
    assert (await restore_segment(gql, b_id))["userErrors"] == []
    assert (await restore_segment(gql, a_id))["userErrors"] == []


async def test_usage_lists_referencing_segments_and_flags_reaching_only_through_them(gql, project):
    await _chain(gql, project.key, ["top", "mid", "base"])
    direct = await new_flag(gql, project.key, "direct")
    through = await new_flag(gql, project.key, "through")
    custom = await new_flag(gql, project.key, "custom")
    archived = await new_flag(gql, project.key, "archived")
    base_id = await _id(gql, project.key, "base")
    top_id = await _id(gql, project.key, "top")
    # "direct" uses base itself and also reaches it through top: it is direct usage only.
    assert (
        await set_rules(
            gql,
            direct["id"],
            [
                {"segmentId": base_id, "variationKey": "on"},
                {"segmentId": top_id, "variationKey": "on"},
            ],
        )
    )["userErrors"] == []
    assert (await set_rules(gql, through["id"], [{"segmentId": top_id, "variationKey": "on"}]))[
        "userErrors"
    ] == []
    payload = await set_rules(
        gql, custom["id"], [{"rules": [ref("mid", negate=True)], "variationKey": "on"}], "staging"
    )
    assert payload["userErrors"] == []
    assert (await set_rules(gql, archived["id"], [{"segmentId": top_id, "variationKey": "on"}]))[
        "userErrors"
    ] == []
    assert (await archive_flag(gql, archived["id"]))["userErrors"] == []

    usage = (await gql(USAGE, {"p": project.key, "k": "base"}))["segment"]["usage"]
    assert usage == {
        "usageCount": 1,
        "usedInFlags": [
            {"ruleCount": 1, "flag": {"key": "direct"}, "environment": {"key": "production"}}
        ],
        "usedInSegments": [{"key": "mid"}],
        "indirectFlags": [
            {"ruleCount": 1, "flag": {"key": "custom"}, "environment": {"key": "staging"}},
            {"ruleCount": 1, "flag": {"key": "through"}, "environment": {"key": "production"}},
        ],
    }
    # A CUSTOM rule's reference is direct usage of mid, and keeps it from being deleted.
    usage = (await gql(USAGE, {"p": project.key, "k": "mid"}))["segment"]["usage"]
    assert usage["usedInFlags"] == [
        {"ruleCount": 1, "flag": {"key": "custom"}, "environment": {"key": "staging"}}
    ]
    assert usage["usageCount"] == 1
    # Replacing the flag's rules drops their references with them.
    assert (await set_rules(gql, custom["id"], [], "staging"))["userErrors"] == []
    usage = (await gql(USAGE, {"p": project.key, "k": "mid"}))["segment"]["usage"]
    assert usage["usedInFlags"] == []


async def test_a_custom_targeting_rule_reference_must_name_a_live_segment(gql, project):
    flag = await new_flag(gql, project.key, "f")
    payload = await set_rules(
        gql,
        flag["id"],
        [{"rules": [condition("plan", "EQ", "pro"), ref("missing")], "variationKey": "on"}],
    )
    assert errors_of(payload) == [
        (("input", "rules", "0", "rules", "1", "segment", "segmentKey"), "NOT_FOUND")
    ]
