"""The segment evaluator: flattens contexts and decides membership with rules compiled once.

Contexts are JSON values as json.loads produces them (dict, list, str, int, float, bool, None);
any other type is a type mismatch. Nothing here raises on a context or on stored rules: a
condition that cannot be compiled, or a value of the wrong type, is simply a non-match.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rules.matchers import Operand, Test, never
from rules.models import (
    LOGICAL_OPS,
    MAX_COMPILE_DEPTH,
    MAX_REFERENCE_COMPILE_DEPTH,
    References,
    StoredRule,
    is_group,
    is_segment_match,
)
from rules.operators import REGISTRY
from rules.values import number_text

Matcher = Callable[[dict[str, Any]], bool]


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
                flat[f"{prefix}{key}" if prefix else key] = value
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
    # Every reference to another segment, depth first in rule order, when the rules decide.
    segment_matches: list["SegmentMatchOutcome"] = field(default_factory=list)


@dataclass(slots=True)
class SegmentMatchOutcome:
    segment_id: int
    segment_key: str
    negate: bool
    matched: bool  # after negate
    evaluation: Evaluation  # of the referenced segment itself (shared when it recurs)


# Per evaluation: a referenced segment's decision (Memo) or its whole evaluation (_Trace),
# by id, so a segment referenced twice is decided once.
Memo = dict[int, bool]
Rules = Callable[[dict[str, Any], Memo], bool]


@dataclass(slots=True)
class _Trace:
    conditions: list[ConditionOutcome]
    matches: list[SegmentMatchOutcome]
    memo: dict[int, Evaluation]


Reporter = Callable[[dict[str, Any], _Trace], bool]


@dataclass(frozen=True, slots=True)
class _Leaf:
    attribute: str
    operator: str
    test: Test


@dataclass(frozen=True, slots=True)
class _Reference:
    segment_id: int
    negate: bool
    target: "CompiledSegment | None"  # None: not given or too deep; never matches


@dataclass(frozen=True, slots=True)
class _Group:
    logical_op: str
    children: tuple["_Leaf | _Group | _Reference", ...]


class CompiledSegment:
    """A segment ready to evaluate many contexts; build it with `compile_segment`."""

    __slots__ = ("_excluded", "_force", "_included", "_key", "_matches_rules", "_report_rules")

    def __init__(
        self,
        force: bool,
        included: frozenset[str],
        excluded: frozenset[str],
        tree: _Group,
        key: str = "",
    ):
        self._force = force
        self._included = included
        self._excluded = excluded
        self._key = key
        self._matches_rules = _matcher(tree)
        self._report_rules = _reporter(tree)

    def evaluate(self, context: object) -> Evaluation:
        """Decide a raw JSON context, reporting every leaf condition and every reference
        when the rules decide."""
        return self._evaluate(flatten_context(context), {})

    def _evaluate(self, flat: dict[str, Any], memo: dict[int, Evaluation]) -> Evaluation:
        if self._force:
            return Evaluation(True, "FORCED", [])
        key = _targeting_key(flat)
        if key in self._excluded:
            return Evaluation(False, "EXCLUDED", [])
        if key in self._included:
            return Evaluation(True, "INCLUDED", [])
        trace = _Trace([], [], memo)
        matched = self._report_rules(flat, trace)
        reason = "RULES_MATCHED" if matched else "RULES_NOT_MATCHED"
        return Evaluation(matched, reason, trace.conditions, trace.matches)

    def matches_flat(self, flat: dict[str, Any]) -> bool:
        """The same decision as `evaluate` for an already flattened context, short-circuiting."""
        return self._matches(flat, {})

    def _matches(self, flat: dict[str, Any], memo: Memo) -> bool:
        if self._force:
            return True
        if self._excluded or self._included:
            key = _targeting_key(flat)
            if key in self._excluded:
                return False
            if key in self._included:
                return True
        return self._matches_rules(flat, memo)


def compile_segment(
    *,
    logical_op: str,
    rules: list[StoredRule],
    force: bool,
    included: list[str],
    excluded: list[str],
    salt: str,
    references: References | None = None,
    key: str = "",
) -> CompiledSegment:
    """Compile a segment's stored definition; compile once, evaluate many times. `salt` is
    the segment's, seeding its PERCENTAGE buckets.

    `references` holds the definition of every segment reachable through references (the
    caller loads that closure); a reference to a segment it lacks never matches, negated or
    not, and so does one more than MAX_REFERENCE_COMPILE_DEPTH references away. Each
    referenced segment's PERCENTAGE conditions use that segment's own salt."""
    return _Compilation(references or {}).segment(
        logical_op, rules, force, included, excluded, key, salt, depth=0
    )


def compile_rules(
    logical_op: str, rules: list[StoredRule], salt: str, references: References | None = None
) -> Matcher:
    """A short-circuiting predicate over flattened contexts for a stored rule list, whose
    owner's salt seeds the PERCENTAGE buckets."""
    matches = _matcher(_Compilation(references or {}).group(logical_op, rules, salt, 0, 0))
    return lambda flat: matches(flat, {})


