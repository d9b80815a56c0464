"""The operator registry: every condition operator, defined once (DESIGN §12).

An entry names the operator as it is stored and as GraphQL spells it, its REST name (§16),
the description the GraphQL enum shows, the check of its value (`rules.operands`), the
builder of its Python test (`rules.matchers`), how it treats an array attribute, and whether
it takes `caseInsensitive`. The SQL compiler (`db.rules_sql`) keeps one
leaf per entry and refuses to import when one is missing; `tests/rules/test_operator_registry.py`
walks the registry through every layer. Adding an operator is one entry here, its SQL leaf
and their tests.
"""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rules import matchers, operands
from rules.matchers import Arrays, Builder, Operand, Test


@dataclass(frozen=True, slots=True)
class Operator:
    name: str  # stored, and the GraphQL enum value
    rest: str  # in the REST face's rules
    description: str  # of the GraphQL enum value
    check: Callable[[Any], str | None]  # what is wrong with a stored value, or None
    build: Builder  # the Python test of a scalar actual value, for an operand
    arrays: Arrays = Arrays.ANY  # how an array attribute is tested
    case_insensitive: bool = False  # whether the condition may set caseInsensitive

    def test(self, operand: Operand) -> Test | None:
        """The condition's whole Python test (arrays included), or None when unusable."""
        test = self.build(operand)
        return None if test is None else matchers.for_arrays(self.arrays, test)


_ENTRIES = (
    Operator(
        name="EQ",
        rest="eq",
        description='Equal after coercion (numeric strings, "true"/"false").',
        check=operands.scalar,
        build=matchers.equals,
        case_insensitive=True,
    ),
    Operator(
        name="NEQ",
        rest="neq",
        description="Not equal after coercion; true when the attribute is missing.",
        check=operands.scalar,
        build=matchers.negation(matchers.equals),
        arrays=Arrays.OWN,
        case_insensitive=True,
    ),
    Operator(
        name="IN",
        rest="in",
        description="Equal to one of the listed values.",
        check=operands.scalar_list,
        build=matchers.one_of,
        case_insensitive=True,
    ),
    Operator(
        name="NIN",
        rest="nin",
        description="Equal to none of the listed values; true when missing.",
        check=operands.scalar_list,
        build=matchers.negation(matchers.one_of),
        arrays=Arrays.OWN,
        case_insensitive=True,
    ),
    Operator(
        name="GT",
        rest="gt",
        description="Numerically greater than.",
        check=operands.number,
        build=matchers.comparison(operator.gt),
    ),
    Operator(
        name="GTE",
        rest="gte",
        description="Numerically greater than or equal.",
        check=operands.number,
        build=matchers.comparison(operator.ge),
    ),
    Operator(
        name="LT",
        rest="lt",
        description="Numerically less than.",
        check=operands.number,
        build=matchers.comparison(operator.lt),
    ),
    Operator(
        name="LTE",
        rest="lte",
        description="Numerically less than or equal.",
        check=operands.number,
        build=matchers.comparison(operator.le),
    ),
    Operator(
        name="CONTAINS",
        rest="contains",
        description="Substring of a string, or element of an array.",
        check=operands.string,
        build=matchers.contains,
        case_insensitive=True,
        arrays=Arrays.OWN,
    ),
    Operator(
        name="NOT_CONTAINS",
        rest="not_contains",
        description="A string or array that does not contain the value.",
        check=operands.string,
        build=matchers.not_contains,
        arrays=Arrays.OWN,
        case_insensitive=True,
    ),
    Operator(
        name="STARTS_WITH",
        rest="startsWith",
        description="String prefix (case-sensitive unless caseInsensitive).",
        check=operands.string,
        build=matchers.string_test(str.startswith),
        case_insensitive=True,
    ),
    Operator(
        name="ENDS_WITH",
        rest="endsWith",
        description="String suffix (case-sensitive unless caseInsensitive).",
        check=operands.string,
        build=matchers.string_test(str.endswith),
        case_insensitive=True,
    ),
    Operator(
        name="EXISTS",
        rest="exists",
        description="Attribute present and not null.",
        check=operands.absent,
        build=lambda _: matchers.present,
        arrays=Arrays.OWN,
    ),
    Operator(
        name="NOT_EXISTS",
        rest="not_exists",
        description="Attribute absent or null.",
        check=operands.absent,
        build=lambda _: matchers.absent,
        arrays=Arrays.OWN,
    ),
    Operator(
        name="REGEX",
        rest="regex",
        description="Regular expression found anywhere in the value.",
        check=operands.regex,
        build=matchers.regex,
        case_insensitive=True,
    ),
    Operator(
        name="BEFORE",
        rest="before",
        description="Date or date-time earlier than the value.",
        check=operands.instant,
        build=matchers.instant_comparison(operator.lt),
    ),
    Operator(
        name="AFTER",
        rest="after",
        description="Date or date-time later than the value.",
        check=operands.instant,
        build=matchers.instant_comparison(operator.gt),
    ),
    Operator(
        name="SEMVER_EQ",
        rest="semver_eq",
        description="Semantic version equal to the value.",
        check=operands.semver,
        build=matchers.semver_comparison(operator.eq),
    ),
    Operator(
        name="SEMVER_GT",
        rest="semver_gt",
        description="Semantic version greater than the value.",
        check=operands.semver,
        build=matchers.semver_comparison(operator.gt),
    ),
    Operator(
        name="SEMVER_LT",
        rest="semver_lt",
        description="Semantic version less than the value.",
        check=operands.semver,
        build=matchers.semver_comparison(operator.lt),
    ),
    Operator(
        name="PERCENTAGE",
        rest="percentage",
        description=(
            "In the first `value` percent (0-100, at most 3 decimals) of buckets: sha256 of"
            ' the salt, "/" and the attribute (a string, or an integer in decimal).'
        ),
        check=operands.percentage,
        build=matchers.percentage,
        arrays=Arrays.NEVER,
    ),
)

# In the order the GraphQL enum lists them.
REGISTRY: dict[str, Operator] = {entry.name: entry for entry in _ENTRIES}
OPERATORS: tuple[str, ...] = tuple(REGISTRY)
BY_REST_NAME: dict[str, Operator] = {entry.rest: entry for entry in REGISTRY.values()}
