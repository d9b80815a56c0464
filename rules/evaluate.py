"""The segment evaluator: flattens contexts and decides membership with rules compiled once.

Contexts are JSON values as json.loads produces them (dict, list, str, int, float, bool, None);
any other type is a type mismatch. Nothing here raises on a context or on stored rules: a
condition that cannot be compiled, or a value of the wrong type, is simply a non-match.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules.matchers import Operand, Test, never
from rules.models import LOGICAL_OPS, MAX_COMPILE_DEPTH, StoredRule, is_group
from rules.operators import REGISTRY
from rules.values import number_text

Matcher = Callable[[dict[str, Any]], bool]
Reporter = Callable[[dict[str, Any], list["ConditionOutcome"]], bool]


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
    salt: str,
) -> CompiledSegment:
    """Compile a segment's stored definition; compile once, evaluate many times. `salt` is
    the segment's, seeding its PERCENTAGE buckets."""
    return CompiledSegment(
        force=force is True,
        included=_targets(included),
        excluded=_targets(excluded),
        tree=_compile_group(logical_op, rules, depth=0, salt=salt),
    )


def compile_rules(logical_op: str, rules: list[StoredRule], salt: str) -> Matcher:
    """A short-circuiting predicate over flattened contexts for a stored rule list, whose
    owner's salt seeds the PERCENTAGE buckets."""
    return _matcher(_compile_group(logical_op, rules, depth=0, salt=salt))


def evaluate_rules(
    logical_op: str, rules: list[StoredRule], flat: dict[str, Any], salt: str
) -> bool:
    """Whether a flattened context matches a stored rule list (compiles each call)."""
    return compile_rules(logical_op, rules, salt)(flat)


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


def _compile_group(logical_op: object, rules: object, depth: int, salt: str) -> _Group:
    if depth > MAX_COMPILE_DEPTH or logical_op not in LOGICAL_OPS or type(rules) is not list:
        return _Group("AND", ())  # never matches
    return _Group(str(logical_op), tuple(_compile_rule(rule, depth, salt) for rule in rules))


def _compile_rule(rule: object, depth: int, salt: str) -> _Leaf | _Group:
    if type(rule) is not dict:
        return _Group("AND", ())  # never matches, reports nothing
    if is_group(rule):  # type: ignore[arg-type]
        return _compile_group(rule.get("logicalOp"), rule.get("rules"), depth + 1, salt)
    attribute, op = rule.get("attribute"), rule.get("operator")
    entry = REGISTRY.get(op) if type(op) is str else None
    test = entry.test(operand(rule, salt)) if entry is not None and type(attribute) is str else None
    return _Leaf(str(attribute), str(op), test or never)


def operand(condition: dict[str, Any], salt: str) -> Operand:
    """What a stored condition's test is built from, for an owner with this salt."""
    return Operand(condition.get("value"), condition.get("caseInsensitive") is True, salt)


def _matcher(group: _Group) -> Matcher:
    """A short-circuiting closure for a group: direct conditions first, then nested groups."""
    if not group.children:
        return never  # an empty rule list never matches, whatever its operator
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