def evaluate_rules(
    logical_op: str, rules: list[StoredRule], flat: dict[str, Any], salt: str
) -> bool:
    """Whether a flattened context matches a stored rule list (compiles each call)."""
    return compile_rules(logical_op, rules, salt)(flat)


def _targets(targets: object) -> frozenset[str]:
    if type(targets) is not list:
        return frozenset()
    return frozenset(target for target in targets if type(target) is str)


def targeting_key_of(context: object) -> str | None:
    """The key a raw context's targetingKey names, as the evaluator compares it with target
    lists (a number in its decimal text): what a caller looks big segments' lists up by."""
    return _targeting_key(flatten_context(context))


def _targeting_key(flat: dict[str, Any]) -> str | None:
    key = flat.get("targetingKey")
    if isinstance(key, str):
        return key
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return number_text(key)
    return None


# Compiling the tree.


class _Compilation:
    """One compile: each referenced segment is compiled once, the first time it is met
    (depth first in rule order) — db.rules_sql inlines references by the same rule."""

    def __init__(self, references: References) -> None:
        self.references = references
        self.compiled: dict[int, CompiledSegment] = {}

    def segment(
        self,
        logical_op: object,
        rules: object,
        force: object,
        included: object,
        excluded: object,
        key: object,
        salt: object,
        depth: int,
    ) -> CompiledSegment:
        return CompiledSegment(
            force=force is True,
            included=_targets(included),
            excluded=_targets(excluded),
            tree=self.group(logical_op, rules, salt if type(salt) is str else "", 0, depth),
            key=key if type(key) is str else "",
        )

    def group(
        self, logical_op: object, rules: object, salt: str, nesting: int, depth: int
    ) -> _Group:
        if nesting > MAX_COMPILE_DEPTH or logical_op not in LOGICAL_OPS or type(rules) is not list:
            return _Group("AND", ())  # never matches
        children = tuple(self.rule(rule, salt, nesting, depth) for rule in rules)
        return _Group(str(logical_op), children)

    def rule(
        self, rule: object, salt: str, nesting: int, depth: int
    ) -> _Leaf | _Group | _Reference:
        if type(rule) is not dict:
            return _Group("AND", ())  # never matches, reports nothing
        if is_segment_match(rule):  # type: ignore[arg-type]
            segment_id, negate = rule.get("segmentId"), rule.get("negate") is True
            if type(segment_id) is not int:
                return _Group("AND", ())
            return _Reference(segment_id, negate, self.reference(segment_id, depth + 1))
        if is_group(rule):  # type: ignore[arg-type]
            return self.group(rule.get("logicalOp"), rule.get("rules"), salt, nesting + 1, depth)
        attribute, op = rule.get("attribute"), rule.get("operator")
        entry = REGISTRY.get(op) if type(op) is str else None
        test = (
            entry.test(operand(rule, salt))
            if entry is not None and type(attribute) is str
            else None
        )
        return _Leaf(str(attribute), str(op), test or never)

    def reference(self, segment_id: int, depth: int) -> CompiledSegment | None:
        if segment_id in self.compiled:
            return self.compiled[segment_id]
        found = self.references.get(segment_id)
        if depth > MAX_REFERENCE_COMPILE_DEPTH or found is None:
            return None
        compiled = self.compiled[segment_id] = self.segment(
            found.get("logical_op"),
            found.get("rules"),
            found.get("force"),
            found.get("included"),
            found.get("excluded"),
            found.get("key"),
            found.get("salt"),
            depth,
        )
        return compiled


