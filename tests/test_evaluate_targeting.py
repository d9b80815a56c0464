"""Query.evaluateTargeting over HTTP: a flag's rules in one environment, first match wins.

The flag of the seed's targeting pipeline: internal users get the feature, EU premium users
who are not internal go through the rollout, everyone else gets the fallthrough.
"""

import hashlib
from pathlib import Path

import pytest
from graphql import build_schema, parse, print_ast

from schema.build import export_sdl
from tests.mutations.helpers import (
    CREATE_FLAG,
    archive_flag,
    condition,
    new_flag,
    new_segment,
    ref,
    set_rules,
    update_segment,
)

EVALUATE = """
query($p: String!, $f: String!, $e: String!, $c: JSON!) {
  evaluateTargeting(projectKey: $p, flagKey: $f, environmentKey: $e, context: $c) {
    matchedRule { id orderIndex kind segment { key } variationKey rolloutKey }
    variationKey
    rolloutKey
    ruleResults {
      orderIndex matched
      evaluation { matched reason conditions { attribute operator matched actual } }
    }
  }
}
"""

EVALUATE_SEGMENT = """
query($p: String!, $k: String!, $c: JSON!) {
  evaluateSegment(projectKey: $p, key: $k, context: $c) { matched }
}
"""

RULE_IDS = """
query($p: String!, $k: String!) {
  flag(projectKey: $p, key: $k) { targetingRules(environmentKey: "production") { id } }
}
"""

EU_PREMIUM = [
    condition("country", "IN", ["DE", "FR", "ES"]),
    condition("plan", "EQ", "premium"),
]


async def evaluate(
    gql, project, context, flag="new-checkout", environment="production", token=None
):
    data = await gql(
        EVALUATE, {"p": project.key, "f": flag, "e": environment, "c": context}, token=token
    )
    return data["evaluateTargeting"]


async def evaluate_errors(gql, project_key, context, flag="new-checkout", environment="production"):
    return await gql.errors(EVALUATE, {"p": project_key, "f": flag, "e": environment, "c": context})


@pytest.fixture
async def internal(gql, project):
    """The "internal users" segment (by email), with one VIP included and one intern excluded."""
    return await new_segment(
        gql,
        project.key,
        name="Internal users",
        key="internal",
        rules=[condition("email", "ENDS_WITH", "@company.com")],
        included=["vip"],
        excluded=["intern-7"],
    )


@pytest.fixture
async def checkout(gql, project, internal):
    """Rule 0: SEGMENT internal → variation "on"; rule 1: CUSTOM EU premium → rollout "gradual"."""
    flag = await new_flag(gql, project.key, "new-checkout")
    payload = await set_rules(
        gql,
        flag["id"],
        [
            {"segmentId": internal["id"], "variationKey": "on"},
            {"logicalOp": "AND", "rules": EU_PREMIUM, "rolloutKey": "gradual"},
        ],
    )
    assert payload["userErrors"] == []
    return flag


def outcome(result):
    """(matched rule's orderIndex or None, variationKey, rolloutKey, [(orderIndex, matched, reason)])."""
    rule = result["matchedRule"]
    return (
        rule["orderIndex"] if rule else None,
        result["variationKey"],
        result["rolloutKey"],
        [(r["orderIndex"], r["matched"], r["evaluation"]["reason"]) for r in result["ruleResults"]],
    )


async def test_an_internal_user_meets_the_segment_rule_and_gets_its_variation(
    gql, project, checkout
):
    result = await evaluate(gql, project, {"targetingKey": "u1", "email": "ana@company.com"})
    rule_ids = await gql(RULE_IDS, {"p": project.key, "k": "new-checkout"})
    assert result["matchedRule"] == {
        "id": rule_ids["flag"]["targetingRules"][0]["id"],
        "orderIndex": 0,
        "kind": "SEGMENT",
        "segment": {"key": "internal"},
        "variationKey": "on",
        "rolloutKey": None,
    }
    assert (result["variationKey"], result["rolloutKey"]) == ("on", None)
    assert result["ruleResults"] == [
        {
            "orderIndex": 0,
            "matched": True,
            "evaluation": {
                "matched": True,
                "reason": "RULES_MATCHED",
                "conditions": [
                    {
                        "attribute": "email",
                        "operator": "ENDS_WITH",
                        "matched": True,
                        "actual": "ana@company.com",
                    }
                ],
            },
        }
    ]


