"""The segment evaluator: flattens contexts and decides membership with rules compiled once.

Contexts are JSON values as json.loads produces them (dict, list, str, int, float, bool, None);
any other type is a type mismatch. Nothing here raises on a context or on stored rules: a
condition that cannot be compiled, or a value of the wrong type, is simply a non-match.
"""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules.models import LOGICAL_OPS, StoredRule, is_group
from rules.values import (
    compile_regex,
    is_number,
    number_text,
    parse_iso_instant,
    parse_semver,
    regex_search,
    to_bool,
    to_instant,
    to_number,
)

# A condition's test gets the attribute's value from the flattened context (None when absent:
# every operator treats absent and null alike).
Test = Callable[[Any], bool]
Matcher = Callable[[dict[str, Any]], bool]
Reporter = Callable[[dict[str, Any], list["ConditionOutcome"]], bool]

# Stored rules are validated to depth 5; this only stops corrupt data from exhausting the stack.
_MAX_COMPILE_DEPTH = 32

_SCALAR_TYPES = frozenset((str, int, float, bool))


def flatten_context(context: object) -> dict[str, Any]:
    """Nested objects become dotted leaf paths: {"user": {"plan": "pro"}} → {"user.plan": "pro"}.

    A key that already holds a dot is kept as is; arrays and scalars are leaves; an empty object
    has no leaves and so leaves nothing. When two paths collide ({"a": {"b": 1}, "a.b": 2}) the
    later one in iteration order wins. A context that is not an object flattens to {}.
    """
    flat: dict[str, Any] = {}
    if type(context) is not dict:
        return flat
    # An explicit stack rather than recursion, so no nesting depth can exhaust Python's stack.
    stack = [("", iter(context.items()))]
    while stack:
        prefix, items = stack[-1]
        for key, value in items:
            if type(value) is dict:
                if value:
                    stack.append((f"{prefix}{key}.", iter(value.items())))
                    break
            else:
                flat[f"{prefix}{key}"] = value
        else:
            stack.pop()
    return flat


@dataclass(slots=True)
class ConditionOutcome:
    attribute: str
    operator: str
    matched: bool
    actual: Any  # the value in the flattened context, None when absent


@dataclass(slots=True)
class Evaluation:
    matched: bool
    reason: str  # FORCED, INCLUDED, EXCLUDED, RULES_MATCHED or RULES_NOT_MATCHED
    conditions: list[ConditionOutcome]


@dataclass(frozen=True, slots=True)
class _Leaf:
    attribute: str
    operator: str
    test: Test


@dataclass(frozen=True, slots=True)
class _Group:
    logical_op: str
    children: tuple["_Leaf | _Group", ...]


class CompiledSegment:
    """A segment ready to evaluate many contexts; build it with `compile_segment`."""

    __slots__ = ("_excluded", "_force", "_included", "_matches_rules", "_report_rules")

    def __init__(
        self, force: bool, included: frozenset[str], excluded: frozenset[str], tree: _Group
    ):
        self._force = force
        self._included = included
        self._excluded = excluded
        self._matches_rules = _matcher(tree)
        self._report_rules = _reporter(tree)

    def evaluate(self, context: object) -> Evaluation:
        """Decide a raw JSON context, reporting every leaf condition when the rules decide."""
        if self._force:
            return Evaluation(True, "FORCED", [])
        flat = flatten_context(context)
        key = _targeting_key(flat)
        if key in self._excluded:
            return Evaluation(False, "EXCLUDED", [])
        if key in self._included:
            return Evaluation(True, "INCLUDED", [])
        outcomes: list[ConditionOutcome] = []
        matched = self._report_rules(flat, outcomes)
        return Evaluation(matched, "RULES_MATCHED" if matched else "RULES_NOT_MATCHED", outcomes)

    def matches_flat(self, flat: dict[str, Any]) -> bool:
        """The same decision as `evaluate` for an already flattened context, short-circuiting."""
        if self._force:
            return True
        if self._excluded or self._included:
            key = _targeting_key(flat)
            if key in self._excluded:
                return False
            if key in self._included:
                return True
        return self._matches_rules(flat)


def compile_segment(
    *,
    logical_op: str,
    rules: list[StoredRule],
    force: bool,
    included: list[str],
    excluded: list[str],
) -> CompiledSegment:
    """Compile a segment's stored definition; compile once, evaluate many times."""
    return CompiledSegment(
        force=force is True,
        included=_targets(included),
        excluded=_targets(excluded),
        tree=_compile_group(logical_op, rules, depth=0),
    )


def compile_rules(logical_op: str, rules: list[StoredRule]) -> Matcher:
    """A short-circuiting predicate over flattened contexts for a stored rule list."""
    return _matcher(_compile_group(logical_op, rules, depth=0))


