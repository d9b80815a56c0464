"""Warnings about a segment's rule tree that no evaluation reveals (DESIGN §15): groups that
can never match or always match, duplicate and redundant rules, attributes nobody stores.

Pure: no database. Sound above all (a property test holds it to `rules.evaluate`): a group is
called CONTRADICTION only when no context can match it and ALWAYS_TRUE only when every
context does; a rule is called DUPLICATE_CONDITION or SUBSUMED only when removing it changes
no context's outcome. Every claim rests on the evaluator's semantics for all JSON values a
context may hold: missing or null, scalars, numeric and boolean strings, and lists (a list
matches `EQ 1` and `EQ 2` at once when it holds both, so `a EQ 1 AND a EQ 2` is no
contradiction). When in doubt the analysis says nothing.

How: each rule is read as literals (an atom about one attribute, true or false) that it
implies and that imply it. Two literals of one attribute can exclude each other (`a IN [x]`
and `a NIN [x, y]`), cover every case together (`a EXISTS` or `a NOT_EXISTS`), or one
implies the other (`a GT 5` → `a GT 3`, `a EQ 1` → `a EXISTS`); groups combine their
children's literals by AND, OR and NOT. Literals of different attributes are never related:
any combination of values can be given to different paths (`{"a": 1, "a.b": 2}`).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from enum import StrEnum
from typing import Any

from rules.matchers import Operand
from rules.models import LOGICAL_OPS, MAX_COMPILE_DEPTH
from rules.operators import REGISTRY
from rules.problems import Path
from rules.values import is_number, percent_of, to_bool, to_number

# A path into the rules: where a rule list sits (("input", "rules") or ("rules",)), and the
# steps from a group rule to its own list (("group", "rules") in the input's shape, ("rules",)
# in Segment.rules' shape).
INPUT_NESTING: Path = ("group", "rules")
STORED_NESTING: Path = ("rules",)

# Attributes every context may carry whatever profiles hold.
ALWAYS_KNOWN = frozenset({"targetingKey"})


class WarningCode(StrEnum):
    CONTRADICTION = "CONTRADICTION"
    ALWAYS_TRUE = "ALWAYS_TRUE"
    DUPLICATE_CONDITION = "DUPLICATE_CONDITION"
    SUBSUMED = "SUBSUMED"
    UNKNOWN_ATTRIBUTE = "UNKNOWN_ATTRIBUTE"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    MATCHES_NO_ONE = "MATCHES_NO_ONE"
    MATCHES_EVERYONE = "MATCHES_EVERYONE"


@dataclass(frozen=True)
class RuleWarning:
    code: WarningCode
    field: Path | None
    message: str


# An atom: a fact about one attribute's value (or a segment reference), by kind:
#   ("in", attribute, keys, fold)       EQ v is ("in", a, {v}); NEQ/NIN are its negation
#   ("exists", attribute)               NOT_EXISTS is its negation
#   ("contains", attribute, text, fold)
#   ("cmp", attribute, operator, number)  GT GTE LT LTE
#   ("leaf", attribute, operator, value, fold)  any other condition, related only to itself
#   ("ref", segment id, negate)
Atom = tuple[Any, ...]
# A literal: (True, atom) holds when the atom does, (False, atom) when it does not.
Literal = tuple[bool, Atom]


def _key(value: object) -> tuple[str, Any] | None:
    """A rule value as the evaluator tells values apart: booleans are not numbers, 1 == 1.0."""
    if type(value) is bool:
        return ("bool", value)
    if is_number(value):
        return ("num", value)
    if type(value) is str:
        return ("str", value)
    return None


def _atom_implies(a: Atom, b: Atom) -> bool:
    """Whether atom `a` holding means `b` holds, for every context."""
    if a == b:
        return True
    if a[0] == "ref" or b[0] == "ref" or a[1] != b[1]:
        return False
    if b[0] == "exists" and a[0] != "opaque":
        # Every condition other than NEQ, NIN and NOT_EXISTS (negated atoms) fails on a
        # missing or null attribute.
        return True
    if a[0] == "in" and b[0] == "in":
        # Membership is monotone in the listed values; case-sensitive equality implies
        # case-insensitive equality of whole strings.
        return a[2] <= b[2] and a[3] <= b[3]
    if a[0] == "cmp" and b[0] == "cmp":
        return _comparison_implies(a[2], a[3], b[2], b[3])
    return False


def _comparison_implies(op_a: str, x: float, op_b: str, y: float) -> bool:
    # Each element or number tested against x compares the same value against y, so the
    # implication holds for list attributes (any element) as for scalars.
    if op_a in ("GT", "GTE") and op_b in ("GT", "GTE"):
        return x > y or (x == y and not (op_a == "GTE" and op_b == "GT"))
    if op_a in ("LT", "LTE") and op_b in ("LT", "LTE"):
        return x < y or (x == y and not (op_a == "LTE" and op_b == "LT"))
    return False


def _implies(a: Literal, b: Literal) -> bool:
    if a[0] and b[0]:
        return _atom_implies(a[1], b[1])
    if not a[0] and not b[0]:
        return _atom_implies(b[1], a[1])
    return False


def _excludes(a: Literal, b: Literal) -> bool:
    """Whether the two literals can never hold together."""
    if a[0] and not b[0]:
        return _atom_implies(a[1], b[1])
    if b[0] and not a[0]:
        return _atom_implies(b[1], a[1])
    # A segment matched and not matched: a missing target matches neither way, never both.
    return (
        a[0]
        and b[0]
        and a[1][0] == "ref"
        and b[1][0] == "ref"
        and a[1][1] == b[1][1]
        and a[1][2] != b[1][2]
    )


def _covers(a: Literal, b: Literal) -> bool:
    """Whether at least one of the two literals holds for every context."""
    if a[0] and not b[0]:
        return _atom_implies(b[1], a[1])
    if b[0] and not a[0]:
        return _atom_implies(a[1], b[1])
    return False


def _negated(literals: frozenset[Literal]) -> frozenset[Literal]:
    return frozenset((not positive, atom) for positive, atom in literals)


@dataclass
class _Node:
    """What the analysis knows of one rule: whether it never or always matches, the
    literals it implies and the literals that imply it."""

    never: bool = False
    always: bool = False
    implies: frozenset[Literal] = frozenset()
    implied_by: frozenset[Literal] = frozenset()
    identity: Any = None  # equal for rules that match exactly the same contexts by syntax
    text: str = "a rule"
    is_group: bool = False
    why: str = ""  # what makes a group never or always match, for the message
    reported: bool = False  # a warning about never/always was given for this group


@dataclass
class _Analysis:
    nesting: Path
    known: Mapping[str, set[str]] | None
    warnings: list[RuleWarning] = field(default_factory=list)

    def warn(self, code: WarningCode, path: Path | None, message: str) -> None:
        self.warnings.append(RuleWarning(code, path, message))

    # Rules.

    def rule(self, rule: object, path: Path, nesting: int) -> _Node:
        if type(rule) is not dict:
            return _Node(never=True, identity=("malformed",))
        if "segmentId" in rule:
            segment_id, negate = rule.get("segmentId"), rule.get("negate") is True
            if type(segment_id) is not int:
                return _Node(never=True, identity=("malformed",))
            literal: Literal = (True, ("ref", segment_id, negate))
            return _Node(
                implies=frozenset({literal}),
                implied_by=frozenset({literal}),
                identity=("ref", segment_id, negate),
                text="a segment reference" + (" (negated)" if negate else ""),
            )
        if "logicalOp" in rule:
            rules = rule.get("rules")
            return self.group(
                rule.get("logicalOp"), rules, (*path, *self.nesting), nesting + 1, path
            )
        return self.condition(rule, path)

    def condition(self, rule: dict[str, Any], path: Path) -> _Node:
        attribute: Any = rule.get("attribute")
        op: Any = rule.get("operator")
        value: Any = rule.get("value")
        fold = rule.get("caseInsensitive") is True
        entry = REGISTRY.get(op) if type(op) is str else None
        if type(attribute) is not str or entry is None or entry.test(Operand(value, fold)) is None:
            return _Node(
                never=True, identity=("malformed", repr(rule)), text="an unusable condition"
            )
        self.attribute_checks(attribute, op, value, path)
        text = f"{attribute} {op}" + ("" if op in ("EXISTS", "NOT_EXISTS") else f" {value!r}")
        if fold:
            text += " (caseInsensitive)"
        exact: Literal | None = None
        extra: frozenset[Literal] = frozenset()
        never = False
        if op in ("EQ", "NEQ"):
            key = _key(value)
            if key is not None:
                exact = (op == "EQ", ("in", attribute, frozenset({key}), fold))
        elif op in ("IN", "NIN"):
            keys = [_key(item) for item in value]
            if None not in keys:
                exact = (op == "IN", ("in", attribute, frozenset(keys), fold))
                never = op == "IN" and not keys
        elif op in ("EXISTS", "NOT_EXISTS"):
            exact = (op == "EXISTS", ("exists", attribute))
        elif op == "CONTAINS":
            exact = (True, ("contains", attribute, value, fold))
        elif op == "NOT_CONTAINS":
            # True only for a string or list lacking the text: implies not CONTAINS.
            extra = frozenset({(False, ("contains", attribute, value, fold))})
        elif op in ("GT", "GTE", "LT", "LTE"):
            exact = (True, ("cmp", attribute, op, value))
        elif op == "PERCENTAGE":
            never = percent_of(value) == 0
        # NEQ, NIN and NOT_EXISTS hold for a missing attribute: their fallback atom must not
        # imply EXISTS as every other condition's does.
        kind = "opaque" if op in ("NEQ", "NIN", "NOT_EXISTS") else "leaf"
        identity = (kind, attribute, op, _identity_value(value), fold)
        if exact is None:
            exact = (True, identity)
        return _Node(
            never=never,
            implies=frozenset({exact}) | extra,
            implied_by=frozenset({exact}),
            identity=exact if exact[1][0] not in ("leaf", "opaque") else identity,
            text=f"`{text}`",
        )

    def group(self, logical_op: object, rules: object, path: Path, nesting: int, at: Path) -> _Node:
        """A group whose rule list sits at `path`; warnings about it point at `at`."""
        if nesting > MAX_COMPILE_DEPTH or logical_op not in LOGICAL_OPS or type(rules) is not list:
            return _Node(never=True, identity=("malformed",), is_group=True)
        children = [
            self.rule(rule, (*path, str(index)), nesting) for index, rule in enumerate(rules)
        ]
        child_paths = [(*path, str(index)) for index in range(len(rules))]
        identity = ("group", logical_op, tuple(child.identity for child in children))
        text = f"the {logical_op} group"
        node = self.combine(str(logical_op), children, child_paths)
        node.identity, node.text, node.is_group = identity, text, True
        if not children:
            if nesting > 0:
                self.warn(
                    WarningCode.CONTRADICTION,
                    at,
                    "This group has no rules, so it matches no context.",
                )
                node.reported = True
            return node
        self.redundancy(str(logical_op), children, child_paths)
        self.report(node, str(logical_op), children, at, nesting)
        return node

    def combine(self, logical_op: str, children: list[_Node], paths: list[Path]) -> _Node:
        if not children:
            return _Node(never=True)  # an empty group never matches, whatever its operator
        if logical_op == "OR":
            node = _Node(
                never=all(child.never for child in children),
                implied_by=frozenset().union(*(child.implied_by for child in children)),
                implies=children[0].implies if len(children) == 1 else frozenset(),
            )
            covering = _pair(children, lambda a, b: _any_pair(a.implied_by, b.implied_by, _covers))
            node.always = any(child.always for child in children) or covering is not None
            node.why = _why(children, paths, covering, "together match every context")
            return node
        conflict = _pair(children, lambda a, b: _any_pair(a.implies, b.implies, _excludes))
        inner = _Node(
            never=any(child.never for child in children) or conflict is not None,
            always=all(child.always for child in children),
            implies=frozenset().union(*(child.implies for child in children)),
            implied_by=children[0].implied_by if len(children) == 1 else frozenset(),
        )
        why = _why(children, paths, conflict, "cannot both hold")
        if logical_op == "AND":
            inner.why = why
            return inner
        # NOT: the negation of its rules' AND.
        node = _Node(
            never=inner.always,
            always=inner.never,
            implies=_negated(inner.implied_by),
            implied_by=_negated(inner.implies),
        )
        node.why = why
        return node

    def report(
        self, node: _Node, logical_op: str, children: list[_Node], path: Path, nesting: int
    ) -> None:
        if node.never:
            status, code, verb = "never", WarningCode.CONTRADICTION, "can match no context"
        elif node.always:
            status, code, verb = "always", WarningCode.ALWAYS_TRUE, "matches every context"
        else:
            return
        if any(child.reported and getattr(child, status) for child in children):
            return  # a nested group already says so
        # A NOT group negates the AND of its rules: it never matches when they always do.
        inner = {"never": "always", "always": "never"}[status] if logical_op == "NOT" else status
        why = node.why or _child_reason(children, inner)
        if logical_op == "NOT":
            why = f" (it negates rules that {'always' if inner == 'always' else 'never all'} hold{why})"
        where = "This group" if nesting else "The top-level group"
        self.warn(code, path, f"{where} {verb}{why}.")
        node.reported = True

    def redundancy(self, logical_op: str, children: list[_Node], paths: list[Path]) -> None:
        """DUPLICATE_CONDITION and SUBSUMED among a group's own rules: in AND and NOT (whose
        rules combine by AND) a rule that a sibling implies, in OR one that implies a sibling."""
        seen: dict[Any, int] = {}
        duplicate: set[int] = set()
        for index, child in enumerate(children):
            if child.identity is None or child.identity[0] == "malformed":
                continue
            first = seen.setdefault(child.identity, index)
            if first != index:
                duplicate.add(index)
                self.warn(
                    WarningCode.DUPLICATE_CONDITION,
                    paths[index],
                    f"{_capital(child.text)} repeats the rule at {_where(paths[first])}.",
                )
        if logical_op == "OR":

            def makes_redundant(other: _Node, rule: _Node) -> bool:
                return _any_pair(rule.implies, other.implied_by, _implies)

            relation = "implies"
        else:

            def makes_redundant(other: _Node, rule: _Node) -> bool:
                return _any_pair(other.implies, rule.implied_by, _implies)

            relation = "is implied by"
        for index, child in enumerate(children):
            if index in duplicate or child.never or child.always:
                continue
            for other_index, other in enumerate(children):
                if other_index == index or other_index in duplicate:
                    continue
                if other.identity == child.identity or not makes_redundant(other, child):
                    continue
                # Two rules that make each other redundant: only the later one is reported,
                # so removing every reported rule keeps the group's meaning.
                if other_index > index and makes_redundant(child, other):
                    continue
                self.warn(
                    WarningCode.SUBSUMED,
                    paths[index],
                    f"{_capital(child.text)} {relation} {other.text} at {_where(paths[other_index])}, "
                    f"so it changes nothing in this {logical_op} group.",
                )
                break

    # Attributes: checked only against what the catalogue knows (None: skipped).

    def attribute_checks(self, attribute: str, op: str, value: Any, path: Path) -> None:
        known = self.known
        if known is None or attribute in ALWAYS_KNOWN:
            return
        types = known.get(attribute)
        if types is None:
            close = get_close_matches(attribute, list(known), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            self.warn(
                WarningCode.UNKNOWN_ATTRIBUTE,
                path,
                f"No stored profile holds {attribute!r} and it is not declared.{hint}",
            )
            return
        fitting = _fitting_types(op, value)
        if fitting is not None and types and not (set(types) & fitting):
            self.warn(
                WarningCode.TYPE_MISMATCH,
                path,
                f"{op} needs {' or '.join(sorted(fitting))} values, but {attribute!r} holds "
                f"{', '.join(sorted(types))}.",
            )


def _fitting_types(op: str, value: Any) -> set[str] | None:
    """The JSON types an attribute must hold for `op` with `value` ever to tell profiles
    apart (an array fits whatever tests its elements); None: any type fits."""
    if op in ("EXISTS", "NOT_EXISTS"):
        return None
    if op in ("GT", "GTE", "LT", "LTE"):
        return {"number", "string", "array"}
    if op in (
        "CONTAINS",
        "NOT_CONTAINS",
        "STARTS_WITH",
        "ENDS_WITH",
        "SEMVER_EQ",
        "SEMVER_GT",
        "SEMVER_LT",
    ):
        return {"string", "array"}
    if op in ("REGEX", "BEFORE", "AFTER"):
        return {"string", "number", "array"}
    if op == "PERCENTAGE":
        return {"string", "number"}
    if op in ("EQ", "NEQ", "IN", "NIN"):
        values = value if isinstance(value, list) else [value]
        fitting = {"array"}
        for item in values:
            if type(item) is bool:
                fitting |= {"boolean", "string"}
            elif is_number(item):
                fitting |= {"number", "string"}
            elif type(item) is str:
                fitting.add("string")
                if to_number(item) is not None:
                    fitting.add("number")
                if to_bool(item) is not None:
                    fitting.add("boolean")
        return fitting
    return None


def _identity_value(value: Any) -> Any:
    if isinstance(value, list):
        return ("list", tuple(_identity_value(item) for item in value))
    key = _key(value)
    return key if key is not None else ("other", repr(value))


def _any_pair(first: frozenset[Literal], second: frozenset[Literal], relation: Any) -> bool:
    return any(relation(a, b) for a in first for b in second)


def _pair(children: list[_Node], related: Any) -> tuple[int, int] | None:
    for i, a in enumerate(children):
        for j in range(i, len(children)):
            if related(a, children[j]):
                return (i, j)
    return None


def _why(children: list[_Node], paths: list[Path], pair: tuple[int, int] | None, what: str) -> str:
    if pair is None:
        return ""
    i, j = pair
    if i == j:
        return f": {children[i].text} at {_where(paths[i])} {what} by itself"
    return (
        f": {children[i].text} at {_where(paths[i])} and {children[j].text} at "
        f"{_where(paths[j])} {what}"
    )


def _child_reason(children: list[_Node], status: str) -> str:
    for child in children:
        if (child.never if status == "never" else child.always) and not child.is_group:
            return f": {child.text} {'never matches' if status == 'never' else 'always matches'}"
    return ""


def _where(path: Path) -> str:
    return ".".join(path)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def analyze_rules(
    logical_op: object,
    rules: object,
    *,
    root: Path,
    nesting: Path,
    known_attributes: Mapping[str, set[str]] | None = None,
) -> list[RuleWarning]:
    """The warnings of a stored rule list combined by `logical_op`, rooted at `root` (where
    the list sits) with `nesting` the steps from a group rule to its list (INPUT_NESTING or
    STORED_NESTING). `known_attributes` maps each path profiles hold or the project declares
    to its JSON types ("string", "number", "boolean", "array", "object", "null"); with it,
    UNKNOWN_ATTRIBUTE and TYPE_MISMATCH are checked too. Never raises on malformed data."""
    analysis = _Analysis(nesting, known_attributes)
    analysis.group(logical_op, rules, root, 0, root)
    return analysis.warnings


def member_warnings(members: int, profiles: int) -> list[RuleWarning]:
    """MATCHES_NO_ONE / MATCHES_EVERYONE for a segment matching `members` of the project's
    `profiles` stored profiles; nothing when the project stores none."""
    if profiles <= 0:
        return []
    if members == 0:
        return [
            RuleWarning(
                WarningCode.MATCHES_NO_ONE,
                None,
                f"The segment matches none of the {profiles} stored profiles.",
            )
        ]
    if members >= profiles:
        return [
            RuleWarning(
                WarningCode.MATCHES_EVERYONE,
                None,
                f"The segment matches every one of the {profiles} stored profiles.",
            )
        ]
    return []


__all__ = [
    "INPUT_NESTING",
    "STORED_NESTING",
    "RuleWarning",
    "WarningCode",
    "analyze_rules",
    "member_warnings",
]
