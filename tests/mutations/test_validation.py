"""Input validation of createSegment and updateSegment (DESIGN §3): every problem is reported,
each with its path into the input and its code, and bad input writes nothing."""

from typing import Any

import pytest
import pytest_asyncio

from tests.mutations.helpers import (
    condition,
    create_segment,
    errors_of,
    group,
    state,
    update_segment,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def refused(gql, project, expected: list[tuple[tuple[str, ...], str]], **fields: Any) -> None:
    """createSegment with these fields gives exactly `expected` (path, code) and writes nothing."""
    before = await state(gql, project.key)
    payload = await create_segment(gql, project.key, **{"name": "Valid name", **fields})
    assert payload["segment"] is None
    assert errors_of(payload) == expected
    assert all(e["message"] for e in payload["userErrors"])
    assert await state(gql, project.key) == before


async def accepted(gql, project, **fields: Any) -> dict:
    payload = await create_segment(gql, project.key, **{"name": "Valid name", **fields})
    assert payload["userErrors"] == []
    return payload["segment"]


KEY = ("input", "key")
NAME = ("input", "name")
DESCRIPTION = ("input", "description")
TAGS = ("input", "tags")


def rule_path(*parts: str) -> tuple[str, ...]:
    return ("input", "rules", *parts)


# --- key, name, description, tags, targets ---------------------------------------------------


@pytest.mark.parametrize(
    "key", ["", "has space", "dot.ted", "slash/", "ümlaut", "newline\n", "k" * 101]
)
async def test_a_key_outside_the_pattern_or_length_is_invalid_key(gql, project, key):
    await refused(gql, project, [(KEY, "INVALID_KEY")], key=key)


@pytest.mark.parametrize("key", ["k", "k" * 100, "Mixed-Case_09"])
async def test_keys_of_1_to_100_pattern_characters_are_accepted(gql, project, key):
    assert (await accepted(gql, project, key=key))["key"] == key


@pytest.mark.parametrize("name", ["", "   ", "n" * 101, " " + "n" * 101])
async def test_a_name_outside_1_to_100_characters_after_trimming_is_invalid_input(
    gql, project, name
):
    await refused(gql, project, [(NAME, "INVALID_INPUT")], name=name)


async def test_a_name_of_100_characters_with_surrounding_spaces_is_accepted(gql, project):
    assert (await accepted(gql, project, name="  " + "n" * 100 + "  "))["name"] == "n" * 100


async def test_a_description_over_500_characters_is_invalid_input(gql, project):
    await refused(gql, project, [(DESCRIPTION, "INVALID_INPUT")], description="d" * 501)
    assert (await accepted(gql, project, description="d" * 500))["description"] == "d" * 500


async def test_more_than_20_tags_exceed_the_limit(gql, project):
    await refused(gql, project, [(TAGS, "LIMIT_EXCEEDED")], tags=[f"t{i}" for i in range(21)])
    assert len((await accepted(gql, project, tags=[f"t{i}" for i in range(20)]))["tags"]) == 20


@pytest.mark.parametrize("tag", ["", "has space", "t" * 51, "comma,tag", "ümlaut", "newline\n"])
async def test_a_tag_outside_1_to_50_pattern_characters_is_invalid_input_at_its_index(
    gql, project, tag
):
    await refused(gql, project, [((*TAGS, "1"), "INVALID_INPUT")], tags=["ok", tag])


async def test_tags_of_the_tag_alphabet_are_accepted(gql, project):
    tags = ["a.b:c-d_E9", "t" * 50]
    assert (await accepted(gql, project, tags=tags))["tags"] == tags


@pytest.mark.parametrize(("field", "target"), [("included", ""), ("excluded", "x" * 257)])
async def test_a_target_outside_1_to_256_characters_is_invalid_input(gql, project, field, target):
    await refused(
        gql, project, [(("input", field, "1"), "INVALID_INPUT")], **{field: ["ok", target]}
    )


# --- rules: value shape per operator ------------------------------------------------------

GOOD_VALUES = [
    ("EQ", "pro"),
    ("EQ", 3.5),
    ("NEQ", True),
    ("IN", ["DE", 1, False]),
    ("NIN", ["x"]),
    ("GT", 5),
    ("GTE", -1.5),
    ("LT", 0),
    ("LTE", 10),
    ("CONTAINS", "@acme.com"),
    ("NOT_CONTAINS", ""),
    ("STARTS_WITH", "+49"),
    ("ENDS_WITH", ".de"),
    ("EXISTS", None),
    ("NOT_EXISTS", None),
    ("REGEX", r"^\d{3}-[a-z]+$"),
    ("BEFORE", "2026-01-31"),
    ("AFTER", "2026-01-31T10:00:00+05:30"),
    ("SEMVER_EQ", "1.4.0"),
    ("SEMVER_GT", "v2.0.0-beta.1+build.7"),
    ("SEMVER_LT", "0.0.1"),
]


async def test_every_operator_accepts_its_value_shape_and_stores_it(gql, project):
    rules = [
        condition(f"attr{i}", operator, value) for i, (operator, value) in enumerate(GOOD_VALUES)
    ]
    segment = await accepted(gql, project, rules=rules)
    assert [(r["operator"], r["value"]) for r in segment["rules"]] == GOOD_VALUES


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("EQ", None),
        ("EQ", [1]),
        ("NEQ", {"a": 1}),
        ("IN", []),
        ("IN", "DE"),
        ("IN", [None]),
        ("NIN", [["nested"]]),
        ("NIN", ["x"] * 1001),
        ("GT", "5"),
        ("GTE", True),
        ("LT", None),
        ("LTE", [1]),
        ("CONTAINS", 5),
        ("NOT_CONTAINS", None),
        ("STARTS_WITH", ["a"]),
        ("ENDS_WITH", True),
        ("EXISTS", "x"),
        ("NOT_EXISTS", False),
        ("REGEX", "[unclosed"),
        ("REGEX", "a" * 501),
        ("REGEX", 5),
        ("BEFORE", "yesterday"),
        ("BEFORE", "2026-13-01"),
        ("AFTER", 1767225600),
        ("AFTER", "2026-02-30"),
        ("SEMVER_EQ", "1.2"),
        ("SEMVER_GT", "01.2.3"),
        ("SEMVER_LT", 1),
    ],
)
async def test_a_wrong_value_shape_is_invalid_rule_at_the_value(gql, project, operator, value):
    rules = [
        condition("plan", "EQ", "pro"),
        condition("plan", "EQ", "pro"),
        condition("attr", operator, value),
    ]
    await refused(
        gql, project, [(rule_path("2", "condition", "value"), "INVALID_RULE")], rules=rules
    )


