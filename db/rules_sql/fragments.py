"""SQL fragments about one attribute of a profile's context (or one element of an array
attribute), and the numeric facts every leaf shares (see the package docstring for how
numbers line up)."""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from db.pagination import SqlBuilder
from rules.matchers import Operand
from rules.values import INT64_MIN, NUMERIC_STRING_PATTERN

NUMERIC = f"^{NUMERIC_STRING_PATTERN}$"
INTEGER = "^[+-]?[0-9]+$"
# A numeric string whose float() is finite and non-zero unless written as zero, so ::float8
# cannot raise: at most 100 characters and an exponent of at most two digits.
SAFE_FLOAT = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?$"
# Python parses integer strings of up to 4300 digits exactly (its int-from-str limit).
MAX_INT_TEXT = 4300
# Integers Python reads from stored JSON as ints (orjson: 64 bits, signed or not).
INT_LOW, INT_HIGH = INT64_MIN, 2**64 - 1
# Expected values this small compare with out-of-range stored integers by sign alone.
SMALL = 2**62
# Integers a double holds exactly.
EXACT_IN_DOUBLE = 2**53
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# The element of an array attribute that an element leaf is about: a placeholder that
# `Leaf.any_element` replaces by each element in turn.
_ELEMENT = "elem.value"
# Array elements an element test looks at in SQL; longer arrays go to the evaluator.
UNROLLED_ELEMENTS = 6


def decimal_of(number: float) -> Decimal:
    """The value stored numbers are compared with (see the module docstring)."""
    if isinstance(number, float):
        return Decimal(int(number)) if number.is_integer() else Decimal(repr(number))
    return Decimal(number)


def double_of(number: float) -> float | None:
    """The double a float() of a numeric string is compared with, when that is exact."""
    if isinstance(number, float):
        return number
    return float(number) if abs(number) <= EXACT_IN_DOUBLE else None


def json_text(value: object) -> str:
    return orjson.dumps(value).decode()


def any_of(parts: list[str]) -> str:
    parts = [part for part in parts if part != "false"]
    if not parts:
        return "false"
    if len(parts) == 1:
        return parts[0]
    return "(" + " OR ".join(parts) + ")"


class Emitter:
    """Where a predicate is being written: its parameters, the context column, and whether
    every leaf so far decided exactly (no NULL)."""

    def __init__(self, sql: SqlBuilder, context: str) -> None:
        self.sql = sql
        self.context = context
        self.exact = True
        self.names: dict[str, str] = {}

    def unknown(self) -> str:
        self.exact = False
        return "NULL::boolean"

    def param(self, value: Any, cast: str) -> str:
        return f"{self.sql.param(value)}::{cast}"


