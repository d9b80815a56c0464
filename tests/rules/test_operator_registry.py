"""The operator registry reaches every layer: adding an entry without its pieces fails here."""

import pytest

from api.rest.models import RuleCondition
from api.rest.openapi import openapi_document
from db.rules_sql.compiler import LEAVES
from rules.evaluate import compile_segment
from rules.models import Limits
from rules.operators import BY_REST_NAME, OPERATORS, REGISTRY
from rules.validate import validate_rules
from schema.build import build_schema

# A stored value each operator takes, a context it matches, and a value it refuses. A new
# operator without a line here fails `test_every_operator_has_a_sample`.
SAMPLES = {
    "EQ": ("pro", {"a": "pro"}, [1]),
    "NEQ": ("pro", {"a": "free"}, {"x": 1}),
    "IN": (["pro", "team"], {"a": "team"}, []),
    "NIN": (["pro"], {"a": "free"}, "pro"),
    "GT": (3, {"a": 4}, "3"),
    "GTE": (3, {"a": 3}, None),
    "LT": (3, {"a": 2}, True),
    "LTE": (3, {"a": 3}, [3]),
    "CONTAINS": ("ro", {"a": "pro"}, 1),
    "NOT_CONTAINS": ("x", {"a": "pro"}, None),
    "STARTS_WITH": ("p", {"a": "pro"}, 5),
    "ENDS_WITH": ("o", {"a": "pro"}, False),
    "EXISTS": (None, {"a": 0}, "yes"),
    "NOT_EXISTS": (None, {}, 1),
    "REGEX": ("^p.o$", {"a": "pro"}, "(?=a)"),
    "BEFORE": ("2026-01-01", {"a": "2025-12-31"}, "yesterday"),
    "AFTER": ("2026-01-01", {"a": "2026-01-02T00:00:00Z"}, 20260101),
    "SEMVER_EQ": ("1.2.3", {"a": "v1.2.3"}, "1.2"),
    "SEMVER_GT": ("1.2.3", {"a": "1.10.0"}, "01.2.3"),
    "SEMVER_LT": ("1.2.3", {"a": "1.2.3-beta"}, 123),
    "PERCENTAGE": (100, {"a": "user-1"}, 12.3456),
}
# The operators that take caseInsensitive (DESIGN §12); every other one refuses it.
CASE_INSENSITIVE = {
    "EQ",
    "NEQ",
    "IN",
    "NIN",
    "CONTAINS",
    "NOT_CONTAINS",
    "STARTS_WITH",
    "ENDS_WITH",
    "REGEX",
}


def _condition(operator: str, value: object) -> list[dict[str, object]]:
    return [{"condition": {"attribute": "a", "operator": operator, "value": value}, "group": None}]


def test_every_operator_has_a_sample() -> None:
    assert set(SAMPLES) == set(OPERATORS)


@pytest.mark.parametrize("operator", OPERATORS)
def test_validation_reads_the_registry(operator: str) -> None:
    value, _, refused = SAMPLES[operator]
    assert validate_rules(_condition(operator, value), ("rules",), Limits())[1] == []
    problems = validate_rules(_condition(operator, refused), ("rules",), Limits())[1]
    assert [(p.field, p.code) for p in problems] == [
        (("rules", "0", "condition", "value"), "INVALID_RULE")
    ]


@pytest.mark.parametrize("operator", OPERATORS)
def test_the_evaluator_reads_the_registry(operator: str) -> None:
    value, context, _ = SAMPLES[operator]
    stored, _ = validate_rules(_condition(operator, value), ("rules",), Limits())
    segment = compile_segment(
        salt="test", logical_op="AND", rules=stored, force=False, included=[], excluded=[]
    )
    assert segment.evaluate(context).matched


@pytest.mark.parametrize("operator", OPERATORS)
def test_case_insensitive_is_accepted_exactly_on_the_string_operators(operator: str) -> None:
    value, _, _ = SAMPLES[operator]
    rules = _condition(operator, value)
    rules[0]["condition"]["caseInsensitive"] = True  # type: ignore[index]
    stored, problems = validate_rules(rules, ("rules",), Limits())
    if operator in CASE_INSENSITIVE:
        assert problems == []
        assert stored[0]["caseInsensitive"] is True  # type: ignore[typeddict-item]
    else:
        assert [(p.field, p.code) for p in problems] == [
            (("rules", "0", "condition", "caseInsensitive"), "INVALID_RULE")
        ]
    assert {name for name, entry in REGISTRY.items() if entry.case_insensitive} == CASE_INSENSITIVE


def test_sql_has_a_leaf_per_operator() -> None:
    assert list(LEAVES) == list(REGISTRY)


def test_graphql_enum_is_the_registry() -> None:
    enum = build_schema()._schema.type_map["ConditionOperator"]
    assert list(enum.values) == list(OPERATORS)
    for name, entry in REGISTRY.items():
        assert enum.values[name].description == entry.description


def test_rest_names_are_the_registry() -> None:
    assert len(BY_REST_NAME) == len(REGISTRY)  # no two operators share a REST name
    for rest, entry in BY_REST_NAME.items():
        condition = RuleCondition(type="rule", attribute="a", operator=rest, value=None)
        assert BY_REST_NAME[condition.operator].name == entry.name
    documented = openapi_document()
    assert sorted(BY_REST_NAME) == sorted(_enum_values(documented, "operator"))


def _enum_values(document: object, field: str) -> list[str]:
    """The enum of the first schema property named `field` in the OpenAPI document."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            prop = (
                node.get("properties", {}).get(field)
                if isinstance(node.get("properties"), dict)
                else None
            )
            if isinstance(prop, dict) and "enum" in prop:
                return list(prop["enum"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    raise AssertionError(f"no enum for {field!r} in the document")
