"""Query.evaluateSegment over HTTP: decision, reason and every leaf condition's outcome."""

import pytest

EVALUATE = """
query($p: String!, $k: String!, $c: JSON!) {
  evaluateSegment(projectKey: $p, key: $k, context: $c) {
    matched reason conditions { attribute operator matched actual }
  }
}
"""

CREATE = """
mutation($i: CreateSegmentInput!) {
  createSegment(input: $i) { segment { key version } userErrors { field code message } }
}
"""


@pytest.fixture
async def premium(gql, project):
    data = await gql(
        CREATE,
        {
            "i": {
                "projectKey": project.key,
                "name": "EU Premium",
                "key": "eu_premium",
                "included": ["vip"],
                "excluded": ["banned"],
                "rules": [
                    {
                        "condition": {
                            "attribute": "user.country",
                            "operator": "IN",
                            "value": ["DE", "FR"],
                        }
                    },
                    {
                        "group": {
                            "logicalOp": "OR",
                            "rules": [
                                {
                                    "condition": {
                                        "attribute": "plan",
                                        "operator": "EQ",
                                        "value": "premium",
                                    }
                                },
                                {
                                    "condition": {
                                        "attribute": "seats",
                                        "operator": "GTE",
                                        "value": 10,
                                    }
                                },
                            ],
                        }
                    },
                ],
            }
        },
    )
    assert data["createSegment"]["userErrors"] == []
    return "eu_premium"


async def evaluate(gql, project, key, context):
    return (await gql(EVALUATE, {"p": project.key, "k": key, "c": context}))["evaluateSegment"]


async def test_rules_match_with_every_condition_reported(gql, project, premium):
    result = await evaluate(
        gql, project, premium, {"targetingKey": "u1", "user": {"country": "DE"}, "seats": "12"}
    )
    assert result["matched"] is True
    assert result["reason"] == "RULES_MATCHED"
    assert result["conditions"] == [
        {"attribute": "user.country", "operator": "IN", "matched": True, "actual": "DE"},
        {"attribute": "plan", "operator": "EQ", "matched": False, "actual": None},
        {"attribute": "seats", "operator": "GTE", "matched": True, "actual": "12"},
    ]


async def test_rules_not_matched(gql, project, premium):
    result = await evaluate(
        gql, project, premium, {"targetingKey": "u1", "user": {"country": "US"}, "plan": "premium"}
    )
    assert (result["matched"], result["reason"]) == (False, "RULES_NOT_MATCHED")


async def test_excluded_beats_included_and_rules(gql, project, premium):
    result = await evaluate(
        gql,
        project,
        premium,
        {"targetingKey": "banned", "user": {"country": "DE"}, "plan": "premium"},
    )
    assert (result["matched"], result["reason"]) == (False, "EXCLUDED")
    result = await evaluate(gql, project, premium, {"targetingKey": "vip"})
    assert (result["matched"], result["reason"]) == (True, "INCLUDED")


async def test_forced_segment_matches_any_context(gql, project):
    await gql(CREATE, {"i": {"projectKey": project.key, "name": "Everyone", "force": True}})
    result = await evaluate(gql, project, "everyone", {})
    assert (result["matched"], result["reason"]) == (True, "FORCED")


async def test_evaluation_follows_an_update(gql, project, premium):
    before = await evaluate(gql, project, premium, {"user": {"country": "US"}, "plan": "premium"})
    segment = await gql(
        'query($p: String!) { segment(projectKey: $p, key: "eu_premium") { id } }',
        {"p": project.key},
    )
    await gql(
        "mutation($id: ID!) { updateSegment(input: {id: $id, rules: []} ) { userErrors { code } } }",
        {"id": segment["segment"]["id"]},
    )
    after = await evaluate(gql, project, premium, {"targetingKey": "vip"})
    assert before["matched"] is False
    assert after == {"matched": True, "reason": "INCLUDED", "conditions": []}
    no_rules = await evaluate(gql, project, premium, {"user": {"country": "DE"}})
    assert no_rules["matched"] is False  # an empty AND never matches on rules


async def test_unknown_segment_is_not_found(gql, project):
    errors = await gql.errors(EVALUATE, {"p": project.key, "k": "nope", "c": {}})
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_another_projects_segment_is_not_found(gql, project, other_project, premium):
    errors = await gql.errors(
        EVALUATE, {"p": other_project.key, "k": premium, "c": {}}, token=other_project.viewer
    )
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_context_that_is_not_an_object_is_bad_user_input(gql, project, premium):
    errors = await gql.errors(EVALUATE, {"p": project.key, "k": premium, "c": [1, 2]})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_huge_string_value_is_evaluated(gql, project, premium):
    result = await evaluate(
        gql, project, premium, {"plan": "x" * 500_000, "user": {"country": "DE"}}
    )
    assert result["matched"] is False


