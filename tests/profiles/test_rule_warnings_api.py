"""Rule warnings over GraphQL (DESIGN §15): SegmentPayload.warnings, Segment.warnings and
SegmentPreview.warnings, with MATCHES_NO_ONE / MATCHES_EVERYONE from the stored profiles;
and segmentOverlap, exact against hand-computed sets."""

from typing import Any

import pytest

from tests.mutations.helpers import (
    ERRORS,
    condition,
    group,
    new_segment,
    ref,
)
from tests.mutations.test_big_segments import new_big, update_targets
from tests.profiles.test_members_api import keys, members, upsert

pytestmark = pytest.mark.asyncio(loop_scope="module")

WARNINGS = "warnings { code field message }"
CREATE = f"""
mutation($i: CreateSegmentInput!) {{
  createSegment(input: $i) {{ segment {{ key {WARNINGS} }} {WARNINGS} {ERRORS} }}
}}"""
UPDATE = f"""
mutation($i: UpdateSegmentInput!) {{
  updateSegment(input: $i) {{ segment {{ key }} {WARNINGS} {ERRORS} }}
}}"""
SEGMENT = f"""
query($p: String!, $k: String!) {{ segment(projectKey: $p, key: $k) {{ {WARNINGS} }} }}"""
SEGMENTS = f"""
query($p: String!) {{ segments(projectKey: $p, first: 50) {{ nodes {{ key {WARNINGS} }} }} }}"""
PREVIEW = f"""
query($i: PreviewSegmentInput!) {{
  previewSegment(input: $i) {{ memberCount {WARNINGS} {ERRORS} }}
}}"""
OVERLAP = """
query($p: String!, $a: String!, $b: String!) {
  segmentOverlap(projectKey: $p, a: $a, b: $b) { onlyA onlyB both either }
}"""

CONTRADICTION = [
    condition("plan", "IN", ["pro", "free"]),
    condition("plan", "NIN", ["free", "pro"]),
]
PEOPLE = {
    "ada": {"country": "DE", "plan": "pro", "seats": 12},
    "bob": {"country": "AT", "plan": "free", "seats": "3"},
    "cyd": {"country": "FR", "plan": "pro", "seats": 40},
    "dee": {"country": "de", "plan": "enterprise", "seats": 250},
    "eve": {"country": "US", "plan": "pro"},
    "fay": {"country": "CH", "plan": "free", "tags": ["partner", "eu"]},
    "gus": {},
}


def codes(warnings: list[dict[str, Any]]) -> list[tuple[str, tuple[str, ...] | None]]:
    return [(w["code"], tuple(w["field"]) if w["field"] else None) for w in warnings]


async def create(gql: Any, project_key: str, **fields: Any) -> dict:
    data = await gql(CREATE, {"i": {"projectKey": project_key, "name": "Seg", **fields}})
    return data["createSegment"]


async def test_a_contradiction_is_a_warning_of_the_write_and_never_blocks_it(gql, project):
    payload = await create(gql, project.key, key="nobody", rules=CONTRADICTION)
    assert payload["userErrors"] == []
    assert payload["segment"]["key"] == "nobody"
    assert codes(payload["warnings"]) == [("CONTRADICTION", ("input", "rules"))]
    message = payload["warnings"][0]["message"]
    assert "input.rules.0" in message and "input.rules.1" in message
    # The stored segment tells the same, with paths into Segment.rules.
    data = await gql(SEGMENT, {"p": project.key, "k": "nobody"})
    assert codes(data["segment"]["warnings"]) == [("CONTRADICTION", ("rules",))]


async def test_nested_warnings_point_at_the_rule_in_the_input(gql, project):
    rules = [
        condition("country", "EQ", "DE"),
        group(condition("seats", "GT", 10), condition("seats", "GT", 5), logical_op="AND"),
        condition("country", "EQ", "DE"),
    ]
    payload = await create(gql, project.key, key="nested", rules=rules)
    assert codes(payload["warnings"]) == [
        ("SUBSUMED", ("input", "rules", "1", "group", "rules", "1")),
        ("DUPLICATE_CONDITION", ("input", "rules", "2")),
    ]
    data = await gql(SEGMENT, {"p": project.key, "k": "nested"})
    assert codes(data["segment"]["warnings"]) == [
        ("SUBSUMED", ("rules", "1", "rules", "1")),
        ("DUPLICATE_CONDITION", ("rules", "2")),
    ]


