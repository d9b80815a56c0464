"""How a segment decides: logical operators, nesting, empty lists, force and individual targets."""

from typing import Any

import pytest

from rules.evaluate import (
    ConditionOutcome,
    compile_rules,
    compile_segment,
    evaluate_rules,
    flatten_context,
)

A = {"attribute": "a", "operator": "EQ", "value": 1}
B = {"attribute": "b", "operator": "EQ", "value": 1}
C = {"attribute": "c", "operator": "EQ", "value": 1}


def segment(
    logical_op: str = "AND",
    rules: list[Any] | None = None,
    *,
    force: bool = False,
    included: list[str] | None = None,
    excluded: list[str] | None = None,
) -> Any:
    return compile_segment(
        salt="test",
        logical_op=logical_op,
        rules=rules if rules is not None else [],
        force=force,
        included=included or [],
        excluded=excluded or [],
    )


def context(a: bool, b: bool, c: bool = False) -> dict[str, int]:
    return {"a": int(a), "b": int(b), "c": int(c)}


def group(logical_op: str, *rules: Any) -> dict[str, Any]:
    return {"logicalOp": logical_op, "rules": list(rules)}


@pytest.mark.parametrize("a", [True, False])
@pytest.mark.parametrize("b", [True, False])
@pytest.mark.parametrize(
    ("logical_op", "decide"),
    [
        ("AND", lambda a, b: a and b),
        ("OR", lambda a, b: a or b),
        ("NOT", lambda a, b: not (a and b)),  # NOT over several rules is !(A AND B)
    ],
)
def test_logical_operators(logical_op: str, decide: Any, a: bool, b: bool) -> None:
    evaluation = segment(logical_op, [A, B]).evaluate(context(a, b))
    assert evaluation.matched is decide(a, b)
    assert evaluation.reason == ("RULES_MATCHED" if decide(a, b) else "RULES_NOT_MATCHED")


@pytest.mark.parametrize("logical_op", ["AND", "OR", "NOT"])
def test_a_group_decides_like_a_segment(logical_op: str) -> None:
    for a in (True, False):
        for b in (True, False):
            top = segment(logical_op, [A, B]).evaluate(context(a, b)).matched
            nested = segment("AND", [group(logical_op, A, B)]).evaluate(context(a, b)).matched
            assert nested is top


def test_nested_groups_combine() -> None:
    # a AND (b OR NOT c)
    rules = [A, group("OR", B, group("NOT", C))]
    expected = {
        (True, True, True): True,
        (True, False, True): False,
        (True, False, False): True,
        (False, True, False): False,
    }
    for (a, b, c), matched in expected.items():
        assert segment("AND", rules).evaluate(context(a, b, c)).matched is matched


@pytest.mark.parametrize("logical_op", ["AND", "OR", "NOT"])
def test_an_empty_rule_list_never_matches(logical_op: str) -> None:
    evaluation = segment(logical_op, []).evaluate({"a": 1})
    assert (evaluation.matched, evaluation.reason) == (False, "RULES_NOT_MATCHED")
    assert evaluation.conditions == []


@pytest.mark.parametrize("logical_op", ["AND", "OR", "NOT"])
def test_an_empty_nested_group_is_a_rule_that_never_matches(logical_op: str) -> None:
    assert segment("AND", [A, group(logical_op)]).evaluate({"a": 1}).matched is False
    assert segment("OR", [A, group(logical_op)]).evaluate({"a": 1}).matched is True
    assert segment("NOT", [group(logical_op)]).evaluate({}).matched is True


def test_a_segment_without_rules_matches_its_included_targets_only() -> None:
    assert segment(included=["u1"]).evaluate({"targetingKey": "u1"}).reason == "INCLUDED"
    assert segment(included=["u1"]).evaluate({"targetingKey": "u2"}).matched is False


def test_force_matches_everyone_before_anything_else() -> None:
    forced = segment("AND", [A], force=True, excluded=["u1"])
    evaluation = forced.evaluate({"targetingKey": "u1", "a": 2})
    assert (evaluation.matched, evaluation.reason, evaluation.conditions) == (True, "FORCED", [])
    assert forced.matches_flat({"targetingKey": "u1"}) is True


def test_excluded_beats_included_and_rules() -> None:
    both = segment("AND", [A], included=["u1"], excluded=["u1"])
    evaluation = both.evaluate({"targetingKey": "u1", "a": 1})
    assert (evaluation.matched, evaluation.reason, evaluation.conditions) == (
        False,
        "EXCLUDED",
        [],
    )
    assert both.matches_flat({"targetingKey": "u1", "a": 1}) is False


def test_included_matches_even_when_rules_do_not() -> None:
    evaluation = segment("AND", [A], included=["u1"]).evaluate({"targetingKey": "u1", "a": 2})
    assert (evaluation.matched, evaluation.reason, evaluation.conditions) == (
        True,
        "INCLUDED",
        [],
    )


