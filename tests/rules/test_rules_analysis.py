"""The rule analysis (rules/analysis.py): the examples of DESIGN §15, and its soundness
against the evaluator on generated rule trees and contexts."""

from collections import Counter
from itertools import product
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.analysis import INPUT_NESTING, STORED_NESTING, WarningCode, analyze_rules
from rules.evaluate import compile_segment, flatten_context


def cond(attribute: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"attribute": attribute, "operator": operator, "value": value, **extra}


def group(logical_op: str, *rules: Any) -> dict[str, Any]:
    return {"logicalOp": logical_op, "rules": list(rules)}


def codes(logical_op: str, rules: list[Any], **kwargs: Any) -> list[tuple[str, tuple[str, ...]]]:
    warnings = analyze_rules(logical_op, rules, root=("rules",), nesting=STORED_NESTING, **kwargs)
    return [(warning.code.value, warning.field) for warning in warnings]


# DESIGN §15's examples, as the evaluator decides them.


def test_in_and_nin_of_the_same_values_is_a_contradiction() -> None:
    rules = [cond("x", "IN", ["a", "b"]), cond("x", "NIN", ["b", "a"])]
    assert codes("AND", rules) == [("CONTRADICTION", ("rules",))]


def test_eq_1_and_eq_2_is_no_contradiction_because_a_list_holds_both() -> None:
    rules = [cond("a", "EQ", 1), cond("a", "EQ", 2)]
    assert codes("AND", rules) == []
    segment = compile_segment(
        logical_op="AND",
        rules=rules,
        force=False,
        included=[],
        excluded=[],
        salt="s",  # type: ignore[arg-type]
    )
    assert segment.evaluate({"a": [1, 2]}).matched


def test_gt_5_and_lt_3_is_no_contradiction_because_a_list_holds_both() -> None:
    rules = [cond("n", "GT", 5), cond("n", "LT", 3)]
    assert codes("AND", rules) == []
    segment = compile_segment(
        logical_op="AND",
        rules=rules,
        force=False,
        included=[],
        excluded=[],
        salt="s",  # type: ignore[arg-type]
    )
    assert segment.evaluate({"n": [6, 2]}).matched


def test_a_condition_and_not_exists_of_its_attribute_is_a_contradiction() -> None:
    rules = [cond("n", "GT", 5), cond("n", "NOT_EXISTS")]
    assert codes("AND", rules) == [("CONTRADICTION", ("rules",))]


def test_eq_and_neq_of_one_value_contradict_in_and_and_cover_everything_in_or() -> None:
    rules = [cond("plan", "EQ", "pro"), cond("plan", "NEQ", "pro")]
    assert codes("AND", rules) == [("CONTRADICTION", ("rules",))]
    assert codes("OR", rules) == [("ALWAYS_TRUE", ("rules",))]


def test_case_insensitive_eq_does_not_contradict_case_sensitive_neq() -> None:
    # "PRO" is EQ "pro" case-insensitively and NEQ "pro" case-sensitively.
    rules = [cond("plan", "EQ", "pro", caseInsensitive=True), cond("plan", "NEQ", "pro")]
    assert codes("AND", rules) == []
    rules = [cond("plan", "EQ", "pro"), cond("plan", "NEQ", "pro", caseInsensitive=True)]
    assert codes("AND", rules) == [("CONTRADICTION", ("rules",))]


def test_a_number_and_its_numeric_string_or_boolean_are_not_taken_for_each_other() -> None:
    assert codes("AND", [cond("a", "EQ", True), cond("a", "NEQ", 1)]) == []
    assert codes("AND", [cond("a", "EQ", "1"), cond("a", "NEQ", 1)]) == []


def test_exists_or_not_exists_always_matches() -> None:
    assert codes("OR", [cond("a", "EXISTS"), cond("a", "NOT_EXISTS")]) == [
        ("ALWAYS_TRUE", ("rules",))
    ]


