"""Properties of the rule engine that hold for generated rule trees and JSON contexts."""

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.evaluate import compile_segment, flatten_context
from rules.models import LOGICAL_OPS, Limits, is_group
from rules.operators import OPERATORS
from rules.validate import validate_rules

ATTRIBUTES = ["a", "b", "a.b", "user.plan", "targetingKey"]
KEYS = st.sampled_from(["a", "b", "a.b", "user", "plan", "targetingKey"]) | st.text(max_size=4)
TRICKY_STRINGS = [
    "",
    "1",
    "-1.5",
    "1e3",
    "true",
    "FALSE",
    "pro",
    "a",
    "v1.2.3",
    "1.2.3",
    "2.0.0",
    "1.0.0-rc.1",
    "2023-06-01",
    "2024-01-01",
    "2024-01-01T10:00:00+02:00",
    "1704067200",
    "\ud800",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(TRICKY_STRINGS)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)
# Values likely to meet the generated conditions, under the attributes they name.
attribute_values = (
    st.sampled_from(TRICKY_STRINGS)
    | st.integers(-3, 3)
    | st.lists(st.sampled_from(TRICKY_STRINGS) | st.integers(-3, 3), max_size=3)
    | json_values
)
contexts = st.tuples(
    st.fixed_dictionaries(
        {},
        optional={
            "a": attribute_values,
            "b": attribute_values,
            "a.b": attribute_values,
            "user": st.fixed_dictionaries({}, optional={"plan": attribute_values}),
            "targetingKey": attribute_values,
        },
    ),
    st.dictionaries(KEYS, json_values, max_size=3),
).map(lambda parts: {**parts[1], **parts[0]})

rule_scalars = (
    st.booleans()
    | st.integers(-3, 3)
    | st.floats(-3, 3, allow_nan=False)
    | st.sampled_from(TRICKY_STRINGS[:-1])
)
numbers = st.integers(-3, 3) | st.floats(-3, 3, allow_nan=False)
# Rule values are what validation accepts: no NUL (PostgreSQL cannot store it).
texts = st.sampled_from(["", "a", "pro", "1", "tru"]) | st.text(
    st.characters(blacklist_characters="\x00"), max_size=3
)
VALUES = {
    "EQ": rule_scalars,
    "NEQ": rule_scalars,
    "IN": st.lists(rule_scalars, min_size=1, max_size=4),
    "NIN": st.lists(rule_scalars, min_size=1, max_size=4),
    "GT": numbers,
    "GTE": numbers,
    "LT": numbers,
    "LTE": numbers,
    "CONTAINS": texts,
    "NOT_CONTAINS": texts,
    "STARTS_WITH": texts,
    "ENDS_WITH": texts,
    "EXISTS": st.none(),
    "NOT_EXISTS": st.none(),
    "REGEX": st.sampled_from([r"\d", "^a", "pro$", "", "(?i)TRUE", "a|b", r"^\w+$"]),
    "BEFORE": st.sampled_from(["2024-01-01", "2024-01-01T10:00:00Z", "1970-01-01T01:00+01:00"]),
    "AFTER": st.sampled_from(["2024-01-01", "2023-12-31T23:59:59.5Z"]),
    "SEMVER_EQ": st.sampled_from(["1.2.3", "v1.2.3+b", "1.0.0-rc.1"]),
    "SEMVER_GT": st.sampled_from(["1.0.0", "0.0.1-alpha"]),
    "SEMVER_LT": st.sampled_from(["2.0.0", "1.0.0-rc.1"]),
    "PERCENTAGE": st.sampled_from([0, 33.333, 50, 100]),
}

conditions = st.sampled_from(OPERATORS).flatmap(
    lambda operator: st.fixed_dictionaries(
        {
            "attribute": st.sampled_from(ATTRIBUTES),
            "operator": st.just(operator),
            "value": VALUES[operator],
        }
    )
)
rules = st.recursive(
    conditions,
    lambda children: st.fixed_dictionaries(
        {"logicalOp": st.sampled_from(LOGICAL_OPS), "rules": st.lists(children, max_size=3)}
    ),
    max_leaves=8,
)
rule_lists = st.lists(rules, max_size=4)
logical_ops = st.sampled_from(LOGICAL_OPS)