def evaluate_rules(logical_op: str, rules: list[StoredRule], flat: dict[str, Any]) -> bool:
    """Whether a flattened context matches a stored rule list (compiles each call)."""
    return compile_rules(logical_op, rules)(flat)


def _targets(targets: object) -> frozenset[str]:
    if type(targets) is not list:
        return frozenset()
    return frozenset(target for target in targets if type(target) is str)


def _targeting_key(flat: dict[str, Any]) -> str | None:
    key = flat.get("targetingKey")
    if isinstance(key, str):
        return key
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return number_text(key)
    return None


# Compiling the tree.


def _compile_group(logical_op: object, rules: object, depth: int) -> _Group:
    if depth > _MAX_COMPILE_DEPTH or logical_op not in LOGICAL_OPS or type(rules) is not list:
        return _Group("AND", ())  # never matches
    return _Group(str(logical_op), tuple(_compile_rule(rule, depth) for rule in rules))


def _compile_rule(rule: object, depth: int) -> _Leaf | _Group:
    if type(rule) is not dict:
        return _Group("AND", ())  # never matches, reports nothing
    if is_group(rule):  # type: ignore[arg-type]
        return _compile_group(rule.get("logicalOp"), rule.get("rules"), depth + 1)
    attribute, op, value = rule.get("attribute"), rule.get("operator"), rule.get("value")
    build = _TEST_BUILDERS.get(op) if type(op) is str else None
    test = build(value) if build is not None and type(attribute) is str else None
    return _Leaf(str(attribute), str(op), test or _never)


def _matcher(group: _Group) -> Matcher:
    """A short-circuiting closure for a group: direct conditions first, then nested groups."""
    if not group.children:
        return _never  # an empty rule list never matches, whatever its operator
    leaves = tuple(
        (child.attribute, child.test) for child in group.children if isinstance(child, _Leaf)
    )
    groups = tuple(_matcher(child) for child in group.children if isinstance(child, _Group))

    def all_match(flat: dict[str, Any]) -> bool:
        get = flat.get
        for attribute, test in leaves:
            if not test(get(attribute)):
                return False
        for matches in groups:
            if not matches(flat):
                return False
        return True

    def any_match(flat: dict[str, Any]) -> bool:
        get = flat.get
        for attribute, test in leaves:
            if test(get(attribute)):
                return True
        for matches in groups:
            if matches(flat):
                return True
        return False

    if group.logical_op == "OR":
        return any_match
    if group.logical_op == "NOT":
        return lambda flat: not all_match(flat)
    return all_match


def _reporter(node: _Leaf | _Group) -> Reporter:
    """A closure deciding a node while evaluating every leaf below it, recording outcomes."""
    if isinstance(node, _Leaf):
        attribute, op, test = node.attribute, node.operator, node.test

        def report_leaf(flat: dict[str, Any], outcomes: list[ConditionOutcome]) -> bool:
            actual = flat.get(attribute)
            matched = test(actual)
            outcomes.append(ConditionOutcome(attribute, op, matched, actual))
            return matched

        return report_leaf
    children = tuple(_reporter(child) for child in node.children)
    if not children:
        return lambda flat, outcomes: False
    decide = _DECIDE[node.logical_op]

    def report_group(flat: dict[str, Any], outcomes: list[ConditionOutcome]) -> bool:
        return decide([child(flat, outcomes) for child in children])

    return report_group


_DECIDE: dict[str, Callable[[list[bool]], bool]] = {
    "AND": all,
    "OR": any,
    "NOT": lambda results: not all(results),
}


# One builder per operator: given the stored value, a test of the actual value, or None when
# the stored value is unusable (the condition then never matches).


def _never(_: Any) -> bool:
    return False


def _present(actual: Any) -> bool:
    return actual is not None


def _absent(actual: Any) -> bool:
    return actual is None


def _equals(expected: Any) -> Test | None:
    """EQ: a string meets a number as a number when numeric, a boolean when "true"/"false"."""
    if type(expected) is str:
        text: str = expected
        as_number = to_number(text)
        as_bool = to_bool(text)

        def equals_string(actual: object) -> bool:
            kind = type(actual)
            if kind is str:
                return text == actual
            if kind is bool:
                return actual is as_bool
            if kind is int or kind is float:
                return as_number is not None and actual == as_number
            return False

        return equals_string
    if type(expected) is bool:
        spelled = "true" if expected else "false"

        def equals_bool(actual: Any) -> bool:
            kind = type(actual)
            if kind is bool:
                return actual is expected
            if kind is str:
                return len(actual) == len(spelled) and spelled == actual.lower()
            return False

        return equals_bool
    if is_number(expected):
        number: float = expected

        def equals_number(actual: object) -> bool:
            kind = type(actual)
            if kind is int or kind is float:
                return number == actual
            if isinstance(actual, str):
                coerced = to_number(actual)
                return coerced is not None and number == coerced
            return False

        return equals_number
    return None