async def test_an_eu_premium_user_goes_through_the_rollout_of_the_custom_rule(
    gql, project, checkout
):
    result = await evaluate(
        gql,
        project,
        {"targetingKey": "u2", "email": "bo@example.org", "country": "FR", "plan": "premium"},
    )
    assert result["matchedRule"]["kind"] == "CUSTOM"
    assert result["matchedRule"]["segment"] is None
    assert outcome(result) == (
        1,
        None,
        "gradual",
        [(0, False, "RULES_NOT_MATCHED"), (1, True, "RULES_MATCHED")],
    )
    assert result["ruleResults"][1]["evaluation"]["conditions"] == [
        {"attribute": "country", "operator": "IN", "matched": True, "actual": "FR"},
        {"attribute": "plan", "operator": "EQ", "matched": True, "actual": "premium"},
    ]


async def test_anyone_else_falls_through_with_every_rule_explained(gql, project, checkout):
    result = await evaluate(
        gql, project, {"targetingKey": "u3", "user": {"plan": "free"}, "country": "DE"}
    )
    assert outcome(result) == (
        None,
        None,
        None,
        [(0, False, "RULES_NOT_MATCHED"), (1, False, "RULES_NOT_MATCHED")],
    )
    assert result["ruleResults"][0]["evaluation"]["conditions"] == [
        {"attribute": "email", "operator": "ENDS_WITH", "matched": False, "actual": None}
    ]
    assert result["ruleResults"][1]["evaluation"]["conditions"] == [
        {"attribute": "country", "operator": "IN", "matched": True, "actual": "DE"},
        {"attribute": "plan", "operator": "EQ", "matched": False, "actual": None},
    ]


async def test_the_first_rule_that_matches_wins_and_the_rest_are_not_evaluated(
    gql, project, checkout
):
    both = {"targetingKey": "u4", "email": "cy@company.com", "country": "ES", "plan": "premium"}
    result = await evaluate(gql, project, both)
    assert outcome(result) == (0, "on", None, [(0, True, "RULES_MATCHED")])


async def test_an_included_targeting_key_meets_the_segment_rule(gql, project, checkout):
    result = await evaluate(gql, project, {"targetingKey": "vip"})
    assert outcome(result) == (0, "on", None, [(0, True, "INCLUDED")])
    assert result["ruleResults"][0]["evaluation"]["conditions"] == []


async def test_an_excluded_targeting_key_skips_the_segment_rule_for_the_next(
    gql, project, checkout
):
    intern = {"targetingKey": "intern-7", "email": "i@company.com", "country": "DE"}
    result = await evaluate(gql, project, {**intern, "plan": "premium"})
    assert outcome(result) == (
        1,
        None,
        "gradual",
        [(0, False, "EXCLUDED"), (1, True, "RULES_MATCHED")],
    )


async def test_a_forced_segment_meets_every_context_once_updated(gql, project, internal, checkout):
    before = await evaluate(gql, project, {"targetingKey": "anyone"})
    payload = await update_segment(gql, internal["id"], force=True)
    assert payload["userErrors"] == []
    after = await evaluate(gql, project, {"targetingKey": "anyone"})
    assert outcome(before)[0] is None
    assert outcome(after) == (0, "on", None, [(0, True, "FORCED")])


async def test_a_custom_rule_combines_its_conditions_with_its_own_operator(gql, project):
    flag = await new_flag(gql, project.key, "banner")
    rules = [{"logicalOp": "NOT", "rules": EU_PREMIUM, "variationKey": "off"}]
    assert (await set_rules(gql, flag["id"], rules))["userErrors"] == []
    eu_premium = await evaluate(gql, project, {"country": "DE", "plan": "premium"}, flag="banner")
    others = await evaluate(gql, project, {"country": "DE", "plan": "free"}, flag="banner")
    assert outcome(eu_premium) == (None, None, None, [(0, False, "RULES_NOT_MATCHED")])
    assert outcome(others) == (0, "off", None, [(0, True, "RULES_MATCHED")])