class Leaf:
    """SQL fragments about one attribute of the context, or (`element()`) about one element
    of it when it is an array."""

    def __init__(self, compiler: Emitter, attribute: str, *, element: bool = False) -> None:
        self.c = compiler
        self.attribute = attribute
        self.is_element = element
        # The last CASE `by_type` wrote, with its branches: (sql, whens, otherwise).
        self.last_case: tuple[str, str, str] | None = None

    def element(self) -> "Leaf":
        """The same fragments about an element `elem.value` of this (array) attribute, for
        SQL inside `any_element`."""
        return Leaf(self.c, self.attribute, element=True)

    @property
    def name(self) -> str:
        # Bound on first use (an unused parameter would fail the statement), once per name.
        names = self.c.names
        if self.attribute not in names:
            names[self.attribute] = self.c.param(self.attribute, "text")
        return names[self.attribute]

    @property
    def value(self) -> str:
        if self.is_element:
            return f"({_ELEMENT})"
        return f"({self.c.context} -> {self.name})"

    @property
    def text(self) -> str:
        if self.is_element:
            return f"({_ELEMENT} #>> '{{}}')"
        return f"({self.c.context} ->> {self.name})"

    @property
    def type(self) -> str:
        return f"jsonb_typeof{self.value}"

    def has(self, json_value: str) -> str:
        """The attribute equals the JSON text `json_value` (strings by bytes, numbers by value,
        arrays when they hold every listed element): jsonb containment, cheap per row. An
        element is compared by jsonb equality (containment would look inside arrays)."""
        if self.is_element:
            return f"{_ELEMENT} = {self.c.param(json_value, 'text')}::jsonb"
        document = f"{{{json_text(self.attribute)}:{json_value}}}"
        return f"{self.c.context} @> {self.c.param(document, 'text')}::jsonb"

    def any_element(self, build: Callable[["Leaf", Operand], str], operand: Operand) -> str:
        """For an array attribute: some element matches the leaf `build` makes (three-valued:
        TRUE when one element is TRUE, NULL when none is but one is NULL, else FALSE).

        Written without a subquery: a correlated subquery over jsonb_array_elements would
        make the whole statement parallel-restricted, and counting a million profiles in one
        process costs twice the time of counting them in two. The element test is built once
        over a placeholder and repeated for the first `UNROLLED_ELEMENTS` elements
        (`value -> i`); a longer array is left to the evaluator (NULL). Arrays that long are
        rare in contexts, and where they are common the answer stays exact, only slower."""
        sql = build(self.element(), operand)
        if sql == "false":
            return "false"
        length = f"jsonb_array_length({self.value})"
        elements = " OR ".join(
            f"({length} > {i} AND {sql.replace(_ELEMENT, f'({self.value} -> {i})')})"
            for i in range(UNROLLED_ELEMENTS)
        )
        return f"(CASE WHEN {length} <= {UNROLLED_ELEMENTS} THEN ({elements}) ELSE {self.c.unknown()} END)"

    # Strings compared lower-cased (caseInsensitive).

    @property
    def folded(self) -> str:
        """The text lower-cased as Python's str.lower() does, when it is ASCII (`if_ascii`):
        translate() folds exactly A-Z, whatever the database's collation."""
        return f"translate({self.text}, '{_UPPER}', '{_UPPER.lower()}')"

    def if_ascii(self, sql: str) -> str:
        """`sql` (written over `folded`) for ASCII text; NULL otherwise, as lower() in
        PostgreSQL follows the collation where str.lower() follows Unicode (İ, ẞ, Σ, ...),
        so the evaluator decides."""
        text = self.text
        return (
            f"(CASE WHEN octet_length({text}) = length({text}) THEN {sql}"
            f" ELSE {self.c.unknown()} END)"
        )

    def by_type(self, branches: dict[str, str], otherwise: str = "false") -> str:
        branches = {kind: sql for kind, sql in branches.items() if sql != otherwise}
        if not branches:
            return otherwise
        whens = " ".join(f"WHEN '{kind}' THEN {sql}" for kind, sql in branches.items())
        case = f"(CASE {self.type} {whens} ELSE {otherwise} END)"
        self.last_case = (case, whens, otherwise)
        return case

    def with_array_branch(self, sql: str, each: str) -> str:
        """`sql` (this attribute's leaf for scalars) deciding an array by `each`. When `sql`
        is one CASE over the attribute's JSON type, the array becomes one more branch of it,
        so each row reads the attribute's type once; otherwise a CASE goes around it."""
        if self.last_case is not None and self.last_case[0] == sql and "'array'" not in sql:
            _, whens, otherwise = self.last_case
            return f"(CASE {self.type} {whens} WHEN 'array' THEN {each} ELSE {otherwise} END)"
        return f"(CASE WHEN {self.type} = 'array' THEN {each} ELSE {sql} END)"

    # Numbers.

    def _guarded(self, compare: str, expected: list[int | float]) -> str:
        """`compare` of a stored number, except that integers beyond 64 bits (which read back
        as floats) are left to Python when an expected value is large enough to care."""
        if all(abs(value) < SMALL for value in expected):
            return compare
        number = f"{self.value}::numeric"
        return (
            f"(CASE WHEN scale({number}) = 0"
            f" AND ({number} < {INT_LOW} OR {number} > {INT_HIGH})"
            f" THEN {self.c.unknown()} ELSE {compare} END)"
        )

    def number_compare(self, op: str, expected: float) -> str:
        """For a number attribute: it `op` an expected number, as Python compares them."""
        compare = f"{self.value}::numeric {op} {self.c.param(decimal_of(expected), 'numeric')}"
        return self._guarded(compare, [expected])

    def number_in(self, expected: list[int | float]) -> str:
        """For a number attribute: it equals one of the expected numbers."""
        if not expected:
            return "false"
        values = sorted({decimal_of(value) for value in expected})
        compare = f"{self.value}::numeric = ANY({self.c.param(values, 'numeric[]')})"
        return self._guarded(compare, expected)

    def equals_number(self, expected: float) -> str:
        """Any attribute: a JSON number equal to `expected` (not a numeric string)."""
        if abs(expected) < SMALL:
            return self.has(str(decimal_of(expected)))
        return self.by_type({"number": self.number_compare("=", expected)})

    def numeric_string(self, integer: str, double: str | None) -> str:
        """For a string attribute, read as `to_number` reads it: `integer` compares its value
        as numeric (integer strings, exact) and `double` as float8 (other numeric strings,
        as float() rounds them), None when float8 cannot be exact."""
        text = self.text
        return (
            f"(CASE WHEN {text} ~ '{INTEGER}' THEN"
            f" (CASE WHEN length({text}) <= {MAX_INT_TEXT} THEN {integer}"
            f" ELSE {self.c.unknown()} END)"
            f" WHEN {text} ~ '{NUMERIC}' THEN"
            f" (CASE WHEN length({text}) <= 100 AND {text} ~ '{SAFE_FLOAT}'"
            f" THEN {self.c.unknown() if double is None else double}"
            f" ELSE {self.c.unknown()} END)"
            " ELSE false END)"
        )

    def string_compare(self, op: str, expected: float) -> str:
        """For a string attribute: its numeric reading `op` an expected number."""
        integer = f"{self.text}::numeric {op} {self.c.param(decimal_of(expected), 'numeric')}"
        double = double_of(expected)
        double_sql = (
            None if double is None else f"{self.text}::float8 {op} {self.c.param(double, 'float8')}"
        )
        return self.numeric_string(integer, double_sql)

    def string_in(self, expected: list[int | float]) -> str:
        """For a string attribute: its numeric reading equals one of the expected numbers."""
        if not expected:
            return "false"
        decimals = sorted({decimal_of(value) for value in expected})
        integer = f"{self.text}::numeric = ANY({self.c.param(decimals, 'numeric[]')})"
        doubles = [double_of(value) for value in expected]
        known = sorted({double for double in doubles if double is not None})
        double_sql = (
            f"{self.text}::float8 = ANY({self.c.param(known, 'float8[]')})" if known else "false"
        )
        if None in doubles:
            double_sql = f"(CASE WHEN {double_sql} THEN true ELSE {self.c.unknown()} END)"
        return self.numeric_string(integer, double_sql)

    def spells(self, flag: bool) -> str:
        """Any attribute: the boolean `flag`, or a string spelling it in any letter case.

        translate() folds exactly the ASCII letters, as str.lower() must for the result to
        be "true" or "false"."""
        spelled = "true" if flag else "false"
        return f"COALESCE(translate({self.text}, '{spelled.upper()}', '{spelled}') = '{spelled}', false)"