async def test_a_regex_value_of_500_characters_is_accepted(gql, project):
    await accepted(gql, project, rules=[condition("a", "REGEX", "a" * 500)])


async def test_in_accepts_1000_values(gql, project):
    await accepted(gql, project, rules=[condition("a", "IN", [str(i) for i in range(1000)])])


@pytest.mark.parametrize("attribute", ["", "a..b", ".a", "a.", "x" * 201])
async def test_an_attribute_that_is_not_a_dotted_path_is_invalid_rule(gql, project, attribute):
    await refused(
        gql,
        project,
        [(rule_path("0", "condition", "attribute"), "INVALID_RULE")],
        rules=[condition(attribute, "EXISTS")],
    )


async def test_dotted_attributes_up_to_200_characters_are_accepted(gql, project):
    await accepted(
        gql, project, rules=[condition("user.plan.tier", "EXISTS"), condition("a" * 200, "EXISTS")]
    )


async def test_an_unknown_operator_is_a_graphql_error_and_writes_nothing(gql, project):
    before = await state(gql, project.key)
    errors = await gql.errors(
        "mutation($i: CreateSegmentInput!) { createSegment(input: $i) { segment { id } } }",
        {"i": {"projectKey": project.key, "name": "x", "rules": [condition("a", "LIKE", "x")]}},
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await state(gql, project.key) == before


# --- rules: structure and limits ----------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        {},
        {"condition": None, "group": None},
        {"condition": {"attribute": "a", "operator": "EXISTS"}, "group": {"rules": []}},
    ],
)
async def test_a_rule_needs_exactly_one_of_condition_or_group(gql, project, item):
    await refused(
        gql, project, [(rule_path("1"), "INVALID_RULE")], rules=[condition("a", "EXISTS"), item]
    )