async def test_a_flag_without_rules_falls_through_with_no_rule_results(gql, project, checkout):
    await new_flag(gql, project.key, "bare")
    bare = await evaluate(gql, project, {"targetingKey": "u1"}, flag="bare")
    # The checkout flag's rules are production's: staging has none.
    staging = await evaluate(
        gql, project, {"targetingKey": "u1", "email": "ana@company.com"}, environment="staging"
    )
    empty = {"matchedRule": None, "variationKey": None, "rolloutKey": None, "ruleResults": []}
    assert bare == empty
    assert staging == empty


async def test_a_viewer_key_may_evaluate(gql, project, checkout):
    result = await evaluate(gql, project, {"email": "ana@company.com"}, token=project.viewer)
    assert result["variationKey"] == "on"


async def test_an_unknown_flag_is_not_found(gql, project, checkout):
    errors = await evaluate_errors(gql, project.key, {}, flag="nope")
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert errors[0]["path"] == ["evaluateTargeting"]


async def test_an_archived_flag_is_not_found(gql, project, checkout):
    assert (await archive_flag(gql, checkout["id"]))["userErrors"] == []
    errors = await evaluate_errors(gql, project.key, {"email": "ana@company.com"})
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_an_unknown_environment_is_not_found(gql, project, checkout):
    errors = await evaluate_errors(gql, project.key, {}, environment="nope")
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_another_projects_flag_is_not_found(gql, project, other_project):
    created = await gql(
        CREATE_FLAG,
        {"i": {"projectKey": other_project.key, "key": "theirs", "name": "Theirs"}},
        token=other_project.editor,
    )
    assert created["createFlag"]["userErrors"] == []
    by_their_key = await evaluate_errors(gql, other_project.key, {}, flag="theirs")
    in_my_project = await evaluate_errors(gql, project.key, {}, flag="theirs")
    unknown_project = await evaluate_errors(gql, "nope", {}, flag="theirs")
    assert [e[0]["extensions"]["code"] for e in (by_their_key, in_my_project)] == [
        "NOT_FOUND",
        "NOT_FOUND",
    ]
    # Naming another project reads exactly like naming one that does not exist.
    assert (
        by_their_key[0]["message"].replace(other_project.key, "nope")
        == (unknown_project[0]["message"])
    )


