"""Validation of rule input: stored shape, value shapes per operator, problem paths and limits."""

from typing import Any

import pytest

from rules.models import Limits
from rules.operators import OPERATORS
from rules.validate import Problem, validate_rules

PATH = ("input", "rules")


def condition(attribute: str = "a", operator: str = "EQ", value: Any = 1) -> dict[str, Any]:
    return {"condition": {"attribute": attribute, "operator": operator, "value": value}}


def group(logical_op: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"group": {"logicalOp": logical_op, "rules": list(rules)}}


def nested(depth: int) -> dict[str, Any]:
    """`depth` groups, one inside the other, around one condition."""
    rule = condition()
    for _ in range(depth):
        rule = group("AND", rule)
    return rule


DEFAULT_LIMITS = Limits()


def problems(rules: list[Any], limits: Limits = DEFAULT_LIMITS) -> list[Problem]:
    return validate_rules(rules, PATH, limits)[1]


def test_operators_are_the_contracts_twenty_and_percentage() -> None:
    assert len(set(OPERATORS)) == 21
    assert OPERATORS[-1] == "PERCENTAGE"


def test_valid_input_becomes_the_stored_shape() -> None:
    stored, found = validate_rules(
        [
            condition("user.plan", "IN", ["pro", 1, True]),
            group(
                "NOT",
                condition("beta", "EXISTS", None),
                {"condition": {"attribute": "x", "operator": "NOT_EXISTS"}},
            ),
            {"group": {"rules": []}},
        ],
        PATH,
        Limits(),
    )
    assert found == []
    assert stored == [
        {"attribute": "user.plan", "operator": "IN", "value": ["pro", 1, True]},
        {
            "logicalOp": "NOT",
            "rules": [
                {"attribute": "beta", "operator": "EXISTS", "value": None},
                {"attribute": "x", "operator": "NOT_EXISTS", "value": None},
            ],
        },
        {"logicalOp": "AND", "rules": []},  # logicalOp defaults to AND, as in the contract
    ]


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("EQ", "pro"),
        ("EQ", 0),
        ("NEQ", False),
        ("NEQ", -2.5),
        ("IN", ["a"]),
        ("NIN", [1, "1", True] * 333),
        ("GT", 10),
        ("GTE", 2**63 - 1),
        ("LTE", -(2**63)),
        ("LT", -0.5),
        ("LTE", 0),
        ("CONTAINS", ""),
        ("NOT_CONTAINS", "x"),
        ("STARTS_WITH", "x"),
        ("ENDS_WITH", "x"),
        ("EXISTS", None),
        ("NOT_EXISTS", None),
        ("REGEX", r"^[a-z]+@example\.com$"),
        ("REGEX", r"(?i)^(?P<name>beta)"),
        ("REGEX", "a" * 500),
        ("BEFORE", "2026-01-31"),
        ("BEFORE", "2026-01-31T10:00:00Z"),
        ("AFTER", "2026-01-31T10:00:00.123+05:30"),
        ("AFTER", "2026-01-31 10:00"),
        ("SEMVER_EQ", "1.4.0"),
        ("SEMVER_GT", "v2.0.0-beta.1+build.7"),
        ("SEMVER_LT", "0.0.0-0"),
    ],
)
def test_value_shapes_that_are_accepted(operator: str, value: Any) -> None:
    assert problems([condition("a", operator, value)]) == []


@pytest.mark.parametrize(
    ("operator", "value"),
    [
        ("EQ", None),
        ("EQ", [1]),
        ("EQ", {"a": 1}),
        ("NEQ", float("nan")),
        ("NEQ", float("inf")),
        ("GTE", 2**63),
        ("EQ", -(2**63) - 1),
        ("IN", ["a", 10**30]),
        ("EQ", "a\x00b"),
        ("CONTAINS", "\x00"),
        ("IN", ["ok", "n\x00l"]),
        ("IN", []),
        ("IN", "a"),
        ("IN", None),
        ("IN", [[1]]),
        ("IN", [None]),
        ("NIN", [{"a": 1}]),
        ("NIN", ["x"] * 1001),
        ("GT", "5"),
        ("GT", True),
        ("GTE", None),
        ("LT", float("-inf")),
        ("LTE", [1]),
        ("CONTAINS", 5),
        ("NOT_CONTAINS", None),
        ("STARTS_WITH", ["a"]),
        ("ENDS_WITH", True),
        ("EXISTS", "x"),
        ("NOT_EXISTS", False),
        ("REGEX", "(?=lookahead)"),
        ("REGEX", r"(a)\1"),
        ("REGEX", "["),
        ("REGEX", "a" * 501),
        ("REGEX", 5),
        ("REGEX", "\ud800"),
        ("BEFORE", "yesterday"),
        ("BEFORE", "2026-13-01"),
        ("BEFORE", "2026-02-30"),
        ("BEFORE", "20260101"),  # only the extended format
        ("AFTER", 1767225600),  # epoch seconds are for contexts, not for rules
        ("AFTER", "2026-01-31T24:00"),
        ("AFTER", None),
        ("SEMVER_EQ", "1.2"),
        ("SEMVER_EQ", "01.2.3"),
        ("SEMVER_GT", "1.2.3-"),
        ("SEMVER_GT", "1.2.3-01"),
        ("SEMVER_LT", "1.2.3+"),
        ("SEMVER_LT", "V1.2.3"),
        ("SEMVER_LT", 1),
    ],
)
def test_a_wrong_value_shape_is_an_invalid_rule_at_the_value(operator: str, value: Any) -> None:
    [problem] = problems([condition("a", "EQ"), condition("a", operator, value)])
    assert problem.field == ("input", "rules", "1", "condition", "value")
    assert problem.code == "INVALID_RULE"
    assert operator in problem.message