EVALUATE_WITH_MATCHES = """
query($p: String!, $k: String!, $c: JSON!) {
  evaluateSegment(projectKey: $p, key: $k, context: $c) {
    matched reason
    segmentMatches {
      segmentKey negate matched
      evaluation {
        matched reason conditions { attribute matched }
        segmentMatches { segmentKey matched evaluation { reason } }
      }
    }
  }
}
"""

UPDATE = """
mutation($i: UpdateSegmentInput!) {
  updateSegment(input: $i) { segment { version } userErrors { field code message } }
}
"""


async def _create(gql, project, key: str, rules: list) -> dict:
    data = await gql(
        CREATE, {"i": {"projectKey": project.key, "name": key, "key": key, "rules": rules}}
    )
    assert data["createSegment"]["userErrors"] == []
    return data["createSegment"]["segment"]


def _condition(attribute: str, operator: str, value) -> dict:
    return {"condition": {"attribute": attribute, "operator": operator, "value": value}}


async def test_segment_matches_explain_every_reference_in_rule_order(gql, project):
    await _create(gql, project, "pro", [_condition("plan", "EQ", "pro")])
    await _create(
        gql,
        project,
        "adult-pro",
        [_condition("age", "GTE", 18), {"segment": {"segmentKey": "pro"}}],
    )
    await _create(
        gql,
        project,
        "top",
        [
            {
                "group": {
                    "logicalOp": "OR",
                    "rules": [{"segment": {"segmentKey": "pro", "negate": True}}],
                }
            },
            {"segment": {"segmentKey": "adult-pro"}},
        ],
    )
    data = await gql(
        EVALUATE_WITH_MATCHES, {"p": project.key, "k": "top", "c": {"plan": "pro", "age": 30}}
    )
    result = data["evaluateSegment"]
    assert (result["matched"], result["reason"]) == (False, "RULES_NOT_MATCHED")
    assert result["segmentMatches"] == [
        {
            "segmentKey": "pro",
            "negate": True,
            "matched": False,
            "evaluation": {
                "matched": True,
                "reason": "RULES_MATCHED",
                "conditions": [{"attribute": "plan", "matched": True}],
                "segmentMatches": [],
            },
        },
        {
            "segmentKey": "adult-pro",
            "negate": False,
            "matched": True,
            "evaluation": {
                "matched": True,
                "reason": "RULES_MATCHED",
                "conditions": [{"attribute": "age", "matched": True}],
                "segmentMatches": [
                    {
                        "segmentKey": "pro",
                        "matched": True,
                        "evaluation": {"reason": "RULES_MATCHED"},
                    }
                ],
            },
        },
    ]


async def test_a_change_of_a_referenced_segment_is_seen_by_the_next_evaluation(gql, project):
    await _create(gql, project, "pro", [_condition("plan", "EQ", "pro")])
    await _create(gql, project, "uses-pro", [{"segment": {"segmentKey": "pro"}}])
    variables = {"p": project.key, "k": "uses-pro", "c": {"plan": "team"}}
    assert (await gql(EVALUATE, variables))["evaluateSegment"]["matched"] is False
    segment_id = (
        await gql(
            'query($p: String!) { segment(projectKey: $p, key: "pro") { id } }', {"p": project.key}
        )
    )["segment"]["id"]
    changed = await gql(
        UPDATE, {"i": {"id": segment_id, "rules": [_condition("plan", "IN", ["pro", "team"])]}}
    )
    assert changed["updateSegment"]["userErrors"] == []
    # uses-pro itself did not change; its compiled form must not keep the old "pro".
    assert (await gql(EVALUATE, variables))["evaluateSegment"]["matched"] is True


async def test_one_statement_evaluates_a_segment_with_or_without_references(
    gql, project, statements
):
    """The segment and every segment it reaches come back from one statement."""
    await _create(gql, project, "base", [_condition("plan", "EQ", "pro")])
    await _create(gql, project, "middle", [{"segment": {"segmentKey": "base"}}])
    await _create(gql, project, "top", [{"segment": {"segmentKey": "middle", "negate": True}}])
    context = {"targetingKey": "u1", "plan": "pro"}
    await gql(EVALUATE, {"p": project.key, "k": "base", "c": context})  # token cached
    counts = {}
    for key, matched in (("base", True), ("middle", True), ("top", False)):
        async with statements.block() as counted:
            data = await gql(EVALUATE, {"p": project.key, "k": key, "c": context})
        assert data["evaluateSegment"]["matched"] is matched
        counts[key] = counted.count
    assert counts == {"base": 1, "middle": 1, "top": 1}