def test_contains_or_not_contains_is_no_tautology_for_numbers_and_missing() -> None:
    assert codes("OR", [cond("a", "CONTAINS", "x"), cond("a", "NOT_CONTAINS", "x")]) == []
    assert codes("AND", [cond("a", "CONTAINS", "x"), cond("a", "NOT_CONTAINS", "x")]) == [
        ("CONTRADICTION", ("rules",))
    ]


def test_a_not_group_of_a_contradiction_always_matches_and_points_at_the_group() -> None:
    rules = [cond("b", "EQ", 1), group("NOT", cond("a", "EQ", 1), cond("a", "NEQ", 1))]
    assert codes("AND", rules) == [("ALWAYS_TRUE", ("rules", "1"))]


def test_a_contradiction_in_a_nested_group_is_reported_once_at_that_group() -> None:
    inner = group("AND", cond("a", "IN", [1]), cond("a", "NIN", [1, 2]))
    assert codes("AND", [cond("b", "EQ", 1), inner]) == [("CONTRADICTION", ("rules", "1"))]


def test_an_empty_nested_group_matches_no_one_but_empty_top_level_rules_are_no_warning() -> None:
    assert codes("AND", []) == []
    assert codes("OR", [group("AND"), cond("a", "EQ", 1)]) == [("CONTRADICTION", ("rules", "0"))]


def test_duplicates_are_reported_at_the_repeat() -> None:
    rules = [cond("a", "EQ", 1), cond("b", "EQ", 2), cond("a", "EQ", 1.0)]
    assert codes("AND", rules) == [("DUPLICATE_CONDITION", ("rules", "2"))]


def test_a_weaker_sibling_is_subsumed_in_and_a_stronger_one_in_or() -> None:
    rules = [cond("n", "GT", 3), cond("n", "GT", 5)]
    assert codes("AND", rules) == [("SUBSUMED", ("rules", "0"))]
    assert codes("OR", rules) == [("SUBSUMED", ("rules", "1"))]
    assert codes("AND", [cond("n", "EXISTS"), cond("n", "EQ", 1)]) == [("SUBSUMED", ("rules", "0"))]
    assert codes("AND", [cond("x", "IN", [1, 2]), cond("x", "EQ", 1)]) == [
        ("SUBSUMED", ("rules", "0"))
    ]


def test_paths_follow_the_input_shape_for_writes() -> None:
    rules = [group("OR", cond("a", "EQ", 1), cond("a", "EQ", 1))]
    warnings = analyze_rules("AND", rules, root=("input", "rules"), nesting=INPUT_NESTING)
    assert [(w.code, w.field) for w in warnings] == [
        (WarningCode.DUPLICATE_CONDITION, ("input", "rules", "0", "group", "rules", "1"))
    ]
    assert "repeats the rule at input.rules.0.group.rules.0" in warnings[0].message


def test_unknown_attribute_and_type_mismatch_need_the_catalogue() -> None:
    rules = [cond("user.plna", "EQ", "pro"), cond("age", "GT", 3), cond("targetingKey", "EQ", "u")]
    assert codes("AND", rules) == []
    known = {"user.plan": {"string"}, "age": {"boolean"}}
    found = analyze_rules(
        "AND", rules, root=("rules",), nesting=STORED_NESTING, known_attributes=known
    )
    assert [(w.code, w.field) for w in found] == [
        (WarningCode.UNKNOWN_ATTRIBUTE, ("rules", "0")),
        (WarningCode.TYPE_MISMATCH, ("rules", "1")),
    ]
    assert "user.plan" in found[0].message
    # A numeric string fits a number comparison; an array fits whatever tests its elements.
    fitting = {"age": {"string"}, "tags": {"array"}}
    rules = [cond("age", "GT", 3), cond("tags", "EQ", 1)]
    assert codes("AND", rules, known_attributes=fitting) == []


def test_malformed_stored_rules_never_raise() -> None:
    for rules in ([1, None, {"logicalOp": "XOR"}, {"segmentId": "x"}], "rules", [{}]):
        analyze_rules("AND", rules, root=("rules",), nesting=STORED_NESTING)
    analyze_rules("NAND", [], root=("rules",), nesting=STORED_NESTING)