def _one_of(expected: Any) -> Test | None:
    """IN: membership with EQ's coercions, by set lookups split per type (1 == True in Python)."""
    if type(expected) is not list:
        return None
    strings = {value for value in expected if type(value) is str}
    bools = {value for value in expected if type(value) is bool}
    numbers = {value for value in expected if is_number(value)}
    # What a number or boolean actual meets: the listed ones plus the strings that spell one.
    number_keys = numbers | {n for n in map(to_number, strings) if n is not None}
    bool_keys = bools | {b for b in map(to_bool, strings) if b is not None}

    def one_of(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            if actual in strings:
                return True
            if numbers:
                number = to_number(actual)
                if number is not None and number in numbers:
                    return True
            return bool(bools) and to_bool(actual) in bools
        if kind is bool:
            return actual in bool_keys
        if kind is int or kind is float:
            return actual in number_keys
        return False

    return one_of


def _negation(build: Callable[[Any], Test | None]) -> Callable[[Any], Test | None]:
    """NEQ and NIN: true for a missing or null attribute, false for an array or object."""

    def build_negation(expected: Any) -> Test | None:
        test = build(expected)
        if test is None:
            return None

        def negation(actual: Any) -> bool:
            if actual is None:
                return True
            return type(actual) in _SCALAR_TYPES and not test(actual)

        return negation

    return build_negation


def _comparison(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Test | None]:
    def build(expected: Any) -> Test | None:
        if not is_number(expected):
            return None

        def test(actual: Any) -> bool:
            kind = type(actual)
            if kind is int or kind is float:
                return compare(actual, expected)
            if kind is str:
                number = to_number(actual)
                return number is not None and compare(number, expected)
            return False

        return test

    return build


def _contains(expected: Any) -> Test | None:
    """CONTAINS: a substring of a string, or an element (compared as EQ does) of an array."""
    equals = _equals(expected) if type(expected) is str else None
    if equals is None:
        return None

    def contains(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            return expected in actual
        if kind is list:
            return any(map(equals, actual))
        return False

    return contains


def _not_contains(expected: Any) -> Test | None:
    contains = _contains(expected)
    if contains is None:
        return None

    def not_contains(actual: Any) -> bool:
        kind = type(actual)
        return (kind is str or kind is list) and not contains(actual)

    return not_contains


def _string_test(method: Callable[[str, str], bool]) -> Callable[[Any], Test | None]:
    def build(expected: Any) -> Test | None:
        if type(expected) is not str:
            return None
        return lambda actual: type(actual) is str and method(actual, expected)

    return build


def _regex(expected: Any) -> Test | None:
    regex = compile_regex(expected) if type(expected) is str else None
    if regex is None:
        return None

    def search(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            return regex_search(regex, actual)
        if kind is int or kind is float:
            return regex_search(regex, number_text(actual))
        return False

    return search


def _instant_comparison(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Test | None]:
    def build(expected: Any) -> Test | None:
        bound = parse_iso_instant(expected) if type(expected) is str else None
        if bound is None:
            return None

        def test(actual: Any) -> bool:
            instant = to_instant(actual)
            return instant is not None and compare(instant, bound)

        return test

    return build


def _semver_comparison(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Test | None]:
    def build(expected: Any) -> Test | None:
        bound = parse_semver(expected) if type(expected) is str else None
        if bound is None:
            return None

        def test(actual: Any) -> bool:
            if type(actual) is not str:
                return False
            version = parse_semver(actual)
            return version is not None and compare(version, bound)

        return test

    return build


_TEST_BUILDERS: dict[str, Callable[[Any], Test | None]] = {
    "EQ": _equals,
    "NEQ": _negation(_equals),
    "IN": _one_of,
    "NIN": _negation(_one_of),
    "GT": _comparison(operator.gt),
    "GTE": _comparison(operator.ge),
    "LT": _comparison(operator.lt),
    "LTE": _comparison(operator.le),
    "CONTAINS": _contains,
    "NOT_CONTAINS": _not_contains,
    "STARTS_WITH": _string_test(str.startswith),
    "ENDS_WITH": _string_test(str.endswith),
    "EXISTS": lambda _: _present,
    "NOT_EXISTS": lambda _: _absent,
    "REGEX": _regex,
    "BEFORE": _instant_comparison(operator.lt),
    "AFTER": _instant_comparison(operator.gt),
    "SEMVER_EQ": _semver_comparison(operator.eq),
    "SEMVER_GT": _semver_comparison(operator.gt),
    "SEMVER_LT": _semver_comparison(operator.lt),
}