@pytest.mark.parametrize(
    "attribute",
    ["", "a..b", ".a", "a.", ".", "x" * 201, None, 5],
)
def test_a_bad_attribute_is_an_invalid_rule_at_the_attribute(attribute: Any) -> None:
    [problem] = problems([condition(attribute)])
    assert problem == Problem(
        ("input", "rules", "0", "condition", "attribute"), "INVALID_RULE", problem.message
    )


@pytest.mark.parametrize("attribute", ["a", "user.plan", "a.b.c", "x" * 200, "a b.c-d"])
def test_attributes_that_are_accepted(attribute: str) -> None:
    assert problems([condition(attribute)]) == []


def test_an_unknown_operator_is_an_invalid_rule_at_the_operator() -> None:
    [problem] = problems([condition("a", "LIKE", "x")])
    assert (problem.field, problem.code) == (
        ("input", "rules", "0", "condition", "operator"),
        "INVALID_RULE",
    )


def test_an_unknown_logical_op_is_an_invalid_rule_at_the_logical_op() -> None:
    [problem] = problems([group("XOR", condition())])
    assert (problem.field, problem.code) == (
        ("input", "rules", "0", "group", "logicalOp"),
        "INVALID_RULE",
    )


@pytest.mark.parametrize(
    "item",
    [
        {},
        {"condition": None, "group": None},
        {"condition": condition()["condition"], "group": {"logicalOp": "AND", "rules": []}},
        "a rule",
    ],
)
def test_an_item_needs_exactly_one_of_condition_or_group(item: Any) -> None:
    [problem] = problems([condition(), item])
    assert (problem.field, problem.code) == (("input", "rules", "1"), "INVALID_RULE")


def test_problems_inside_groups_carry_the_full_path() -> None:
    found = problems([group("OR", condition(), condition("a", "NOPE"))])
    assert [problem.field for problem in found] == [
        ("input", "rules", "0", "group", "rules", "1", "condition", "operator")
    ]


def test_every_problem_is_reported_not_only_the_first() -> None:
    found = problems(
        [
            condition("a..b", "GT", "x"),
            group("AND", condition("ok", "REGEX", "(?<=x)"), {"group": None}),
            condition("ok", "SEMVER_EQ", "1"),
        ]
    )
    assert [(problem.field, problem.code) for problem in found] == [
        (("input", "rules", "0", "condition", "attribute"), "INVALID_RULE"),
        (("input", "rules", "0", "condition", "value"), "INVALID_RULE"),
        (("input", "rules", "1", "group", "rules", "0", "condition", "value"), "INVALID_RULE"),
        (("input", "rules", "1", "group", "rules", "1"), "INVALID_RULE"),
        (("input", "rules", "2", "condition", "value"), "INVALID_RULE"),
    ]


def test_fifty_conditions_counting_nested_ones_are_allowed() -> None:
    rules = [condition()] * 40 + [group("OR", *[condition()] * 10)]
    assert problems(rules) == []


def test_more_conditions_than_the_limit_exceed_it_at_the_list() -> None:
    rules = [condition()] * 40 + [group("OR", *[condition()] * 11)]
    [problem] = problems(rules)
    assert (problem.field, problem.code) == (PATH, "LIMIT_EXCEEDED")
    assert "51" in problem.message


def test_the_condition_limit_is_a_setting() -> None:
    assert problems([condition()] * 3, Limits(max_conditions=2))[0].code == "LIMIT_EXCEEDED"


def test_five_nested_groups_are_allowed() -> None:
    assert problems([nested(5)]) == []


def test_a_sixth_nested_group_exceeds_the_depth_once() -> None:
    [problem] = problems([condition(), nested(7)])
    sixth = ("input", "rules", "1") + ("group", "rules", "0") * 5 + ("group",)
    assert (problem.field, problem.code) == (sixth, "LIMIT_EXCEEDED")


def test_the_depth_limit_is_a_setting() -> None:
    assert problems([nested(2)], Limits(max_depth=1))[0].code == "LIMIT_EXCEEDED"
    assert problems([nested(1)], Limits(max_depth=1)) == []


def test_an_empty_group_is_allowed() -> None:
    assert problems([group("NOT")]) == []


def test_null_rules_are_an_empty_list() -> None:
    assert validate_rules(None, PATH, Limits()) == ([], [])


def test_rules_that_are_not_a_list_are_an_invalid_rule() -> None:
    [problem] = problems("nope")  # type: ignore[arg-type]
    assert (problem.field, problem.code) == (PATH, "INVALID_RULE")
