"""The tree of a segment definition compiled into one predicate, and the SQL leaf of every
operator of the registry."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from db.pagination import SqlBuilder
from db.rules_sql import dates, percentage, regex, scalars, semver
from db.rules_sql.fragments import Emitter, Leaf
from rules.evaluate import evaluate_rules, operand
from rules.matchers import Arrays, Operand
from rules.models import LOGICAL_OPS, MAX_COMPILE_DEPTH, MAX_REFERENCE_COMPILE_DEPTH, References
from rules.operators import REGISTRY
from rules.values import is_number, storable_text


@dataclass(frozen=True)
class Predicate:
    """A three-valued SQL condition: TRUE member, FALSE not, NULL for Python to decide."""

    expr: str
    exact: bool  # never NULL: SQL decides every profile


def compile_definition(
    sql: SqlBuilder,
    *,
    logical_op: str,
    rules: list[Any],
    force: bool,
    included: list[str],
    excluded: list[str],
    salt: str,
    references: References | None = None,
    big_segment_id: int | None = None,
    context: str = "p.context",
    key: str = "p.targeting_key",
    project: str = "p.project_id",
) -> Predicate:
    """The membership predicate of a stored segment definition (`CompiledSegment.evaluate`
    of `compile_segment` with the same arguments, `salt` included).

    A reference to another segment is inlined as that segment's own predicate (from
    `references`, the closure the caller loaded; NOT of it when negated, which keeps NULL
    undecided): compiled once, the first time it is met, and reused, exactly as
    `compile_segment` does, so both give up on the same missing or too deep references.

    A big segment's lists (`big_segment_id`, or a reference whose definition is
    `unbounded`) are rows of segment_targets: probed by primary key with `key`, an EXISTS
    that is never NULL, in place of the lists the definition holds."""
    compiler = _Compiler(sql, context, key, project, references or {})
    expr = compiler.definition(
        logical_op, rules, force, included, excluded, salt, big_segment_id, depth=0
    )
    if expr == "true":
        return Predicate("true", True)
    return Predicate(expr, compiler.exact)


def _targets(targets: object) -> list[str]:
    if type(targets) is not list:
        return []
    return sorted({target for target in targets if type(target) is str and storable_text(target)})


class _Compiler(Emitter):
    # The tree. Each node compiles to (sql, cost); siblings are joined cheapest first, so
    # AND and OR stop early on the common rows (Kleene logic is commutative, and PostgreSQL
    # evaluates a boolean expression's arguments left to right, stopping at the first that
    # settles it).

    def __init__(
        self, sql: SqlBuilder, context: str, key: str, project: str, references: References
    ) -> None:
        super().__init__(sql, context)
        self.key = key
        self.project = project
        self.references = references
        self.inlined: dict[int, tuple[str, int]] = {}

    def definition(
        self,
        logical_op: object,
        rules: object,
        force: object,
        included: object,
        excluded: object,
        salt: object,
        big_segment_id: int | None,
        depth: int,
    ) -> str:
        if force is True:
            return "true"
        owner_salt = salt if type(salt) is str else ""
        expr, _ = self.group(logical_op, rules, owner_salt, nesting=0, depth=depth)
        if big_segment_id is not None:
            return (
                f"(NOT {self.big_list(big_segment_id, 'excluded')} "
                f"AND ({self.big_list(big_segment_id, 'included')} OR {expr}))"
            )
        included_keys = _targets(included)
        excluded_keys = _targets(excluded)
        if included_keys:
            expr = f"({self.key} = ANY({self.sql.param(included_keys)}::text[]) OR {expr})"
        if excluded_keys:
            expr = f"(NOT {self.key} = ANY({self.sql.param(excluded_keys)}::text[]) AND {expr})"
        return expr

    def big_list(self, segment_id: int, kind: str) -> str:
        """Whether one list of a big segment holds the row's key: one primary-key probe."""
        return f"""EXISTS (
            SELECT 1
            FROM segment_targets st
            WHERE st.project_id = {self.project}
              AND st.segment_id = {self.sql.param(segment_id)}::bigint
              AND st.kind = {self.sql.param(kind)}::text
              AND st.targeting_key = {self.key} COLLATE "C"
        )"""

    def reference(self, rule: dict[str, Any], depth: int) -> tuple[str, int]:
        segment_id = rule.get("segmentId")
        if type(segment_id) is not int:
            return "false", 0
        inlined = self.inlined.get(segment_id)
        if inlined is None:
            found = self.references.get(segment_id)
            if depth > MAX_REFERENCE_COMPILE_DEPTH or found is None:
                return "false", 0  # negated too: a reference that cannot be evaluated
            expr = self.definition(
                found.get("logical_op"),
                found.get("rules"),
                found.get("force"),
                found.get("included"),
                found.get("excluded"),
                found.get("salt"),
                segment_id if found.get("unbounded") else None,
                depth,
            )
            # A whole segment costs more than any leaf: evaluated after its siblings.
            inlined = self.inlined[segment_id] = (expr, 10)
        expr, cost = inlined
        return (f"(NOT {expr})" if rule.get("negate") is True else expr), cost

    def group(
        self, logical_op: object, rules: object, salt: str, nesting: int, depth: int
    ) -> tuple[str, int]:
        """`salt`: the owning segment's; `nesting`: groups above this one in its segment;
        `depth`: references followed."""
        if nesting > MAX_COMPILE_DEPTH or logical_op not in LOGICAL_OPS or type(rules) is not list:
            return "false", 0
        children = sorted(
            (self.rule(rule, salt, nesting, depth) for rule in rules), key=lambda child: child[1]
        )
        if not children:
            return "false", 0  # an empty rule list never matches, whatever its operator
        cost = sum(child_cost for _, child_cost in children)
        if len(children) == 1:
            sql = children[0][0]
            return (f"(NOT {sql})" if logical_op == "NOT" else sql), cost
        joiner = " OR " if logical_op == "OR" else " AND "
        sql = "(" + joiner.join(child_sql for child_sql, _ in children) + ")"
        return (f"(NOT {sql})" if logical_op == "NOT" else sql), cost

    def rule(self, rule: object, salt: str, nesting: int, depth: int) -> tuple[str, int]:
        if type(rule) is not dict:
            return "false", 0
        if "segmentId" in rule:
            return self.reference(rule, depth + 1)
        if "logicalOp" in rule:
            return self.group(rule.get("logicalOp"), rule.get("rules"), salt, nesting + 1, depth)
        attribute, op = rule.get("attribute"), rule.get("operator")
        leaf = LEAVES.get(op) if type(op) is str else None
        if leaf is None or type(attribute) is not str:
            return "false", 0
        if not storable_text(attribute):
            # No stored context has such a key: the condition sees an absent attribute.
            absent = evaluate_rules("AND", [rule], {}, salt)  # type: ignore[list-item]
            return ("true" if absent else "false"), 0
        arrays = REGISTRY[str(op)].arrays
        sql = leaf.compile(Leaf(self, attribute), operand(rule, salt), arrays)
        return sql, leaf.cost


