"""Segment.salt, caseInsensitive and PERCENTAGE through the mutations (DESIGN §12)."""

from typing import Any

import pytest

from tests.mutations.helpers import (
    condition,
    create_segment,
    errors_of,
    history,
    new_segment,
    sql_fetch,
    state,
    update_segment,
)
from tests.rules.test_rules_operators import BUCKETS

pytestmark = pytest.mark.asyncio(loop_scope="module")

RULES2 = """
    id key name salt version
    rules {
      ... on Condition { attribute operator value caseInsensitive }
      ... on ConditionGroup { rules { ... on Condition { operator caseInsensitive } } }
    }
"""
CREATE = f"""
mutation($i: CreateSegmentInput!) {{
  createSegment(input: $i) {{
    segment {{ {RULES2} }}
    userErrors {{ field code message }}
  }}
}}"""
UPDATE = f"""
mutation($i: UpdateSegmentInput!) {{
  updateSegment(input: $i) {{
    segment {{ {RULES2} }}
    userErrors {{ field code message }}
  }}
}}"""
EVALUATE = """
query($p: String!, $k: String!, $c: JSON!) {
  evaluateSegment(projectKey: $p, key: $k, context: $c) { matched reason }
}"""
PREVIEW = """
query($i: PreviewSegmentInput!) {
  previewSegment(input: $i) { memberCount userErrors { field code } }
}"""
MEMBER_COUNT = (
    "query($p: String!, $k: String!) { segment(projectKey: $p, key: $k) { memberCount } }"
)
UPSERT = """
mutation($i: UpsertProfilesInput!) { upsertProfiles(input: $i) { userErrors { field code } } }"""


async def create(gql: Any, project_key: str, **fields: Any) -> dict:
    return (await gql(CREATE, {"i": {"projectKey": project_key, **fields}}))["createSegment"]


async def update(gql: Any, segment_id: str, **fields: Any) -> dict:
    return (await gql(UPDATE, {"i": {"id": segment_id, **fields}}))["updateSegment"]


def folded(attribute: str, operator: str, value: Any) -> dict[str, Any]:
    rule = condition(attribute, operator, value)
    rule["condition"]["caseInsensitive"] = True
    return rule


# --- salt ---------------------------------------------------------------------------------


async def test_create_takes_a_salt(gql, project):
    payload = await create(gql, project.key, name="Rollout", salt="checkout-2026")
    assert payload["userErrors"] == []
    assert payload["segment"]["salt"] == "checkout-2026"


async def test_the_default_salt_is_the_final_key(gql, project):
    explicit = await create(gql, project.key, name="Rollout", key="rollout-a")
    assert explicit["segment"]["salt"] == "rollout-a"
    derived = await create(gql, project.key, name="Rollout A")
    assert derived["segment"]["key"] == "rollout_a"
    assert derived["segment"]["salt"] == "rollout_a"
    again = await create(gql, project.key, name="Rollout A")  # the key gets a suffix
    assert again["segment"]["key"] == again["segment"]["salt"] == "rollout_a_2"


async def test_renaming_keeps_the_salt(gql, project):
    segment = (await create(gql, project.key, name="Rollout", key="old-key"))["segment"]
    renamed = await update(gql, segment["id"], key="new-key", name="Renamed")
    assert renamed["userErrors"] == []
    assert renamed["segment"]["key"] == "new-key"
    assert renamed["segment"]["salt"] == "old-key"


async def test_update_changes_the_salt_bumps_the_version_and_is_audited(gql, project):
    segment = (await create(gql, project.key, name="Rollout", key="rollout"))["segment"]
    changed = await update(gql, segment["id"], salt="reshuffled")
    assert changed["userErrors"] == []
    assert changed["segment"]["salt"] == "reshuffled"
    assert changed["segment"]["version"] == segment["version"] + 1
    latest = (await history(gql, segment["id"]))["nodes"][0]
    assert latest["action"] == "UPDATED"
    assert latest["changes"] == [{"field": "salt", "before": "rollout", "after": "reshuffled"}]
    same = await update(gql, segment["id"], salt="reshuffled")  # changes nothing
    assert same["segment"]["version"] == changed["segment"]["version"]


@pytest.mark.parametrize("salt", ["", "x" * 101, "nul\x00"])
async def test_a_bad_salt_is_invalid_input_and_writes_nothing(gql, project, salt):
    segment = await new_segment(gql, project.key, name="Rollout")
    before = await state(gql, project.key)
    created = await create_segment(gql, project.key, name="Other", salt=salt)
    updated = await update_segment(gql, segment["id"], salt=salt)
    assert errors_of(created) == [(("input", "salt"), "INVALID_INPUT")]
    assert errors_of(updated) == [(("input", "salt"), "INVALID_INPUT")]
    assert await state(gql, project.key) == before


async def test_a_null_salt_on_update_is_invalid_input(gql, project):
    segment = await new_segment(gql, project.key, name="Rollout")
    assert errors_of(await update_segment(gql, segment["id"], salt=None)) == [
        (("input", "salt"), "INVALID_INPUT")
    ]