async def test_problems_inside_groups_carry_the_full_path(gql, project):
    rules = [
        condition("a", "EXISTS"),
        group(condition("b", "EXISTS"), group(condition("c", "GT", "five"), logical_op="OR")),
    ]
    await refused(
        gql,
        project,
        [
            (
                rule_path("1", "group", "rules", "1", "group", "rules", "0", "condition", "value"),
                "INVALID_RULE",
            )
        ],
        rules=rules,
    )


def nested(depth: int) -> dict[str, Any]:
    """`depth` groups inside each other around one condition."""
    rule = condition("a", "EXISTS")
    for _ in range(depth):
        rule = group(rule)
    return rule


async def test_groups_nest_five_deep(gql, project):
    await accepted(gql, project, rules=[nested(5)])


async def test_a_sixth_nested_group_exceeds_the_depth_limit(gql, project):
    sixth = rule_path("0", *["group", "rules", "0"] * 5, "group")
    await refused(gql, project, [(sixth, "LIMIT_EXCEEDED")], rules=[nested(6)])


def conditions_in_groups(total: int) -> list[dict[str, Any]]:
    """`total` conditions, most of them nested in groups of ten."""
    rules = [
        group(*[condition(f"a{g}_{i}", "EXISTS") for i in range(10)]) for g in range(total // 10)
    ]
    return rules + [condition(f"b{i}", "EXISTS") for i in range(total % 10)]


async def test_fifty_conditions_counting_nested_ones_are_allowed(gql, project):
    await accepted(gql, project, rules=conditions_in_groups(50))


async def test_conditions_are_counted_through_nesting_against_the_limit(gql, project):
    await refused(
        gql, project, [(("input", "rules"), "LIMIT_EXCEEDED")], rules=conditions_in_groups(51)
    )


# --- every problem is reported -------------------------------------------------------------


async def test_several_problems_in_one_input_are_all_reported(gql, project):
    await refused(
        gql,
        project,
        [
            (KEY, "INVALID_KEY"),
            (NAME, "INVALID_INPUT"),
            (DESCRIPTION, "INVALID_INPUT"),
            ((*TAGS, "0"), "INVALID_INPUT"),
            (rule_path("0", "condition", "attribute"), "INVALID_RULE"),
            (rule_path("1"), "INVALID_RULE"),
            (rule_path("2", "condition", "value"), "INVALID_RULE"),
            (rule_path("3", "group", "rules", "0", "condition", "value"), "INVALID_RULE"),
            (("input", "excluded", "0"), "INVALID_INPUT"),
        ],
        key="bad key",
        name=" ",
        description="d" * 501,
        tags=["bad tag"],
        rules=[
            condition("", "EXISTS"),
            {},
            condition("version", "SEMVER_GT", "latest"),
            group(condition("email", "REGEX", "(")),
        ],
        excluded=[""],
    )


async def test_one_condition_with_several_problems_reports_each(gql, project):
    await refused(
        gql,
        project,
        [
            (rule_path("0", "condition", "attribute"), "INVALID_RULE"),
            (rule_path("0", "condition", "value"), "INVALID_RULE"),
        ],
        rules=[condition("a..b", "IN", [])],
    )


# --- updateSegment validates the same way ------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def segment(gql, project):
    payload = await create_segment(gql, project.key, name="Update target")
    assert payload["userErrors"] == []
    return payload["segment"]


async def test_update_reports_every_problem_and_writes_nothing(gql, project, segment):
    before = await state(gql, project.key)
    payload = await update_segment(
        gql,
        segment["id"],
        key="no spaces allowed",
        name="",
        tags=["ok"] * 21,
        rules=[condition("ok", "EXISTS"), condition("ok", "EXISTS"), condition("age", "GT", "old")],
        included=["x" * 257],
    )
    assert payload["segment"] is None
    assert errors_of(payload) == [
        (KEY, "INVALID_KEY"),
        (NAME, "INVALID_INPUT"),
        (TAGS, "LIMIT_EXCEEDED"),
        (rule_path("2", "condition", "value"), "INVALID_RULE"),
        (("input", "included", "0"), "INVALID_INPUT"),
    ]
    assert await state(gql, project.key) == before


async def test_update_applies_the_rule_limits(gql, project, segment):
    before = await state(gql, project.key)
    payload = await update_segment(gql, segment["id"], rules=[nested(6)] + conditions_in_groups(50))
    assert [code for _, code in errors_of(payload)] == ["LIMIT_EXCEEDED", "LIMIT_EXCEEDED"]
    assert await state(gql, project.key) == before