def matches(logical_op: str, rules: list[Any], context: Any) -> bool:
    segment = compile_segment(
        salt="test", logical_op=logical_op, rules=rules, force=False, included=[], excluded=[]
    )
    return segment.evaluate(context).matched


def leaf_count(rules: list[Any]) -> int:
    return sum(leaf_count(rule["rules"]) if is_group(rule) else 1 for rule in rules)


def as_input(rule: Any) -> dict[str, Any]:
    if is_group(rule):
        return {
            "group": {"logicalOp": rule["logicalOp"], "rules": list(map(as_input, rule["rules"]))}
        }
    return {"condition": dict(rule)}


@settings(max_examples=300, deadline=None)
@given(rule_lists, contexts)
def test_or_matches_when_any_rule_matches(rules: list[Any], context: Any) -> None:
    assert matches("OR", rules, context) is any(matches("AND", [rule], context) for rule in rules)


@settings(max_examples=300, deadline=None)
@given(rule_lists, contexts)
def test_not_is_the_negation_of_and(rules: list[Any], context: Any) -> None:
    if rules:
        assert matches("NOT", rules, context) is not matches("AND", rules, context)
    else:
        assert matches("NOT", rules, context) is matches("AND", rules, context) is False


@settings(max_examples=300, deadline=None)
@given(rules, contexts)
def test_a_group_of_one_rule_equals_the_rule(rule: Any, context: Any) -> None:
    alone = matches("AND", [rule], context)
    for logical_op in ("AND", "OR"):
        assert matches("AND", [{"logicalOp": logical_op, "rules": [rule]}], context) is alone
    assert matches("AND", [{"logicalOp": "NOT", "rules": [rule]}], context) is not alone


@settings(max_examples=500, deadline=None)
@given(
    logical_ops,
    rule_lists,
    contexts,
    st.booleans(),
    st.lists(st.sampled_from(["u1", "1", "pro"]), max_size=2),
    st.lists(st.sampled_from(["u1", "1", "pro"]), max_size=2),
)
def test_evaluate_never_raises_and_agrees_with_matches_flat(
    logical_op: str,
    rules: list[Any],
    context: Any,
    force: bool,
    included: list[str],
    excluded: list[str],
) -> None:
    segment = compile_segment(
        salt="test",
        logical_op=logical_op,
        rules=rules,
        force=force,
        included=included,
        excluded=excluded,
    )
    evaluation = segment.evaluate(context)
    flat = flatten_context(context)
    assert segment.matches_flat(flat) is evaluation.matched
    if evaluation.reason.startswith("RULES_"):
        assert len(evaluation.conditions) == leaf_count(rules)
        for outcome in evaluation.conditions:
            assert outcome.actual is flat.get(outcome.attribute)
    else:
        assert evaluation.conditions == []


@settings(max_examples=200, deadline=None)
@given(rule_lists)
def test_stored_rules_validate_back_to_themselves(rules: list[Any]) -> None:
    stored, problems = validate_rules(
        [as_input(rule) for rule in rules], ("input", "rules"), Limits(max_depth=100)
    )
    assert problems == []
    assert stored == rules


@settings(max_examples=300, deadline=None)
@given(json_values, json_values, contexts)
def test_arbitrary_stored_data_never_raises(logical_op: Any, rules: Any, context: Any) -> None:
    trees: list[Any] = [rules, [rules], [{"logicalOp": "OR", "rules": [rules]}]]
    for tree in trees:
        segment = compile_segment(
            salt="test", logical_op=logical_op, rules=tree, force=False, included=rules, excluded=[]
        )
        assert segment.matches_flat(flatten_context(context)) is segment.evaluate(context).matched