# Soundness: whatever the analysis claims, the evaluator agrees for every context tried.

ATTRIBUTES = ["a", "b"]
SCALARS = [1, 1.0, 2, -1, "1", "2", "x", "X", "xy", True, False, "true", "TRUE", ""]
numbers = st.sampled_from([1, 2, -1, 0, 1.5])
rule_values = {
    "EQ": st.sampled_from(SCALARS),
    "NEQ": st.sampled_from(SCALARS),
    "IN": st.lists(st.sampled_from(SCALARS), min_size=1, max_size=3),
    "NIN": st.lists(st.sampled_from(SCALARS), min_size=1, max_size=3),
    "GT": numbers,
    "GTE": numbers,
    "LT": numbers,
    "LTE": numbers,
    "CONTAINS": st.sampled_from(["x", "X", "1", ""]),
    "NOT_CONTAINS": st.sampled_from(["x", "X", "1", ""]),
    "STARTS_WITH": st.sampled_from(["x", "X"]),
    "EXISTS": st.none(),
    "NOT_EXISTS": st.none(),
    "PERCENTAGE": st.sampled_from([0, 50, 100]),
    "REGEX": st.sampled_from(["x", "^1$"]),
}
CASE_INSENSITIVE = {"EQ", "NEQ", "IN", "NIN", "CONTAINS", "NOT_CONTAINS", "STARTS_WITH", "REGEX"}


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(st.sampled_from(sorted(rule_values)))
    rule = cond(draw(st.sampled_from(ATTRIBUTES)), operator, draw(rule_values[operator]))
    if operator in CASE_INSENSITIVE and draw(st.booleans()):
        rule["caseInsensitive"] = True
    return rule


references = st.builds(
    lambda segment_id, negate: {"segmentId": segment_id, "negate": negate},
    st.sampled_from([1, 2]),
    st.booleans(),
)


