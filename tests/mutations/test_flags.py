"""createEnvironment, createFlag, setTargetingRules and archiveFlag (DESIGN §6)."""

import pytest

from tests.mutations.helpers import (
    CREATE_ENVIRONMENT,
    FLAG_RULES,
    archive_flag,
    attach,
    condition,
    create_flag,
    create_segment,
    delete_segment,
    errors_of,
    group,
    new_flag,
    new_segment,
    segment_by_key,
    set_rules,
    state,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


USAGE = """
query($p: String!, $k: String!) {
  segment(projectKey: $p, key: $k) {
    usage { usageCount usedInFlags { flag { key archived } environment { key } ruleCount } }
  }
}"""


async def usage(gql, project, key: str) -> dict:
    return (await gql(USAGE, {"p": project.key, "k": key}))["segment"]["usage"]


async def rules_of(gql, project, flag_key: str, environment: str = "production") -> list[dict]:
    data = await gql(FLAG_RULES, {"p": project.key, "k": flag_key, "env": environment})
    return data["flag"]["targetingRules"]


async def create_environment(gql, project_key: str, key: str, name: str) -> dict:
    data = await gql(
        CREATE_ENVIRONMENT, {"i": {"projectKey": project_key, "key": key, "name": name}}
    )
    return data["createEnvironment"]


# --- createEnvironment --------------------------------------------------------------------


async def test_create_environment_adds_it_to_the_project(gql, project):
    payload = await create_environment(gql, project.key, "qa", "  QA  ")
    assert payload["userErrors"] == []
    assert (payload["environment"]["key"], payload["environment"]["name"]) == ("qa", "QA")
    environments = (await state(gql, project.key))["project"]["environments"]
    assert [e["key"] for e in environments] == ["production", "staging", "qa"]
    flag = await new_flag(gql, project.key)
    assert (await set_rules(gql, flag["id"], [{"rules": [], "variationKey": "on"}], "qa"))[
        "userErrors"
    ] == []


async def test_create_environment_with_a_taken_key_is_key_taken(gql, project):
    before = await state(gql, project.key)
    payload = await create_environment(gql, project.key, "staging", "Staging 2")
    assert payload["environment"] is None
    assert errors_of(payload) == [(("input", "key"), "KEY_TAKEN")]
    assert await state(gql, project.key) == before


async def test_create_environment_reports_every_problem_and_writes_nothing(
    gql, project, other_project
):
    before = await state(gql, project.key)
    payload = await create_environment(gql, project.key, "bad key", " ")
    assert errors_of(payload) == [
        (("input", "key"), "INVALID_KEY"),
        (("input", "name"), "INVALID_INPUT"),
    ]
    payload = await create_environment(gql, other_project.key, "qa", "QA")
    assert errors_of(payload) == [(("input", "projectKey"), "NOT_FOUND")]
    assert await state(gql, project.key) == before
    theirs = (await state(gql, other_project.key, other_project.editor))["project"]["environments"]
    assert [e["key"] for e in theirs] == ["production", "staging"]


# --- createFlag ---------------------------------------------------------------------------


async def test_create_flag_stores_it_live(gql, project):
    payload = await create_flag(gql, project.key, "new-checkout", description="Rewrite of checkout")
    assert payload["userErrors"] == []
    flag = payload["flag"]
    assert (flag["key"], flag["name"], flag["description"], flag["archived"]) == (
        "new-checkout",
        "New-Checkout",
        "Rewrite of checkout",
        False,
    )
    assert (await gql(FLAG_RULES, {"p": project.key, "k": "new-checkout", "env": "production"}))[
        "flag"
    ] == {
        **flag,
        "targetingRules": [],
    }


async def test_create_flag_with_a_taken_key_is_key_taken(gql, project):
    await new_flag(gql, project.key, "checkout")
    before = await state(gql, project.key)
    payload = await create_flag(gql, project.key, "checkout")
    assert errors_of(payload) == [(("input", "key"), "KEY_TAKEN")]
    assert await state(gql, project.key) == before


async def test_create_flag_reports_every_problem_and_writes_nothing(gql, project, other_project):
    before = await state(gql, project.key)
    payload = await create_flag(gql, project.key, "k" * 101, name="", description="d" * 501)
    assert errors_of(payload) == [
        (("input", "key"), "INVALID_KEY"),
        (("input", "name"), "INVALID_INPUT"),
        (("input", "description"), "INVALID_INPUT"),
    ]
    assert errors_of(await create_flag(gql, other_project.key, "x")) == [
        (("input", "projectKey"), "NOT_FOUND")
    ]
    assert await state(gql, project.key) == before


# --- setTargetingRules --------------------------------------------------------------------


async def test_set_targeting_rules_stores_them_in_list_order(gql, project):
    beta = await new_segment(gql, project.key, name="Beta")
    gamma = await new_segment(gql, project.key, name="Gamma")
    flag = await new_flag(gql, project.key, "checkout")
    payload = await set_rules(
        gql,
        flag["id"],
        [
            {"segmentId": gamma["id"], "variationKey": "on"},
            {
                "logicalOp": "OR",
                "rules": [condition("plan", "EQ", "pro"), group(condition("seats", "GT", 5))],
                "rolloutKey": "half",
            },
            {"segmentId": beta["id"], "rolloutKey": "tenth"},
            {"rules": [condition("country", "EXISTS")], "variationKey": "off"},
        ],
    )
    assert payload["userErrors"] == []
    stored = await rules_of(gql, project, "checkout")
    assert payload["flag"]["production"] == stored
    assert [r["orderIndex"] for r in stored] == [0, 1, 2, 3]
    assert [r["kind"] for r in stored] == ["SEGMENT", "CUSTOM", "SEGMENT", "CUSTOM"]
    assert [r["segment"] and r["segment"]["key"] for r in stored] == ["gamma", None, "beta", None]
    assert [r["logicalOp"] for r in stored] == [None, "OR", None, "AND"]
    assert [(r["variationKey"], r["rolloutKey"]) for r in stored] == [
        ("on", None),
        (None, "half"),
        (None, "tenth"),
        ("off", None),
    ]
    assert stored[0]["rules"] == [] and stored[2]["rules"] == []
    assert stored[1]["rules"] == [
        {"__typename": "Condition", "attribute": "plan", "operator": "EQ", "value": "pro"},
        {
            "__typename": "ConditionGroup",
            "logicalOp": "AND",
            "rules": [
                {"__typename": "Condition", "attribute": "seats", "operator": "GT", "value": 5}
            ],
        },
    ]


async def test_set_targeting_rules_replaces_the_whole_list_of_one_environment(gql, project):
    beta = await new_segment(gql, project.key, name="Beta")
    flag = await new_flag(gql, project.key, "checkout")
    await attach(gql, flag["id"], beta["id"], environment="staging")
    await set_rules(
        gql, flag["id"], [{"rules": [], "variationKey": "a"}, {"rules": [], "variationKey": "b"}]
    )
    payload = await set_rules(gql, flag["id"], [{"segmentId": beta["id"], "variationKey": "c"}])
    assert payload["userErrors"] == []
    production = await rules_of(gql, project, "checkout")
    assert [(r["orderIndex"], r["kind"], r["variationKey"]) for r in production] == [
        (0, "SEGMENT", "c")
    ]
    staging = await rules_of(gql, project, "checkout", "staging")
    assert [(r["segment"]["key"], r["variationKey"]) for r in staging] == [("beta", "on")]
    assert (await set_rules(gql, flag["id"], []))["userErrors"] == []
    assert await rules_of(gql, project, "checkout") == []
    assert len(await rules_of(gql, project, "checkout", "staging")) == 1


@pytest.mark.parametrize("serves", [{}, {"variationKey": "on", "rolloutKey": "half"}])
async def test_a_rule_serves_exactly_one_of_variation_or_rollout(gql, project, serves):
    flag = await new_flag(gql, project.key)
    before = await state(gql, project.key)
    payload = await set_rules(
        gql, flag["id"], [{"rules": [], "variationKey": "on"}, {"rules": [], **serves}]
    )
    assert payload["flag"] is None
    assert errors_of(payload) == [(("input", "rules", "1"), "INVALID_INPUT")]
    assert await state(gql, project.key) == before


@pytest.mark.parametrize(
    "rule",
    [
        {"variationKey": "on"},
        {"logicalOp": "AND", "variationKey": "on"},
        {"segmentId": "SEGMENT", "rules": [], "variationKey": "on"},
        {"segmentId": "SEGMENT", "logicalOp": "OR", "variationKey": "on"},
    ],
)
async def test_a_rule_is_either_a_segment_or_inline_rules(gql, project, rule):
    segment = await new_segment(gql, project.key)
    flag = await new_flag(gql, project.key)
    if rule.get("segmentId"):
        rule = {**rule, "segmentId": segment["id"]}
    before = await state(gql, project.key)
    payload = await set_rules(gql, flag["id"], [rule])
    assert errors_of(payload) == [(("input", "rules", "0"), "INVALID_RULE")]
    assert await state(gql, project.key) == before


async def test_inline_rules_are_validated_like_segment_rules(gql, project):
    flag = await new_flag(gql, project.key)
    before = await state(gql, project.key)
    payload = await set_rules(
        gql,
        flag["id"],
        [
            {"rules": [], "variationKey": "on"},
            {
                "rules": [
                    condition("a", "EXISTS"),
                    group(condition("email", "REGEX", "(")),
                    condition("", "GT", 1),
                ],
                "variationKey": "on",
            },
        ],
    )
    assert errors_of(payload) == [
        (
            ("input", "rules", "1", "rules", "1", "group", "rules", "0", "condition", "value"),
            "INVALID_RULE",
        ),
        (("input", "rules", "1", "rules", "2", "condition", "attribute"), "INVALID_RULE"),
    ]
    assert await state(gql, project.key) == before


async def test_inline_rules_obey_the_rule_limits(gql, project):
    flag = await new_flag(gql, project.key)
    rules = [condition(f"a{i}", "EXISTS") for i in range(51)]
    payload = await set_rules(gql, flag["id"], [{"rules": rules, "variationKey": "on"}])
    assert errors_of(payload) == [(("input", "rules", "0", "rules"), "LIMIT_EXCEEDED")]


async def test_a_deleted_segment_cannot_be_attached(gql, project):
    live = await new_segment(gql, project.key, name="Live")
    gone = await new_segment(gql, project.key, name="Gone")
    await delete_segment(gql, gone["id"])
    flag = await new_flag(gql, project.key, "checkout")
    await attach(gql, flag["id"], live["id"])
    before = await state(gql, project.key)
    payload = await set_rules(
        gql,
        flag["id"],
        [
            {"rules": [], "variationKey": "first"},
            {"segmentId": gone["id"], "variationKey": "on"},
        ],
    )
    assert errors_of(payload) == [(("input", "rules", "1", "segmentId"), "SEGMENT_DELETED")]
    assert await state(gql, project.key) == before  # the old list is intact


async def test_segments_of_another_project_or_unknown_ids_are_not_found(
    gql, project, other_project
):
    theirs = (
        await create_segment(gql, other_project.key, token=other_project.editor, name="Theirs")
    )["segment"]
    flag = await new_flag(gql, project.key)
    before = await state(gql, project.key)
    payload = await set_rules(
        gql,
        flag["id"],
        [
            {"segmentId": theirs["id"], "variationKey": "on"},
            {"segmentId": "U2VnbWVudDo5OTk", "variationKey": "on"},
            {"segmentId": flag["id"], "variationKey": "on"},
            {"segmentId": "not-an-id", "variationKey": "on"},
        ],
    )
    assert sorted(errors_of(payload)) == [
        (("input", "rules", str(i), "segmentId"), "NOT_FOUND") for i in range(4)
    ]
    assert await state(gql, project.key) == before


async def test_every_problem_across_rules_is_reported(gql, project):
    gone = await new_segment(gql, project.key, name="Gone")
    await delete_segment(gql, gone["id"])
    flag = await new_flag(gql, project.key)
    payload = await set_rules(
        gql,
        flag["id"],
        [
            {"rules": [condition("a", "GT", "x")]},
            {"segmentId": "nope", "variationKey": "v", "rolloutKey": "r"},
            {"variationKey": "v"},
            {"segmentId": gone["id"], "variationKey": "v"},
        ],
        environment="nowhere",
    )
    assert sorted(errors_of(payload)) == [
        (("input", "environmentKey"), "NOT_FOUND"),
        (("input", "rules", "0"), "INVALID_INPUT"),
        (("input", "rules", "0", "rules", "0", "condition", "value"), "INVALID_RULE"),
        (("input", "rules", "1"), "INVALID_INPUT"),
        (("input", "rules", "1", "segmentId"), "NOT_FOUND"),
        (("input", "rules", "2"), "INVALID_RULE"),
        (("input", "rules", "3", "segmentId"), "SEGMENT_DELETED"),
    ]


async def test_set_targeting_rules_needs_a_known_flag_and_environment(gql, project, other_project):
    flag = await new_flag(gql, project.key)
    theirs = (
        await gql(
            "mutation($i: CreateFlagInput!) { createFlag(input: $i) { flag { id } } }",
            {"i": {"projectKey": other_project.key, "key": "theirs", "name": "Theirs"}},
            token=other_project.editor,
        )
    )["createFlag"]["flag"]
    rule = [{"rules": [], "variationKey": "on"}]
    assert errors_of(await set_rules(gql, flag["id"], rule, "nowhere")) == [
        (("input", "environmentKey"), "NOT_FOUND")
    ]
    assert errors_of(await set_rules(gql, theirs["id"], rule)) == [
        (("input", "flagId"), "NOT_FOUND")
    ]
    assert errors_of(await set_rules(gql, "RmxhZzo5OTk", rule)) == [
        (("input", "flagId"), "NOT_FOUND")
    ]
    assert await rules_of(gql, project, flag["key"]) == []


async def test_attaching_makes_the_segment_used(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    flag = await new_flag(gql, project.key, "checkout")
    await attach(gql, flag["id"], segment["id"])
    assert (await usage(gql, project, "beta"))["usedInFlags"] == [
        {
            "flag": {"key": "checkout", "archived": False},
            "environment": {"key": "production"},
            "ruleCount": 1,
        }
    ]


# --- archiveFlag --------------------------------------------------------------------------


async def test_archive_flag_stops_its_rules_counting_as_usage(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    flag = await new_flag(gql, project.key, "checkout")
    await attach(gql, flag["id"], segment["id"])
    payload = await archive_flag(gql, flag["id"])
    assert payload["userErrors"] == []
    assert payload["flag"]["archived"] is True
    assert await usage(gql, project, "beta") == {"usageCount": 0, "usedInFlags": []}
    assert len(await rules_of(gql, project, "checkout")) == 1  # the rules stay, as history


async def test_archiving_an_archived_flag_changes_nothing(gql, project):
    flag = await new_flag(gql, project.key)
    await archive_flag(gql, flag["id"])
    before = await state(gql, project.key)
    payload = await archive_flag(gql, flag["id"])
    assert payload["userErrors"] == [] and payload["flag"]["archived"] is True
    assert await state(gql, project.key) == before


async def test_archive_of_an_unknown_flag_is_not_found(gql, project):
    assert errors_of(await archive_flag(gql, "RmxhZzo5OTk")) == [(("input", "flagId"), "NOT_FOUND")]
    assert errors_of(await archive_flag(gql, "U2VnbWVudDox")) == [
        (("input", "flagId"), "NOT_FOUND")
    ]


async def test_deleted_segment_is_still_shown_on_an_archived_flag(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    flag = await new_flag(gql, project.key, "checkout")
    await attach(gql, flag["id"], segment["id"])
    await archive_flag(gql, flag["id"])
    assert (await delete_segment(gql, segment["id"]))["userErrors"] == []
    assert await segment_by_key(gql, project.key, "beta") is None


@pytest.mark.parametrize("served", [{"variationKey": ""}, {"rolloutKey": "r" * 101}])
async def test_served_keys_are_1_to_100_characters(gql, project, served):
    flag = await new_flag(gql, project.key)
    segment = await new_segment(gql, project.key, name="Served")
    before = await state(gql, project.key)
    payload = await set_rules(gql, flag["id"], [{"segmentId": segment["id"], **served}])
    name = next(iter(served))
    assert errors_of(payload) == [(("input", "rules", "0", name), "INVALID_INPUT")]
    assert await state(gql, project.key) == before