async def test_a_refused_write_has_no_warnings_and_an_update_warns_about_the_result(gql, project):
    refused = await create(gql, project.key, key="bad key!", rules=CONTRADICTION)
    assert refused["segment"] is None and refused["userErrors"]
    assert refused["warnings"] == []
    segment = await new_segment(gql, project.key, key="fine", rules=CONTRADICTION[:1])
    data = await gql(
        UPDATE,
        {
            "i": {
                "id": segment["id"],
                "logicalOp": "OR",
                "rules": [condition("beta", "EXISTS"), condition("beta", "NOT_EXISTS")],
            }
        },
    )
    assert codes(data["updateSegment"]["warnings"]) == [("ALWAYS_TRUE", ("input", "rules"))]
    # An update of other fields still reports the segment as written.
    data = await gql(UPDATE, {"i": {"id": segment["id"], "name": "Renamed"}})
    assert codes(data["updateSegment"]["warnings"]) == [("ALWAYS_TRUE", ("input", "rules"))]


async def test_list_attributes_keep_eq_1_and_eq_2_from_being_a_contradiction(gql, project):
    payload = await create(
        gql,
        project.key,
        key="both",
        rules=[condition("tags", "EQ", "eu"), condition("tags", "EQ", "partner")],
    )
    assert payload["warnings"] == []
    await upsert(gql, project.key, {"fay": PEOPLE["fay"]})
    assert keys((await members(gql, project.key, "both"))["members"]) == ["fay"]


async def test_member_warnings_need_stored_profiles(gql, project):
    preview = await gql(
        PREVIEW, {"i": {"projectKey": project.key, "rules": [condition("plan", "EQ", "gold")]}}
    )
    assert preview["previewSegment"]["warnings"] == []  # no profiles stored: nothing to tell
    await upsert(gql, project.key, PEOPLE)
    preview = await gql(
        PREVIEW, {"i": {"projectKey": project.key, "rules": [condition("plan", "EQ", "gold")]}}
    )
    assert preview["previewSegment"]["memberCount"] == 0
    assert codes(preview["previewSegment"]["warnings"]) == [("MATCHES_NO_ONE", None)]
    everyone = [condition("plan", "NEQ", "gold")]
    preview = await gql(PREVIEW, {"i": {"projectKey": project.key, "rules": everyone}})
    assert codes(preview["previewSegment"]["warnings"]) == [("MATCHES_EVERYONE", None)]
    assert "7 stored profiles" in preview["previewSegment"]["warnings"][0]["message"]
    payload = await create(gql, project.key, key="all", rules=everyone)
    assert codes(payload["warnings"]) == [("MATCHES_EVERYONE", None)]
    assert codes(payload["segment"]["warnings"]) == [("MATCHES_EVERYONE", None)]
    some = [condition("plan", "EQ", "pro")]
    assert (await create(gql, project.key, key="pros", rules=some))["warnings"] == []


async def test_a_list_page_reports_the_rule_analysis_only(gql, project):
    await upsert(gql, project.key, PEOPLE)
    await new_segment(gql, project.key, key="nobody", rules=CONTRADICTION)
    await new_segment(
        gql, project.key, name="All", key="all", rules=[condition("plan", "NEQ", "x")]
    )
    data = await gql(SEGMENTS, {"p": project.key})
    by_key = {node["key"]: codes(node["warnings"]) for node in data["segments"]["nodes"]}
    assert by_key == {"nobody": [("CONTRADICTION", ("rules",))], "all": []}
    data = await gql(SEGMENT, {"p": project.key, "k": "nobody"})
    assert codes(data["segment"]["warnings"]) == [
        ("CONTRADICTION", ("rules",)),
        ("MATCHES_NO_ONE", None),
    ]


async def test_preview_warnings_are_empty_on_user_errors(gql, project):
    data = await gql(
        PREVIEW, {"i": {"projectKey": project.key, "rules": CONTRADICTION, "sampleSize": 1000}}
    )
    assert data["previewSegment"]["userErrors"] and data["previewSegment"]["warnings"] == []
    data = await gql(PREVIEW, {"i": {"projectKey": project.key, "rules": CONTRADICTION}})
    assert codes(data["previewSegment"]["warnings"]) == [("CONTRADICTION", ("input", "rules"))]


