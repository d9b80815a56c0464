"""Big segments in evaluation and membership (DESIGN §13): evaluateSegment, evaluateTargeting,
memberCount, members and previewSegment read a big segment's lists through its primary key,
for the segment itself and for segments that reach it through references."""

from typing import Any

import pytest
import pytest_asyncio

from tests.mutations.helpers import condition, new_flag, new_segment, ref, set_rules
from tests.mutations.test_big_segments import new_big, update_targets
from tests.profiles.test_members_api import keys, members, preview, upsert

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVALUATE = """
query($p: String!, $k: String!, $c: JSON!) {
  evaluateSegment(projectKey: $p, key: $k, context: $c) {
    matched reason
    segmentMatches { segmentKey matched evaluation { matched reason } }
  }
}"""
TARGETING = """
query($p: String!, $f: String!, $c: JSON!) {
  evaluateTargeting(projectKey: $p, flagKey: $f, environmentKey: "production", context: $c) {
    variationKey
    matchedRule { orderIndex }
  }
}"""
PEOPLE = {
    "ann": {"plan": "pro"},
    "ben": {"plan": "free"},
    "cat": {"plan": "pro"},
    "dan": {"plan": "free"},
    "42": {"plan": "free"},
}


async def evaluate(gql: Any, project_key: str, key: str, context: dict) -> dict:
    return (await gql(EVALUATE, {"p": project_key, "k": key, "c": context}))["evaluateSegment"]


@pytest_asyncio.fixture(loop_scope="module")
async def customers(gql, project) -> dict:
    """A big segment without rules: always ben and 42, never cat."""
    big = await new_big(gql, project.key, name="Customers")
    payload = await update_targets(gql, big["id"], addIncluded=["ben", "42"], addExcluded=["cat"])
    assert payload["userErrors"] == []
    return big


async def test_evaluate_big_segment_reads_its_lists(gql, project, customers):
    assert await evaluate(gql, project.key, "customers", {"targetingKey": "ben"}) == {
        "matched": True,
        "reason": "INCLUDED",
        "segmentMatches": [],
    }
    result = await evaluate(gql, project.key, "customers", {"targetingKey": "cat"})
    assert (result["matched"], result["reason"]) == (False, "EXCLUDED")
    result = await evaluate(gql, project.key, "customers", {"targetingKey": 42})
    assert (result["matched"], result["reason"]) == (True, "INCLUDED")
    result = await evaluate(gql, project.key, "customers", {"targetingKey": "zed"})
    assert (result["matched"], result["reason"]) == (False, "RULES_NOT_MATCHED")
    result = await evaluate(gql, project.key, "customers", {})
    assert (result["matched"], result["reason"]) == (False, "RULES_NOT_MATCHED")


async def test_an_edit_is_seen_by_the_next_evaluation(gql, project, customers):
    assert (await evaluate(gql, project.key, "customers", {"targetingKey": "dan"}))[
        "matched"
    ] is False
    await update_targets(gql, customers["id"], addIncluded=["dan"])
    assert (await evaluate(gql, project.key, "customers", {"targetingKey": "dan"}))[
        "matched"
    ] is True
    await update_targets(gql, customers["id"], removeIncluded=["dan"])
    assert (await evaluate(gql, project.key, "customers", {"targetingKey": "dan"}))[
        "matched"
    ] is False


async def test_a_reference_to_a_big_segment_reads_its_lists(gql, project, customers):
    await new_segment(
        gql,
        project.key,
        name="Pro or customer",
        key="pro_or_customer",
        logicalOp="OR",
        rules=[condition("plan", "EQ", "pro"), ref("customers")],
    )
    await new_segment(
        gql,
        project.key,
        name="Not customer",
        key="not_customer",
        rules=[ref("customers", negate=True)],
    )
    result = await evaluate(
        gql, project.key, "pro_or_customer", {"targetingKey": "ben", "plan": "free"}
    )
    assert result["matched"] is True
    assert result["segmentMatches"] == [
        {
            "segmentKey": "customers",
            "matched": True,
            "evaluation": {"matched": True, "reason": "INCLUDED"},
        }
    ]
    result = await evaluate(gql, project.key, "not_customer", {"targetingKey": "cat"})
    assert result["matched"] is True  # excluded from customers
    result = await evaluate(gql, project.key, "not_customer", {"targetingKey": "ben"})
    assert result["matched"] is False


async def test_member_count_and_members_join_the_big_lists(gql, project, customers):
    await upsert(gql, project.key, PEOPLE)
    segment = await members(gql, project.key, "customers")
    assert segment["memberCount"] == 2
    assert keys(segment["members"]) == ["42", "ben"]
    await new_segment(
        gql,
        project.key,
        name="Pro or customer",
        key="pro_or_customer",
        logicalOp="OR",
        rules=[condition("plan", "EQ", "pro"), ref("customers")],
    )
    segment = await members(gql, project.key, "pro_or_customer")
    # cat is pro, and excluded only from customers, not from this one.
    assert keys(segment["members"]) == ["42", "ann", "ben", "cat"]
    assert segment["memberCount"] == 4
    await new_segment(
        gql,
        project.key,
        name="Regex customer",
        key="regex_customer",
        rules=[ref("customers"), condition("targetingKey", "REGEX", "^(?:b|4)")],
    )
    # REGEX leaves rows to the evaluator, which is given the lists looked up for each row.
    segment = await members(gql, project.key, "regex_customer")
    assert keys(segment["members"]) == ["42", "ben"]
    assert segment["memberCount"] == 2


async def test_preview_may_reference_a_big_segment(gql, project, customers):
    await upsert(gql, project.key, PEOPLE)
    result = await preview(gql, project.key, rules=[ref("customers", negate=True)], sampleSize=10)
    assert result["userErrors"] == []
    assert result["memberCount"] == 3
    assert [profile["targetingKey"] for profile in result["sample"]] == ["ann", "cat", "dan"]


async def test_evaluate_targeting_reads_big_lists_of_segment_and_custom_rules(
    gql, project, customers
):
    flag = await new_flag(gql, project.key, key="checkout")
    payload = await set_rules(
        gql,
        flag["id"],
        [
            {"segmentId": customers["id"], "variationKey": "seg"},
            {"rules": [ref("customers", negate=True)], "variationKey": "custom"},
        ],
    )
    assert payload["userErrors"] == []

    async def served(context: dict) -> str | None:
        data = await gql(TARGETING, {"p": project.key, "f": "checkout", "c": context})
        return data["evaluateTargeting"]["variationKey"]

    assert await served({"targetingKey": "ben"}) == "seg"
    assert await served({"targetingKey": "cat"}) == "custom"
    assert await served({"targetingKey": "zed"}) == "custom"