@pytest.mark.parametrize(
    "context",
    [
        [1, 2],
        "ana@company.com",
        7,
        {"deep": [[[[[[[[[[1]]]]]]]]]]},
        {"n": 123456789012345678901234567890},
    ],
    ids=["array", "string", "number", "too-deep", "inexact-number"],
)
async def test_a_context_evaluate_segment_refuses_is_bad_user_input(
    gql, project, checkout, context
):
    errors = await evaluate_errors(gql, project.key, context)
    segment_errors = await gql.errors(
        EVALUATE_SEGMENT, {"p": project.key, "k": "internal", "c": context}
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert errors[0]["message"] == segment_errors[0]["message"]


async def test_statements_per_request_do_not_grow_with_the_number_of_rules(
    gql, project, internal, statements
):
    segments = [internal] + [
        await new_segment(
            gql, project.key, name=f"Plan {i}", key=f"plan-{i}", rules=[condition("plan", "EQ", i)]
        )
        for i in range(10)
    ]
    one = await new_flag(gql, project.key, "one")
    many = await new_flag(gql, project.key, "many")
    await set_rules(gql, one["id"], [{"segmentId": internal["id"], "variationKey": "on"}])
    many_rules = [
        rule
        for i, segment in enumerate(segments[1:])
        for rule in (
            {"segmentId": segment["id"], "variationKey": f"v{i}"},
            {"rules": [condition("n", "GT", i)], "logicalOp": "OR", "rolloutKey": f"r{i}"},
        )
    ] + [{"segmentId": internal["id"], "variationKey": "on"}]
    assert (await set_rules(gql, many["id"], many_rules))["userErrors"] == []
    internal_user = {"email": "ana@company.com"}
    await evaluate(gql, project, internal_user, flag="one")  # the token is cached from here on

    counts = {}
    for flag in ("one", "many"):
        async with statements.block() as counted:
            result = await evaluate(gql, project, internal_user, flag=flag)
        counts[flag] = counted.count
        assert result["matchedRule"]["segment"] == {"key": "internal"}
        assert len(result["ruleResults"]) == (1 if flag == "one" else len(many_rules))
    # The flag, the environment, the rules and their segments; the matched rule's segment
    # comes from the segments already read.
    assert counts == {"one": 4, "many": 4}


CONTRACT = Path(__file__).resolve().parent.parent.parent / "shared" / "contract-rules2.graphql"


@pytest.mark.skipif(not CONTRACT.exists(), reason="../shared/contract-rules2.graphql is absent")
def test_the_served_types_are_the_contracts():
    """Until the rest of contract-rules2 is served, its targeting part is checked alone."""
    contract = parse(CONTRACT.read_text())
    served = build_schema(export_sdl())

    def fields(node):
        return {
            f.name.value: (
                print_ast(f.type),
                {a.name.value: print_ast(a.type) for a in f.arguments or ()},
            )
            for f in node.fields
        }

    def served_fields(type_name, only=None):
        return {
            name: (str(f.type), {a: str(arg.type) for a, arg in f.args.items()})
            for name, f in served.type_map[type_name].fields.items()
            if only is None or name in only
        }

    wanted = {
        d.name.value: fields(d)
        for d in contract.definitions
        if d.name.value in ("TargetingRuleResult", "TargetingEvaluation")
        or (d.name.value == "Query" and "evaluateTargeting" in fields(d))
    }
    assert wanted["TargetingRuleResult"] == served_fields("TargetingRuleResult")
    assert wanted["TargetingEvaluation"] == served_fields("TargetingEvaluation")
    assert wanted["Query"] == served_fields("Query", only={"evaluateTargeting"})


async def test_rules_reach_segments_through_references(gql, project, internal):
    """A CUSTOM rule "EU premium and not internal", and a SEGMENT rule whose segment
    references another: both decide with the referenced segments' own definitions."""
    await new_segment(gql, project.key, name="EU premium", key="eu_premium", rules=EU_PREMIUM)
    await new_segment(gql, project.key, name="Staff", key="staff", rules=[ref("internal")])
    staff = await gql(
        'query($p: String!) { segment(projectKey: $p, key: "staff") { id } }', {"p": project.key}
    )
    flag = await new_flag(gql, project.key, "refs")
    payload = await set_rules(
        gql,
        flag["id"],
        [
            {"rules": [ref("eu_premium"), ref("internal", negate=True)], "rolloutKey": "eu"},
            {"segmentId": staff["segment"]["id"], "variationKey": "staff"},
        ],
    )
    assert payload["userErrors"] == []
    eu = {"targetingKey": "u1", "country": "DE", "plan": "premium"}
    result = await evaluate(gql, project, eu, flag="refs")
    assert outcome(result) == (0, None, "eu", [(0, True, "RULES_MATCHED")])
    eu_staff = {**eu, "email": "ana@company.com"}
    result = await evaluate(gql, project, eu_staff, flag="refs")
    assert outcome(result) == (
        1,
        "staff",
        None,
        [(0, False, "RULES_NOT_MATCHED"), (1, True, "RULES_MATCHED")],
    )
    # The VIP is included in "internal", so in "staff" too, through the reference.
    result = await evaluate(gql, project, {"targetingKey": "vip"}, flag="refs")
    assert outcome(result)[:3] == (1, "staff", None)


async def test_a_custom_rule_buckets_percentages_by_the_flag_key(gql, project):
    """DESIGN §12: a CUSTOM rule's PERCENTAGE salt is its flag's key."""
    flag = await new_flag(gql, project.key, "rollout-flag")
    rule = condition("targetingKey", "PERCENTAGE", 50)
    payload = await set_rules(gql, flag["id"], [{"rules": [rule], "variationKey": "half"}])
    assert payload["userErrors"] == []

    def in_bucket(key: str) -> bool:  # computed here from the definition, not by our code
        digest = hashlib.sha256(f"rollout-flag/{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") * 100 < 50 * 2**64

    keys = [f"user-{n}" for n in range(40)]
    results = [
        (await evaluate(gql, project, {"targetingKey": key}, flag="rollout-flag"))["variationKey"]
        for key in keys
    ]
    assert results == ["half" if in_bucket(key) else None for key in keys]
    assert 5 < results.count("half") < 35