@pytest.mark.parametrize(
    ("targeting_key", "listed"),
    [(42, "42"), (1.5, "1.5"), ("42", "42")],
)
def test_a_numeric_targeting_key_is_read_in_its_json_text_form(
    targeting_key: Any, listed: str
) -> None:
    assert segment(included=[listed]).evaluate({"targetingKey": targeting_key}).matched


@pytest.mark.parametrize("targeting_key", [True, None, ["u1"], {"id": "u1"}])
def test_a_targeting_key_that_is_not_a_string_or_number_is_ignored(targeting_key: Any) -> None:
    evaluation = segment(included=["u1", "True", "true"]).evaluate({"targetingKey": targeting_key})
    assert evaluation.reason == "RULES_NOT_MATCHED"


def test_targets_outside_the_rules_path_let_the_rules_decide() -> None:
    evaluation = segment("AND", [A], included=["u1"], excluded=["u2"]).evaluate(
        {"targetingKey": "u3", "a": 1}
    )
    assert (evaluation.matched, evaluation.reason) == (True, "RULES_MATCHED")


def test_conditions_report_every_leaf_in_tree_order_without_short_circuit() -> None:
    rules = [
        {"attribute": "user.plan", "operator": "EQ", "value": "pro"},
        group(
            "OR",
            {"attribute": "tags", "operator": "CONTAINS", "value": "beta"},
            {"attribute": "missing", "operator": "NOT_EXISTS", "value": None},
        ),
        {"attribute": "age", "operator": "GT", "value": 18},
    ]
    evaluation = segment("AND", rules).evaluate(
        {"user": {"plan": "basic"}, "tags": ["beta"], "age": "21"}
    )
    assert evaluation.matched is False
    assert evaluation.conditions == [
        ConditionOutcome("user.plan", "EQ", False, "basic"),
        ConditionOutcome("tags", "CONTAINS", True, ["beta"]),
        ConditionOutcome("missing", "NOT_EXISTS", True, None),
        ConditionOutcome("age", "GT", True, "21"),
    ]


def test_dotted_attributes_reach_nested_and_literally_dotted_keys() -> None:
    rules = [
        {"attribute": "user.plan", "operator": "EQ", "value": "pro"},
        {"attribute": "org.tier", "operator": "EQ", "value": "gold"},
    ]
    assert segment("AND", rules).evaluate({"user": {"plan": "pro"}, "org.tier": "gold"}).matched


def test_an_attribute_naming_an_object_is_absent() -> None:
    rules = [{"attribute": "user", "operator": "EXISTS", "value": None}]
    assert segment("AND", rules).evaluate({"user": {"plan": "pro"}}).matched is False


def test_a_context_that_is_not_an_object_is_an_empty_context() -> None:
    rules = [{"attribute": "a", "operator": "NOT_EXISTS", "value": None}]
    for context_value in ([1, 2], "a", 3, None):
        assert segment("AND", rules).evaluate(context_value).matched is True


def test_compile_rules_and_evaluate_rules_decide_like_a_segment() -> None:
    rules: list[Any] = [A, group("NOT", B)]
    flat = flatten_context({"a": 1, "b": 2})
    assert compile_rules("AND", rules, "test")(flat) is True
    assert evaluate_rules("AND", rules, flat, "test") is True
    assert evaluate_rules("AND", rules, {"a": 1, "b": 1}, "test") is False


@pytest.mark.parametrize(
    "rule",
    [
        {"attribute": "a", "operator": "NOPE", "value": 1},
        {"attribute": "a", "operator": "NEQ", "value": [1]},
        {"attribute": "a", "operator": "NIN", "value": "x"},
        {"attribute": "a", "operator": "GT", "value": "1"},
        {"attribute": "a", "operator": "REGEX", "value": "(?=x)"},
        {"attribute": "a", "operator": "BEFORE", "value": "soon"},
        {"attribute": "a", "operator": "SEMVER_GT", "value": 1},
        {"attribute": ["a"], "operator": "NEQ", "value": 1},
        {"operator": "NEQ", "value": 1},
        {"logicalOp": "XOR", "rules": []},
        {"logicalOp": "NOT", "rules": "nope"},
        "not a rule",
        None,
    ],
)
def test_stored_rules_that_cannot_compile_never_match(rule: Any) -> None:
    # NOT and NIN/NEQ would otherwise turn a broken rule into a match.
    broken = segment("OR", [rule])
    assert broken.evaluate({"a": 5, "b": 5}).matched is False
    assert broken.matches_flat({"a": 5}) is False


def test_a_broken_top_level_never_matches() -> None:
    assert segment("XOR", [A]).evaluate({"a": 1}).matched is False
    broken: Any = {"rules": "x", "included": None, "excluded": 7}
    assert (
        compile_segment(salt="test", logical_op="AND", force=False, **broken)
        .evaluate({"a": 1})
        .matched
        is False
    )