# --- caseInsensitive ----------------------------------------------------------------------


async def test_case_insensitive_round_trips_and_is_stored_only_when_true(
    gql, project, database_url
):
    rules = [
        folded("plan", "EQ", "Pro"),
        condition("plan", "NEQ", "free"),
        {"group": {"logicalOp": "OR", "rules": [folded("email", "ENDS_WITH", "@ACME.COM")]}},
    ]
    payload = await create(gql, project.key, name="Pros", key="pros", rules=rules)
    assert payload["userErrors"] == []
    read = payload["segment"]["rules"]
    assert [read[0]["caseInsensitive"], read[1]["caseInsensitive"]] == [True, False]
    assert read[2]["rules"] == [{"operator": "ENDS_WITH", "caseInsensitive": True}]
    [row] = await sql_fetch(
        database_url,
        "SELECT s.rules FROM segments s JOIN projects p ON p.id = s.project_id"
        " WHERE p.key = $1 AND s.key = 'pros'",
        project.key,
    )
    assert row["rules"] == [
        {"attribute": "plan", "operator": "EQ", "value": "Pro", "caseInsensitive": True},
        {"attribute": "plan", "operator": "NEQ", "value": "free"},
        {
            "logicalOp": "OR",
            "rules": [
                {
                    "attribute": "email",
                    "operator": "ENDS_WITH",
                    "value": "@ACME.COM",
                    "caseInsensitive": True,
                }
            ],
        },
    ]
    evaluate = {"p": project.key, "k": "pros"}
    yes = {"plan": "PRO", "email": "ann@acme.com"}
    no = {"plan": "PRO", "email": "ann@other.com"}
    assert (await gql(EVALUATE, {**evaluate, "c": yes}))["evaluateSegment"]["matched"] is True
    assert (await gql(EVALUATE, {**evaluate, "c": no}))["evaluateSegment"]["matched"] is False


@pytest.mark.parametrize(
    "rule, field",
    [
        (folded("n", "GT", 1), "caseInsensitive"),
        (folded("n", "EXISTS", None), "caseInsensitive"),
        (folded("n", "PERCENTAGE", 50), "caseInsensitive"),
        (condition("targetingKey", "PERCENTAGE", 101), "value"),
        (condition("targetingKey", "PERCENTAGE", -1), "value"),
        (condition("targetingKey", "PERCENTAGE", 12.3456), "value"),
        (condition("targetingKey", "PERCENTAGE", "50"), "value"),
        (condition("targetingKey", "PERCENTAGE", True), "value"),
    ],
)
async def test_rules2_mistakes_are_invalid_rule_at_their_path(gql, project, rule, field):
    before = await state(gql, project.key)
    payload = await create_segment(gql, project.key, name="Bad", rules=[rule])
    assert errors_of(payload) == [(("input", "rules", "0", "condition", field), "INVALID_RULE")]
    assert await state(gql, project.key) == before


# --- PERCENTAGE with the owner's salt ----------------------------------------------------


async def test_percentage_buckets_with_the_segments_salt_in_every_path(gql, project):
    salt, key, bucket = BUCKETS[0]  # ("checkout", "user-1", ...): 44.1682...%
    assert bucket * 100 // 2**64 == 44
    upserted = await gql(
        UPSERT,
        {
            "i": {
                "projectKey": project.key,
                "profiles": [{"targetingKey": key, "attributes": {}}],
            }
        },
    )
    assert upserted["upsertProfiles"]["userErrors"] == []
    for percent, expected in [(44.169, True), (44.168, False)]:
        rules = [condition("targetingKey", "PERCENTAGE", percent)]
        segment = await new_segment(
            gql, project.key, name=f"Rollout {percent}", salt=salt, rules=rules
        )
        evaluation = await gql(
            EVALUATE, {"p": project.key, "k": segment["key"], "c": {"targetingKey": key}}
        )
        assert evaluation["evaluateSegment"]["matched"] is expected
        count = await gql(MEMBER_COUNT, {"p": project.key, "k": segment["key"]})
        assert count["segment"]["memberCount"] == int(expected)
        preview = await gql(
            PREVIEW, {"i": {"projectKey": project.key, "rules": rules, "salt": salt}}
        )
        assert preview["previewSegment"]["memberCount"] == int(expected)
    # The preview's own default salt, "preview", buckets differently.
    rules = [condition("targetingKey", "PERCENTAGE", 44.169)]
    default = await gql(PREVIEW, {"i": {"projectKey": project.key, "rules": rules}})
    assert default["previewSegment"]["userErrors"] == []
    assert default["previewSegment"]["memberCount"] == 0  # sha256("preview/user-1"): 91.5%
    bad = await gql(PREVIEW, {"i": {"projectKey": project.key, "rules": rules, "salt": ""}})
    assert bad["previewSegment"]["userErrors"] == [
        {"field": ["input", "salt"], "code": "INVALID_INPUT"}
    ]