# segmentOverlap.


async def overlap(gql: Any, project_key: str, a: str, b: str) -> dict | None:
    data = await gql(OVERLAP, {"p": project_key, "a": a, "b": b})
    return data["segmentOverlap"]


def split(a: set[str], b: set[str]) -> dict[str, int]:
    return {"onlyA": len(a - b), "onlyB": len(b - a), "both": len(a & b), "either": len(a | b)}


async def test_overlap_counts_stored_profiles_in_only_a_only_b_both_and_either(gql, project):
    await upsert(gql, project.key, PEOPLE)
    await new_segment(
        gql, project.key, name="Pro", key="pro", rules=[condition("plan", "EQ", "pro")]
    )
    await new_segment(
        gql,
        project.key,
        name="DACH",
        key="dach",
        rules=[condition("country", "IN", ["DE", "AT", "CH"])],
        included=["eve"],
        excluded=["ada"],
    )
    pro, dach = {"ada", "cyd", "eve"}, {"bob", "fay", "eve"}
    assert await overlap(gql, project.key, "pro", "dach") == split(pro, dach)
    assert await overlap(gql, project.key, "dach", "pro") == split(dach, pro)
    assert await overlap(gql, project.key, "pro", "pro") == split(pro, pro)


async def test_overlap_follows_force_references_big_segments_and_leaves_sql_defers(gql, project):
    await upsert(gql, project.key, PEOPLE)
    await new_segment(gql, project.key, name="Everyone", key="everyone", force=True)
    # "(?i)de" is beyond the regexes PostgreSQL reads alike: the evaluator decides each row.
    await new_segment(
        gql, project.key, name="De", key="de", rules=[condition("country", "REGEX", "(?i)de")]
    )
    await new_segment(
        gql,
        project.key,
        name="Not de, big seats",
        key="not_de",
        rules=[ref("de", negate=True), condition("seats", "GTE", 12)],
    )
    big = await new_big(gql, project.key, name="Customers")
    assert (await update_targets(gql, big["id"], addIncluded=["gus", "ada"], addExcluded=["cyd"]))[
        "userErrors"
    ] == []
    everyone = set(PEOPLE)
    de, not_de, customers = {"ada", "dee"}, {"cyd"}, {"gus", "ada"}
    # Truth by hand, and the member lists agree with it.
    assert set(keys((await members(gql, project.key, "de"))["members"])) == de
    assert set(keys((await members(gql, project.key, "not_de"))["members"])) == not_de
    assert await overlap(gql, project.key, "everyone", "de") == split(everyone, de)
    assert await overlap(gql, project.key, "de", "not_de") == split(de, not_de)
    assert await overlap(gql, project.key, "customers", "de") == split(customers, de)
    assert await overlap(gql, project.key, "not_de", "customers") == split(not_de, customers)


async def test_overlap_of_an_unknown_key_or_project_is_null(gql, project, other_project):
    await new_segment(
        gql, project.key, name="Pro", key="pro", rules=[condition("plan", "EQ", "pro")]
    )
    assert await overlap(gql, project.key, "pro", "missing") is None
    assert await overlap(gql, project.key, "missing", "pro") is None
    assert await overlap(gql, other_project.key, "pro", "pro") is None
    # No profiles stored: all zero.
    assert await overlap(gql, project.key, "pro", "pro") == split(set(), set())


async def test_an_attribute_no_profile_holds_is_unknown_naming_the_closest_paths(gql, project):
    """The catalogue feeds the analysis: `plna` is neither stored nor declared, `plan` is."""
    await upsert(gql, project.key, PEOPLE)
    payload = await create(
        gql,
        project.key,
        key="typo",
        rules=[condition("plna", "EQ", "pro"), condition("plan", "EQ", "pro")],
    )
    unknown = [w for w in payload["warnings"] if w["code"] == "UNKNOWN_ATTRIBUTE"]
    assert len(unknown) == 1 and "plan" in unknown[0]["message"], payload["warnings"]
    assert (await create(gql, project.key, key="fine", rules=[condition("plan", "EQ", "pro")]))[
        "warnings"
    ] == []