@st.composite
def biased_pairs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A condition with its negation, a copy, or a close variant: contradictions,
    tautologies and redundancy are likely, not rare."""
    first = draw(conditions())
    opposite = {
        "EQ": "NEQ",
        "NEQ": "EQ",
        "IN": "NIN",
        "NIN": "IN",
        "EXISTS": "NOT_EXISTS",
        "NOT_EXISTS": "EXISTS",
        "CONTAINS": "NOT_CONTAINS",
        "NOT_CONTAINS": "CONTAINS",
        "GT": "LTE",
        "GTE": "LT",
        "LT": "GTE",
        "LTE": "GT",
    }
    second = dict(first)
    change = draw(st.sampled_from(["negate", "copy", "fold", "value", "not"]))
    if change == "negate" and first["operator"] in opposite:
        second["operator"] = opposite[first["operator"]]
    elif change == "fold" and first["operator"] in CASE_INSENSITIVE:
        second["caseInsensitive"] = not first.get("caseInsensitive", False)
    elif change == "value":
        second["value"] = draw(rule_values[first["operator"]])
    elif change == "not":
        return [first, group("NOT", second)]
    return [first, second]


leaves = conditions() | references
rule_trees = st.recursive(
    leaves,
    lambda children: st.builds(
        lambda op, rules, pairs: group(op, *rules, *pairs),
        st.sampled_from(["AND", "OR", "NOT"]),
        st.lists(children, max_size=3),
        st.lists(biased_pairs(), max_size=1).map(lambda pairs: [r for p in pairs for r in p]),
    ),
    max_leaves=8,
)
top_levels = st.tuples(
    st.sampled_from(["AND", "OR", "NOT"]),
    st.lists(rule_trees, max_size=3),
    st.lists(biased_pairs(), max_size=2).map(lambda pairs: [r for p in pairs for r in p]),
).map(lambda parts: (parts[0], parts[1] + parts[2]))

# Every combination of these per attribute: missing, null, each scalar, lists (with both of
# two values, empty, nested), wrong types; plus generated ones.
ATTRIBUTE_VALUES: list[Any] = [
    None,
    *SCALARS,
    1.5,
    0,
    "v1.2.3",
    [],
    [1, 2],
    ["x", "X"],
    [1, "x", True],
    [-1, 2],
    [["x"]],
    [{"k": 1}],
    [None],
    {"k": "x"},
]
MISSING = object()
FIXED_CONTEXTS = [
    {
        **({} if a is MISSING else {"a": a}),
        **({} if b is MISSING else {"b": b}),
        "targetingKey": "u1",
    }
    for a, b in product([MISSING, *ATTRIBUTE_VALUES], [MISSING, 1, "x", [1, "x"], None])
] + [
    {"a": a, **({} if b is MISSING else {"b": b}), "targetingKey": "u2"}
    for a, b in product([1, "x", [1, "x"], None], [MISSING, *ATTRIBUTE_VALUES])
]
generated_values = st.sampled_from(ATTRIBUTE_VALUES) | st.lists(
    st.sampled_from(SCALARS + [None]), max_size=4
)
generated_contexts = st.fixed_dictionaries(
    {"targetingKey": st.sampled_from(["u1", "u2", "x", "1"])},
    optional={"a": generated_values, "b": generated_values},
)
# Referenced segments: one matching on b, one never matching (missing from the closure is
# id 2, which never matches negated or not).
REFERENCES: Any = {
    1: {
        "key": "one",
        "logical_op": "AND",
        "rules": [cond("b", "EQ", 1)],
        "force": False,
        "included": [],
        "excluded": [],
        "salt": "one",
    }
}


def compiled(logical_op: str, rules: list[Any]) -> Any:
    segment = compile_segment(
        logical_op=logical_op,
        rules=rules,
        force=False,
        included=[],
        excluded=[],
        salt="t",
        references=REFERENCES,
    )
    return segment.matches_flat


FLAT_FIXED = [flatten_context(context) for context in FIXED_CONTEXTS]
CLAIMS: Counter[str] = Counter()


def group_at(logical_op: str, rules: list[Any], path: tuple[str, ...]) -> tuple[str, list[Any]]:
    """The (logicalOp, rules) of the group at a warning's path (() is the top level)."""
    for step in path:
        if step == "rules":
            continue
        rule = rules[int(step)]
        logical_op, rules = rule["logicalOp"], rule["rules"]
    return logical_op, rules


@settings(max_examples=400, deadline=None)
@given(top_levels, st.lists(generated_contexts, max_size=10))
def test_every_claim_of_the_analysis_holds_under_the_evaluator(
    tree: tuple[str, list[Any]], extra_contexts: list[Any]
) -> None:
    logical_op, rules = tree
    contexts = FLAT_FIXED + [flatten_context(context) for context in extra_contexts]
    for warning in analyze_rules(logical_op, rules, root=(), nesting=("rules",)):
        assert warning.field is not None
        CLAIMS[warning.code.value] += 1
        if warning.code in (WarningCode.CONTRADICTION, WarningCode.ALWAYS_TRUE):
            matches = compiled(*group_at(logical_op, rules, warning.field))
            expected = warning.code is WarningCode.ALWAYS_TRUE
            for context in contexts:
                assert matches(context) is expected, (warning, context)
        else:
            assert warning.code in (WarningCode.DUPLICATE_CONDITION, WarningCode.SUBSUMED)
            *parent, index = warning.field
            op, group_rules = group_at(logical_op, rules, tuple(parent))
            without = group_rules[: int(index)] + group_rules[int(index) + 1 :]
            matches, matches_without = compiled(op, group_rules), compiled(op, without)
            for context in contexts:
                assert matches_without(context) is matches(context), (warning, context)


def test_the_soundness_test_met_every_kind_of_claim() -> None:
    """The generator is biased enough that each claim was tested many times (this runs
    after the property test, in file order)."""
    if not CLAIMS:
        return  # the property test was deselected
    for code in ("CONTRADICTION", "ALWAYS_TRUE", "DUPLICATE_CONDITION", "SUBSUMED"):
        assert CLAIMS[code] >= 20, CLAIMS