@dataclass(frozen=True, slots=True)
class SqlLeaf:
    """An operator in SQL: its leaf builder (the leaf and the operand → three-valued SQL,
    "false" where the evaluator's builder rejects the value) and a rough relative cost per
    row, by which siblings are ordered: containment tests cheapest, regular expressions
    dearest (REGEX is cheap in SQL but its NULLs settle nothing, so it goes last)."""

    build: Callable[[Leaf, Operand], str]
    cost: int

    def compile(self, leaf: Leaf, operand: Operand, arrays: Arrays) -> str:
        """The leaf, with an array attribute treated as the registry says (the one SQL
        counterpart of `rules.matchers.for_arrays`)."""
        sql = self.build(leaf, operand)
        if arrays is Arrays.OWN or sql == "false":
            return sql
        each = "false" if arrays is Arrays.NEVER else scalars.elements(leaf, self.build, operand)
        return leaf.with_array_branch(sql, each)


def _scalar(value: Any) -> bool:
    return type(value) in (str, bool) or is_number(value)


# One entry per operator of the registry.
LEAVES: dict[str, SqlLeaf] = {
    "EQ": SqlLeaf(scalars.equals, 1),
    "NEQ": SqlLeaf(scalars.negation(scalars.equals, _scalar), 2),
    "IN": SqlLeaf(scalars.one_of, 2),
    "NIN": SqlLeaf(scalars.negation(scalars.one_of, lambda value: type(value) is list), 2),
    "GT": SqlLeaf(scalars.comparison(">"), 2),
    "GTE": SqlLeaf(scalars.comparison(">="), 2),
    "LT": SqlLeaf(scalars.comparison("<"), 2),
    "LTE": SqlLeaf(scalars.comparison("<="), 2),
    "CONTAINS": SqlLeaf(scalars.contains, 2),
    "NOT_CONTAINS": SqlLeaf(scalars.not_contains, 2),
    "STARTS_WITH": SqlLeaf(scalars.starts_with, 2),
    "ENDS_WITH": SqlLeaf(scalars.ends_with, 2),
    "EXISTS": SqlLeaf(scalars.exists, 1),
    "NOT_EXISTS": SqlLeaf(scalars.not_exists, 1),
    "REGEX": SqlLeaf(regex.regex, 8),
    "BEFORE": SqlLeaf(dates.instant_comparison("<"), 5),
    "AFTER": SqlLeaf(dates.instant_comparison(">"), 5),
    "SEMVER_EQ": SqlLeaf(semver.semver_comparison("EQ"), 5),
    "SEMVER_GT": SqlLeaf(semver.semver_comparison("GT"), 5),
    "SEMVER_LT": SqlLeaf(semver.semver_comparison("LT"), 5),
    "PERCENTAGE": SqlLeaf(percentage.percentage, 6),
}
if LEAVES.keys() != REGISTRY.keys():
    raise ImportError(
        f"SQL leaves and the operator registry differ: {LEAVES.keys() ^ REGISTRY.keys()}"
    )