def operand(condition: dict[str, Any], salt: str) -> Operand:
    """What a stored condition's test is built from, for an owner with this salt."""
    return Operand(condition.get("value"), condition.get("caseInsensitive") is True, salt)


def _never(flat: dict[str, Any], memo: Memo) -> bool:
    return False


def _reference_matcher(node: _Reference) -> Rules:
    target, segment_id, negate = node.target, node.segment_id, node.negate
    if target is None:
        return _never

    def matches_reference(flat: dict[str, Any], memo: Memo) -> bool:
        found = memo.get(segment_id)
        if found is None:
            found = memo[segment_id] = target._matches(flat, memo)
        return found != negate

    return matches_reference


def _matcher(group: _Group) -> Rules:
    """A short-circuiting closure for a group: direct conditions first, then nested groups,
    then references to other segments."""
    if not group.children:
        return _never  # an empty rule list never matches, whatever its operator
    leaves = tuple(
        (child.attribute, child.test) for child in group.children if isinstance(child, _Leaf)
    )
    groups = tuple(_matcher(child) for child in group.children if isinstance(child, _Group))
    groups += tuple(
        _reference_matcher(child) for child in group.children if isinstance(child, _Reference)
    )

    def all_match(flat: dict[str, Any], memo: Memo) -> bool:
        get = flat.get
        for attribute, test in leaves:
            if not test(get(attribute)):
                return False
        for matches in groups:
            if not matches(flat, memo):
                return False
        return True

    def any_match(flat: dict[str, Any], memo: Memo) -> bool:
        get = flat.get
        for attribute, test in leaves:
            if test(get(attribute)):
                return True
        for matches in groups:
            if matches(flat, memo):
                return True
        return False

    if group.logical_op == "OR":
        return any_match
    if group.logical_op == "NOT":
        return lambda flat, memo: not all_match(flat, memo)
    return all_match


def _reporter(node: _Leaf | _Group | _Reference) -> Reporter:
    """A closure deciding a node while evaluating every leaf and reference below it,
    recording outcomes."""
    if isinstance(node, _Leaf):
        attribute, op, test = node.attribute, node.operator, node.test

        def report_leaf(flat: dict[str, Any], trace: _Trace) -> bool:
            actual = flat.get(attribute)
            matched = test(actual)
            trace.conditions.append(ConditionOutcome(attribute, op, matched, actual))
            return matched

        return report_leaf
    if isinstance(node, _Reference):
        return _reference_reporter(node)
    children = tuple(_reporter(child) for child in node.children)
    if not children:
        return lambda flat, trace: False
    decide = _DECIDE[node.logical_op]

    def report_group(flat: dict[str, Any], trace: _Trace) -> bool:
        return decide([child(flat, trace) for child in children])

    return report_group


def _reference_reporter(node: _Reference) -> Reporter:
    target, segment_id, negate = node.target, node.segment_id, node.negate

    def report_reference(flat: dict[str, Any], trace: _Trace) -> bool:
        if target is None:  # nothing to explain: the reference cannot be evaluated
            return False
        evaluation = trace.memo.get(segment_id)
        if evaluation is None:
            evaluation = trace.memo[segment_id] = target._evaluate(flat, trace.memo)
        matched = evaluation.matched != negate
        outcome = SegmentMatchOutcome(segment_id, target._key, negate, matched, evaluation)
        trace.matches.append(outcome)
        return matched

    return report_reference


_DECIDE: dict[str, Callable[[list[bool]], bool]] = {
    "AND": all,
    "OR": any,
    "NOT": lambda results: not all(results),
}
