"""Compiles a validated segment definition into one SQL predicate over `profiles.context`.

The predicate is three-valued on purpose: TRUE when the profile certainly matches, FALSE when
it certainly does not, NULL when SQL cannot decide exactly what `rules.evaluate` would (RE2
regexes, unusual numeric strings, pre-release semver ties, ...). SQL's AND/OR/NOT are Kleene
logic, so a group is TRUE or FALSE whenever its decided children settle it, and NULL only when
an undecided child could change the outcome. In the terms of a (sure, maybe) pair of
predicates: sure = `expr IS TRUE`, maybe = `expr IS NOT FALSE`. Callers count the TRUE rows in
SQL and let the Python evaluator decide the NULL ones from their stored context.

Every leaf below mirrors its builder in rules/evaluate.py and the coercions of rules/values.py
line by line; anything a leaf cannot reproduce yields NULL, never a wrong TRUE or FALSE.
Values are always bound as parameters. Casts that could raise are guarded by the pattern the
Python coercion uses, so no stored value can make a query fail.

How numbers line up: the stored context comes from orjson, so a JSON number with a fraction
in its text (numeric scale > 0) reads back as a Python float whose shortest repr is that text,
and one without reads back as an int (or, beyond 64 bits, as a float). Comparing the stored
decimal with `_decimal(expected)` (the exact integer for integral values, the shortest repr
otherwise) orders every int and every such float exactly as Python compares them; only
integers beyond 64 bits, which Python sees as floats, need the evaluator when the expected
value is that large too.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from db.pagination import SqlBuilder
from rules.evaluate import evaluate_rules
from rules.models import LOGICAL_OPS
from rules.values import (
    NUMERIC_STRING_PATTERN,
    compile_regex,
    is_number,
    parse_iso_instant,
    parse_semver,
    to_bool,
    to_number,
)

# Stored rules are validated to depth 5; the evaluator gives up beyond this depth, and so do we.
_MAX_DEPTH = 32

_NUMERIC = f"^{NUMERIC_STRING_PATTERN}$"
_INTEGER = "^[+-]?[0-9]+$"
# A numeric string whose float() is finite and non-zero unless written as zero, so ::float8
# cannot raise: at most 100 characters and an exponent of at most two digits.
_SAFE_FLOAT = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,2})?$"
# Python parses integer strings of up to 4300 digits exactly (its int-from-str limit).
_MAX_INT_TEXT = 4300
# Integers Python reads from stored JSON as ints (orjson: 64 bits, signed or not).
_INT_LOW, _INT_HIGH = -(2**63), 2**64 - 1
# Expected values this small compare with out-of-range stored integers by sign alone.
_SMALL = 2**62
# Integers a double holds exactly.
_EXACT_IN_DOUBLE = 2**53

# ISO-8601 instants PostgreSQL parses exactly as datetime.fromisoformat does: a valid
# calendar date in years 0001-9999 (29 February left to Python), times within range, at most
# six fraction digits after a dot (Python truncates longer fractions), offsets up to ±23:59.
_ISO_STRICT = (
    r"^(?!0000)[0-9]{4}-"
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"
    r"(?:[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?$"
)
_ISO_LOOSE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?$"
)
_ISO_DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_EPOCH = datetime(1970, 1, 1)
_DAY = 86_400_000_000  # microseconds

_SEMVER_CORE = r"v?(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"
_SEMVER_IDENTIFIER = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER_VALID = (
    f"^{_SEMVER_CORE}"
    f"(?:-{_SEMVER_IDENTIFIER}(?:\\.{_SEMVER_IDENTIFIER})*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
# A release whose numbers fit a bigint comfortably (nine digits each).
_SEMVER_PLAIN = r"^v?(?:0|[1-9][0-9]{0,8})\.(?:0|[1-9][0-9]{0,8})\.(?:0|[1-9][0-9]{0,8})$"
_MAX_SEMVER_TEXT = 1000  # far below Python's int-from-str limit for the three numbers


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
    context: str = "p.context",
    key: str = "p.targeting_key",
) -> Predicate:
    """The membership predicate of a stored segment definition (`CompiledSegment.evaluate`)."""
    if force is True:
        return Predicate("true", True)
    compiler = _Compiler(sql, context)
    expr, _ = compiler.group(logical_op, rules, depth=0)
    included_keys = _targets(included)
    excluded_keys = _targets(excluded)
    if included_keys:
        expr = f"({key} = ANY({sql.param(included_keys)}::text[]) OR {expr})"
    if excluded_keys:
        expr = f"(NOT {key} = ANY({sql.param(excluded_keys)}::text[]) AND {expr})"
    return Predicate(expr, compiler.exact)


def _targets(targets: object) -> list[str]:
    if type(targets) is not list:
        return []
    return sorted({target for target in targets if type(target) is str and _storable(target)})


def _storable(text: str) -> bool:
    """Whether PostgreSQL can hold the string (no NUL, valid UTF-8). Stored profiles hold only
    such strings, so a rule string that is not one equals, contains or starts nothing stored
    (and could not be sent as a parameter anyway)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates, which JSON parsers let through
        return False
    return True


def _decimal(number: float) -> Decimal:
    """The value stored numbers are compared with (see the module docstring)."""
    if isinstance(number, float):
        return Decimal(int(number)) if number.is_integer() else Decimal(repr(number))
    return Decimal(number)


def _double(number: float) -> float | None:
    """The double a float() of a numeric string is compared with, when that is exact."""
    if isinstance(number, float):
        return number
    return float(number) if abs(number) <= _EXACT_IN_DOUBLE else None


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


class _Compiler:
    def __init__(self, sql: SqlBuilder, context: str) -> None:
        self.sql = sql
        self.context = context
        self.exact = True
        self._names: dict[str, str] = {}

    def unknown(self) -> str:
        self.exact = False
        return "NULL::boolean"

    def param(self, value: Any, cast: str) -> str:
        return f"{self.sql.param(value)}::{cast}"

    # The tree. Each node compiles to (sql, cost); siblings are joined cheapest first, so
    # AND and OR stop early on the common rows (Kleene logic is commutative, and PostgreSQL
    # evaluates a boolean expression's arguments left to right, stopping at the first that
    # settles it).

    def group(self, logical_op: object, rules: object, depth: int) -> tuple[str, int]:
        if depth > _MAX_DEPTH or logical_op not in LOGICAL_OPS or type(rules) is not list:
            return "false", 0
        children = sorted((self.rule(rule, depth) for rule in rules), key=lambda child: child[1])
        if not children:
            return "false", 0  # an empty rule list never matches, whatever its operator
        cost = sum(child_cost for _, child_cost in children)
        if len(children) == 1:
            sql = children[0][0]
            return (f"(NOT {sql})" if logical_op == "NOT" else sql), cost
        joiner = " OR " if logical_op == "OR" else " AND "
        sql = "(" + joiner.join(child_sql for child_sql, _ in children) + ")"
        return (f"(NOT {sql})" if logical_op == "NOT" else sql), cost

    def rule(self, rule: object, depth: int) -> tuple[str, int]:
        if type(rule) is not dict:
            return "false", 0
        if "logicalOp" in rule:
            return self.group(rule.get("logicalOp"), rule.get("rules"), depth + 1)
        attribute, op, value = rule.get("attribute"), rule.get("operator"), rule.get("value")
        build = _LEAVES.get(op) if type(op) is str else None
        if build is None or type(attribute) is not str:
            return "false", 0
        if not _storable(attribute):
            # No stored context has such a key: the condition sees an absent attribute.
            return ("true" if evaluate_rules("AND", [rule], {}) else "false"), 0  # type: ignore[list-item]
        return build(_Leaf(self, attribute), value), _COSTS[str(op)]


class _Leaf:
    """SQL fragments about one attribute of the context."""

    def __init__(self, compiler: _Compiler, attribute: str) -> None:
        self.c = compiler
        self.attribute = attribute

    @property
    def name(self) -> str:
        # Bound on first use (an unused parameter would fail the statement), once per name.
        names = self.c._names
        if self.attribute not in names:
            names[self.attribute] = self.c.param(self.attribute, "text")
        return names[self.attribute]

    @property
    def value(self) -> str:
        return f"({self.c.context} -> {self.name})"

    @property
    def text(self) -> str:
        return f"({self.c.context} ->> {self.name})"

    @property
    def type(self) -> str:
        return f"jsonb_typeof{self.value}"

    def has(self, json_value: str) -> str:
        """The attribute equals the JSON text `json_value` (strings by bytes, numbers by value,
        arrays when they hold every listed element): jsonb containment, cheap per row."""
        document = f"{{{_json(self.attribute)}:{json_value}}}"
        return f"{self.c.context} @> {self.c.param(document, 'text')}::jsonb"

    def by_type(self, branches: dict[str, str], otherwise: str = "false") -> str:
        branches = {kind: sql for kind, sql in branches.items() if sql != otherwise}
        if not branches:
            return otherwise
        whens = " ".join(f"WHEN '{kind}' THEN {sql}" for kind, sql in branches.items())
        return f"(CASE {self.type} {whens} ELSE {otherwise} END)"

    # Numbers.

    def _guarded(self, compare: str, expected: list[int | float]) -> str:
        """`compare` of a stored number, except that integers beyond 64 bits (which read back
        as floats) are left to Python when an expected value is large enough to care."""
        if all(abs(value) < _SMALL for value in expected):
            return compare
        number = f"{self.value}::numeric"
        return (
            f"(CASE WHEN scale({number}) = 0"
            f" AND ({number} < {_INT_LOW} OR {number} > {_INT_HIGH})"
            f" THEN {self.c.unknown()} ELSE {compare} END)"
        )

    def number_compare(self, op: str, expected: float) -> str:
        """For a number attribute: it `op` an expected number, as Python compares them."""
        compare = f"{self.value}::numeric {op} {self.c.param(_decimal(expected), 'numeric')}"
        return self._guarded(compare, [expected])

    def number_in(self, expected: list[int | float]) -> str:
        """For a number attribute: it equals one of the expected numbers."""
        if not expected:
            return "false"
        values = sorted({_decimal(value) for value in expected})
        compare = f"{self.value}::numeric = ANY({self.c.param(values, 'numeric[]')})"
        return self._guarded(compare, expected)

    def equals_number(self, expected: float) -> str:
        """Any attribute: a JSON number equal to `expected` (not a numeric string)."""
        if abs(expected) < _SMALL:
            return self.has(str(_decimal(expected)))
        return self.by_type({"number": self.number_compare("=", expected)})

    def numeric_string(self, integer: str, double: str | None) -> str:
        """For a string attribute, read as `to_number` reads it: `integer` compares its value
        as numeric (integer strings, exact) and `double` as float8 (other numeric strings,
        as float() rounds them), None when float8 cannot be exact."""
        text = self.text
        return (
            f"(CASE WHEN {text} ~ '{_INTEGER}' THEN"
            f" (CASE WHEN length({text}) <= {_MAX_INT_TEXT} THEN {integer}"
            f" ELSE {self.c.unknown()} END)"
            f" WHEN {text} ~ '{_NUMERIC}' THEN"
            f" (CASE WHEN length({text}) <= 100 AND {text} ~ '{_SAFE_FLOAT}'"
            f" THEN {self.c.unknown() if double is None else double}"
            f" ELSE {self.c.unknown()} END)"
            " ELSE false END)"
        )

    def string_compare(self, op: str, expected: float) -> str:
        """For a string attribute: its numeric reading `op` an expected number."""
        integer = f"{self.text}::numeric {op} {self.c.param(_decimal(expected), 'numeric')}"
        double = _double(expected)
        double_sql = (
            None if double is None else f"{self.text}::float8 {op} {self.c.param(double, 'float8')}"
        )
        return self.numeric_string(integer, double_sql)

    def string_in(self, expected: list[int | float]) -> str:
        """For a string attribute: its numeric reading equals one of the expected numbers."""
        if not expected:
            return "false"
        decimals = sorted({_decimal(value) for value in expected})
        integer = f"{self.text}::numeric = ANY({self.c.param(decimals, 'numeric[]')})"
        doubles = [_double(value) for value in expected]
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


# One builder per operator, mirroring rules/evaluate.py's _TEST_BUILDERS: each takes the leaf
# and the stored value and returns the leaf's three-valued SQL, "false" where the evaluator's
# builder rejects the value (the condition then never matches).


def _equals(leaf: _Leaf, expected: Any) -> str:
    if type(expected) is str:
        if not _storable(expected):
            return "false"
        parts = [leaf.has(_json(expected))]
        as_bool = to_bool(expected)
        if as_bool is not None:
            parts.append(leaf.has(_json(as_bool)))
        as_number = to_number(expected)
        if as_number is not None and math.isfinite(as_number):
            parts.append(leaf.equals_number(as_number))
        return _any(parts)
    if type(expected) is bool:
        return leaf.spells(expected)
    if is_number(expected):
        return _any(
            [
                leaf.equals_number(expected),
                leaf.by_type({"string": leaf.string_compare("=", expected)}),
            ]
        )
    return "false"


def _one_of(leaf: _Leaf, expected: Any) -> str:
    if type(expected) is not list:
        return "false"
    strings = sorted({value for value in expected if type(value) is str and _storable(value)})
    bools = {value for value in expected if type(value) is bool}
    numbers = [value for value in expected if is_number(value)]
    converted = (to_number(value) for value in strings)
    number_keys = numbers + [n for n in converted if n is not None and math.isfinite(n)]
    bool_keys = bools | {b for b in map(to_bool, strings) if b is not None}
    string_parts = []
    if strings:
        string_parts.append(f"{leaf.text} = ANY({leaf.c.param(strings, 'text[]')})")
    if numbers:
        string_parts.append(leaf.string_in(numbers))
    # Strings spelling a listed boolean (a listed string spelling one is in `strings`).
    string_parts.extend(leaf.spells(flag) for flag in sorted(bools))
    boolean_parts = [f"{leaf.text} = '{_json(flag)}'" for flag in sorted(bool_keys)]
    return leaf.by_type(
        {
            "string": _any(string_parts),
            "number": leaf.number_in(number_keys),
            "boolean": _any(boolean_parts),
        }
    )


def _negation(build: Callable[[_Leaf, Any], str], accepts: Callable[[Any], bool]):
    """NEQ and NIN: true for a missing or null attribute, false for an array or object."""

    def negation(leaf: _Leaf, expected: Any) -> str:
        if not accepts(expected):
            return "false"
        return (
            f"(CASE COALESCE({leaf.type}, 'null') WHEN 'null' THEN true"
            f" WHEN 'array' THEN false WHEN 'object' THEN false"
            f" ELSE NOT {build(leaf, expected)} END)"
        )

    return negation


def _comparison(op: str):
    def build(leaf: _Leaf, expected: Any) -> str:
        if not is_number(expected):
            return "false"
        return leaf.by_type(
            {
                "number": leaf.number_compare(op, expected),
                "string": leaf.string_compare(op, expected),
            }
        )

    return build


def _array_holds(leaf: _Leaf, expected: str) -> str:
    """An array attribute with an element that EQ `expected` would match."""
    parts = [leaf.has(f"[{_json(expected)}]")]
    as_bool = to_bool(expected)
    if as_bool is not None:
        parts.append(leaf.has(f"[{_json(as_bool)}]"))
    as_number = to_number(expected)
    if as_number is not None and math.isfinite(as_number):
        if abs(as_number) < _SMALL:
            parts.append(leaf.has(f"[{_decimal(as_number)}]"))
        else:
            # Elements beyond 64 bits read back as floats; let Python look.
            parts.append(leaf.c.unknown())
    return _any(parts)


def _contains(leaf: _Leaf, expected: Any) -> str:
    if type(expected) is not str or not _storable(expected):
        return "false"
    return leaf.by_type(
        {
            "string": f"strpos({leaf.text}, {leaf.c.param(expected, 'text')}) > 0",
            "array": _array_holds(leaf, expected),
        }
    )


def _not_contains(leaf: _Leaf, expected: Any) -> str:
    if type(expected) is not str:
        return "false"
    if not _storable(expected):
        return leaf.by_type({"string": "true", "array": "true"})
    return leaf.by_type(
        {
            "string": f"strpos({leaf.text}, {leaf.c.param(expected, 'text')}) = 0",
            "array": f"NOT {_array_holds(leaf, expected)}",
        }
    )


def _starts_with(leaf: _Leaf, expected: Any) -> str:
    if type(expected) is not str or not _storable(expected):
        return "false"
    prefix = leaf.c.param(expected, "text")
    return leaf.by_type({"string": f"starts_with({leaf.text}, {prefix})"})


def _ends_with(leaf: _Leaf, expected: Any) -> str:
    if type(expected) is not str or not _storable(expected):
        return "false"
    suffix = leaf.c.param(expected, "text")
    return leaf.by_type({"string": f"right({leaf.text}, length({suffix})) = {suffix}"})


def _exists(leaf: _Leaf, _: Any) -> str:
    return f"COALESCE({leaf.type} <> 'null', false)"


def _not_exists(leaf: _Leaf, _: Any) -> str:
    return f"COALESCE({leaf.type} = 'null', true)"


def _regex(leaf: _Leaf, expected: Any) -> str:
    if type(expected) is not str or compile_regex(expected) is None:
        return "false"
    translated = postgres_regex(expected)
    if translated is None:
        # Beyond the common subset PostgreSQL reads alike: the evaluator decides.
        unknown = leaf.c.unknown()
        return leaf.by_type({"string": unknown, "number": unknown})
    pattern = leaf.c.param(translated, "text")
    # Numbers are searched in their Python text form (repr): integers as PostgreSQL writes
    # them; floats too unless repr would use an exponent (below 1e-4; from 1e16 up they are
    # stored as integers). Integers beyond 64 bits read back as floats: evaluator.
    number = f"{leaf.value}::numeric"
    number_sql = (
        f"(CASE WHEN scale({number}) = 0 AND {number} BETWEEN {_INT_LOW} AND {_INT_HIGH}"
        f" THEN {leaf.text} ~ {pattern}"
        f" WHEN scale({number}) > 0 AND (abs({number}) >= 0.0001 OR {number} = 0)"
        f" THEN {leaf.text} ~ {pattern}"
        f" ELSE {leaf.c.unknown()} END)"
    )
    return leaf.by_type({"string": f"{leaf.text} ~ {pattern}", "number": number_sql})


# RE2 patterns in PostgreSQL: a strict subset of RE2's syntax that PostgreSQL's advanced
# regular expressions read with the same meaning is rewritten (with every class spelled out
# in ASCII ranges, so no locale can widen \d or \w); any other pattern returns None and is
# left to the evaluator.

_RE2_CLASSES = {"d": "0-9", "w": "0-9A-Za-z_", "s": "\\t\\n\\f\\r "}
_RE2_CONTROL = {"n": "\\n", "t": "\\t", "r": "\\r", "f": "\\f"}
_RE2_SPECIAL = set("\\.+*?()|[]{}^$")
# PostgreSQL unrolls counted repetitions into its automaton, so their cost per row grows with
# the counts; patterns counting more than this in total are left to the evaluator.
_MAX_REPEAT = 64


class _Untranslatable(Exception):
    pass


def postgres_regex(pattern: str) -> str | None:
    """The PostgreSQL regular expression that searches like RE2 searches `pattern`, or None."""
    if not _storable(pattern):
        return None
    try:
        parser = _RegexParser(pattern)
        translated, _ = parser.alternation()
        if parser.position != len(pattern):
            return None
        return translated
    except _Untranslatable:
        return None


class _RegexParser:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.position = 0
        self.repeats = 0

    def peek(self, offset: int = 0) -> str | None:
        index = self.position + offset
        return self.pattern[index] if index < len(self.pattern) else None

    def take(self) -> str:
        char = self.peek()
        if char is None:
            raise _Untranslatable
        self.position += 1
        return char

    def alternation(self) -> tuple[str, bool]:
        """(translation, whether it holds a counted repetition)"""
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.take()
            branches.append(self.concatenation())
        if any(not branch for branch, _ in branches):
            raise _Untranslatable  # empty branches: legal in both, but not worth the doubt
        return "|".join(branch for branch, _ in branches), any(c for _, c in branches)

    def concatenation(self) -> tuple[str, bool]:
        pieces: list[str] = []
        counted = False
        while self.peek() not in (None, "|", ")"):
            atom, atom_counted, repeatable = self.atom()
            quantifier, is_counted = self.quantifier()
            if quantifier and not repeatable:
                raise _Untranslatable
            if is_counted and atom_counted:
                raise _Untranslatable  # nested counts multiply PostgreSQL's automaton
            pieces.append(atom + quantifier)
            counted = counted or atom_counted or is_counted
        return "".join(pieces), counted

    def atom(self) -> tuple[str, bool, bool]:
        """(translation, holds a counted repetition, may be quantified)"""
        char = self.take()
        if char in "^$":
            return char, False, False
        if char == ".":
            return "[^\\n]", False, True
        if char == "(":
            if self.peek() == "?":
                if self.peek(1) != ":":
                    raise _Untranslatable  # flags and named groups
                self.position += 2
            inner, counted = self.alternation()
            if self.take() != ")":
                raise _Untranslatable
            return f"(?:{inner})", counted, True
        if char == "[":
            return self.bracket(), False, True
        if char == "\\":
            return self.escape(in_bracket=False), False, True
        if char in _RE2_SPECIAL:
            raise _Untranslatable  # ")", "]", "{", quantifiers without an atom, ...
        return _literal(char), False, True

    def escape(self, in_bracket: bool) -> str:
        char = self.take()
        if char in _RE2_CLASSES:
            return _RE2_CLASSES[char] if in_bracket else f"[{_RE2_CLASSES[char]}]"
        if char.isupper() and char.lower() in _RE2_CLASSES and not in_bracket:
            return f"[^{_RE2_CLASSES[char.lower()]}]"
        if char in _RE2_CONTROL:
            return _RE2_CONTROL[char]
        if char.isascii() and not char.isalnum():
            return _literal(char)
        raise _Untranslatable  # \b, \A, \z, \p{..}, \x.., \Q..\E, octal, ...

    def bracket(self) -> str:
        negated = self.peek() == "^"
        if negated:
            self.take()
        members: list[str] = []
        first = True
        while True:
            char = self.take()
            if char == "]" and not first:
                break
            first = False
            if char in "[]":
                raise _Untranslatable  # POSIX classes, a leading "]"
            is_range = self.peek(0 if char != "\\" else 1) == "-"
            if char == "\\":
                member = self.escape(in_bracket=True)
                low = self.pattern[self.position - 1]
                if low in _RE2_CONTROL or low in _RE2_CLASSES:
                    if is_range and self.peek(1) not in ("]", None):
                        raise _Untranslatable  # a range from an escape
                    members.append(member)
                    continue
            else:
                low = char
            if self.peek() == "-" and self.peek(1) not in ("]", None):
                self.take()
                high = self.take()
                if high == "\\":
                    high = self.take()
                    if high.isalnum() or not high.isascii():
                        raise _Untranslatable
                elif high in "[]":
                    raise _Untranslatable
                if not (low.isascii() and high.isascii()) or ord(high) < ord(low):
                    raise _Untranslatable  # non-ASCII ranges may follow the locale
                members.append(f"{_literal(low)}-{_literal(high)}")
            else:
                members.append(_literal(low))
        return f"[{'^' if negated else ''}{''.join(members)}]"

    def quantifier(self) -> tuple[str, bool]:
        char = self.peek()
        if char in ("*", "+", "?"):
            self.take()
            quantifier, counted = char, False
        elif char == "{":
            end = self.pattern.find("}", self.position)
            body = self.pattern[self.position + 1 : end] if end > 0 else ""
            low, comma, high = body.partition(",")
            if not low.isdigit() or (high and not high.isdigit()) or not low.isascii():
                raise _Untranslatable  # a literal "{" in RE2, or malformed
            if high and int(high) < int(low):
                raise _Untranslatable
            self.repeats += int(high or low)
            if self.repeats > _MAX_REPEAT:
                raise _Untranslatable
            if comma and not high:
                quantifier = f"{{{int(low)},}}"
            elif comma:
                quantifier = f"{{{int(low)},{int(high)}}}"
            else:
                quantifier = f"{{{int(low)}}}"
            self.position = end + 1
            counted = True
        else:
            return "", False
        if self.peek() == "?":
            self.take()  # lazy: the same matches exist, only their extent differs
        if self.peek() in ("*", "+", "?", "{"):
            raise _Untranslatable
        return quantifier, counted


def _literal(char: str) -> str:
    """A character matching itself in PostgreSQL, inside or outside brackets."""
    if char.isascii() and not char.isalnum():
        return "\\" + char
    return char


def _instant_comparison(op: str):
    def build(leaf: _Leaf, expected: Any) -> str:
        bound = parse_iso_instant(expected) if type(expected) is str else None
        if bound is None:
            return "false"
        return leaf.by_type(
            {"number": _instant_number(leaf, op, bound), "string": _instant_string(leaf, op, bound)}
        )

    return build


def _instant_number(leaf: _Leaf, op: str, bound: int) -> str:
    """Epoch seconds: an int times 10**6 exactly; a float times 1e6 in double arithmetic."""
    number = f"{leaf.value}::numeric"
    seconds = leaf.c.param(Decimal(bound).scaleb(-6), "numeric")
    double = _micros_compare(leaf, f"{leaf.value}::float8", op, bound)
    # Integers beyond 64 bits read back as floats, but their products lie far beyond any
    # instant, on the same side as the exact product.
    return f"(CASE WHEN scale({number}) = 0 THEN {number} {op} {seconds} ELSE {double} END)"


def _micros_compare(leaf: _Leaf, seconds: str, op: str, bound: int) -> str:
    """Python's `seconds * 1_000_000 <op> bound` for a float: the product rounded as a double,
    then compared exactly with the integer bound. Doubles of 2**53 and more are integers, so
    bigint compares them exactly; below, the bound's double is on the same side (it can
    only round to 2**53 or beyond when the bound is that large); far beyond any instant
    either comparison is right."""
    product = f"({seconds} * 1000000::float8)"
    return (
        f"(CASE WHEN abs({product}) >= {float(_EXACT_IN_DOUBLE)}::float8"
        f" AND abs({product}) < 9.0e18::float8"
        f" THEN {product}::bigint {op} {leaf.c.param(bound, 'bigint')}"
        f" ELSE {product} {op} {leaf.c.param(float(bound), 'float8')} END)"
    )


def _instant_string(leaf: _Leaf, op: str, bound: int) -> str:
    """ISO-8601 strings as parse_iso_instant reads them, else epoch seconds as to_number."""
    text = leaf.text
    integer = f"{text}::numeric {op} {leaf.c.param(Decimal(bound).scaleb(-6), 'numeric')}"
    double = _micros_compare(leaf, f"{text}::float8", op, bound)
    return (
        f"(CASE WHEN {text} ~ '{_ISO_DATE}' THEN {_iso_date(leaf, op, bound)}"
        f" WHEN {text} ~ '{_ISO_STRICT}' THEN {_iso_date_time(leaf, op, bound)}"
        f" WHEN {text} ~ '{_ISO_LOOSE}' THEN {leaf.c.unknown()}"
        f" ELSE {leaf.numeric_string(integer, double)} END)"
    )


def _iso_date(leaf: _Leaf, op: str, bound: int) -> str:
    """A YYYY-MM-DD string: midnight UTC if the date is valid, compared as text with the
    bound's own date (for "<", midnight of d is before the bound iff d is before the first
    day whose midnight is not; for ">", iff d is after the day the bound falls on)."""
    text = f'({leaf.text} COLLATE "C")'
    day = bound // _DAY
    first = day if op == ">" or bound % _DAY == 0 else day + 1
    first_text = leaf.c.param(_date_text(first), "text")
    month, mday = f"substr({text}, 6, 2)", f"substr({text}, 9, 2)"
    days_in_month = (
        f"(CASE {month} WHEN '02' THEN '28' WHEN '04' THEN '30' WHEN '06' THEN '30'"
        " WHEN '09' THEN '30' WHEN '11' THEN '30' ELSE '31' END)"
    )
    year = f"left({text}, 4)::integer"
    leap_day = (
        f"({month} = '02' AND {mday} = '29'"
        f" AND {year} % 4 = 0 AND ({year} % 100 <> 0 OR {year} % 400 = 0))"
    )
    valid = (
        f"left({text}, 4) <> '0000' AND {month} BETWEEN '01' AND '12'"
        f" AND ({mday} BETWEEN '01' AND {days_in_month} OR {leap_day})"
    )
    return f'({text} {op} {first_text}::text COLLATE "C" AND {valid})'


def _date_text(day: int) -> str:
    """Days since the epoch as YYYY-MM-DD, clamped to sort before or after every valid date."""
    try:
        return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d").rjust(10, "0")
    except OverflowError:
        return "0000-00-00" if day < 0 else "9999-99-99"


def _iso_date_time(leaf: _Leaf, op: str, bound: int) -> str:
    """A date-time the strict pattern vouches for, parsed by PostgreSQL."""
    text = leaf.text
    # The bound as a UTC timestamp, built in SQL from whole days and microseconds (it may
    # fall just outside the years Python's datetime holds); constant, so folded once.
    days, micros = divmod(bound, _DAY)
    bound_sql = (
        f"(timestamp '1970-01-01' + {leaf.c.param(days, 'integer')} * interval '1 day'"
        f" + {leaf.c.param(micros, 'bigint')} * interval '1 microsecond')"
    )
    # An offset (Z, +hh, -hh:mm) can only follow the time, which starts at character 12;
    # without one the time is UTC (a timestamptz would take the session's zone).
    return (
        f"((CASE WHEN right({text}, 1) = 'Z' OR strpos(substr({text}, 12), '+') > 0"
        f" OR strpos(substr({text}, 12), '-') > 0"
        f" THEN ({text}::timestamptz AT TIME ZONE 'UTC') ELSE {text}::timestamp END)"
        f" {op} {bound_sql})"
    )


def _semver_comparison(kind: str):
    def build(leaf: _Leaf, expected: Any) -> str:
        bound = parse_semver(expected) if type(expected) is str else None
        if bound is None:
            return "false"
        text = leaf.text
        bound_is_release = bound[3] == (1,)
        # Plain releases (the usual case) in SQL: three numbers of at most nine digits.
        if max(bound[:3]) < 2**63:
            plain_core = f"string_to_array(ltrim({text}, 'v'), '.')::bigint[]"
            plain_bound: tuple[list[Any], str] = (list(bound[:3]), "bigint[]")
        else:
            plain_core = f"string_to_array(ltrim({text}, 'v'), '.')::numeric[]"
            plain_bound = ([Decimal(part) for part in bound[:3]], "numeric[]")
        if kind == "EQ":
            plain = f"{plain_core} = {leaf.c.param(*plain_bound)}" if bound_is_release else "false"
        elif kind == "GT":
            operator = ">" if bound_is_release else ">="
            plain = f"{plain_core} {operator} {leaf.c.param(*plain_bound)}"
        else:
            plain = f"{plain_core} < {leaf.c.param(*plain_bound)}"
        # Anything else valid: decided by major.minor.patch when they differ; on a tie a
        # release sorts after its pre-releases, and two pre-releases compare identifier by
        # identifier, which only the evaluator does (NULL).
        core = (
            "string_to_array(split_part(split_part(ltrim("
            f"{text}, 'v'), '+', 1), '-', 1), '.')::numeric[]"
        )
        bound_core = leaf.c.param([Decimal(part) for part in bound[:3]], "numeric[]")
        is_release = f"strpos(split_part({text}, '+', 1), '-') = 0"
        if kind == "EQ":
            if bound_is_release:
                tie = is_release
            else:
                tie = f"(CASE WHEN {is_release} THEN false ELSE {leaf.c.unknown()} END)"
            decided = f"({core} = {bound_core} AND {tie})"
        elif kind == "GT":
            if bound_is_release:
                tie = "false"
            else:
                tie = f"(CASE WHEN {is_release} THEN true ELSE {leaf.c.unknown()} END)"
            decided = f"({core} > {bound_core} OR ({core} = {bound_core} AND {tie}))"
        else:
            if bound_is_release:
                tie = f"NOT {is_release}"
            else:
                tie = f"(CASE WHEN {is_release} THEN false ELSE {leaf.c.unknown()} END)"
            decided = f"({core} < {bound_core} OR ({core} = {bound_core} AND {tie}))"
        return leaf.by_type(
            {
                "string": (
                    f"(CASE WHEN {text} ~ '{_SEMVER_PLAIN}' THEN {plain}"
                    f" WHEN length({text}) <= {_MAX_SEMVER_TEXT} AND {text} ~ '{_SEMVER_VALID}'"
                    f" THEN {decided}"
                    f" WHEN {text} ~ '^{_SEMVER_CORE}' THEN {leaf.c.unknown()}"
                    " ELSE false END)"
                )
            }
        )

    return build


def _any(parts: list[str]) -> str:
    parts = [part for part in parts if part != "false"]
    if not parts:
        return "false"
    if len(parts) == 1:
        return parts[0]
    return "(" + " OR ".join(parts) + ")"


# Rough relative cost per row of each operator's SQL: containment tests are cheapest, regular
# expressions dearest; REGEX is cheap in SQL but its NULLs settle nothing, so it goes last.
_COSTS = {
    "EXISTS": 1,
    "NOT_EXISTS": 1,
    "EQ": 1,
    "CONTAINS": 2,
    "NEQ": 2,
    "IN": 2,
    "NIN": 2,
    "GT": 2,
    "GTE": 2,
    "LT": 2,
    "LTE": 2,
    "NOT_CONTAINS": 2,
    "STARTS_WITH": 2,
    "ENDS_WITH": 2,
    "BEFORE": 5,
    "AFTER": 5,
    "SEMVER_EQ": 5,
    "SEMVER_GT": 5,
    "SEMVER_LT": 5,
    "REGEX": 8,
}

_LEAVES = {
    "EQ": _equals,
    "NEQ": _negation(_equals, lambda value: type(value) in (str, bool) or is_number(value)),
    "IN": _one_of,
    "NIN": _negation(_one_of, lambda value: type(value) is list),
    "GT": _comparison(">"),
    "GTE": _comparison(">="),
    "LT": _comparison("<"),
    "LTE": _comparison("<="),
    "CONTAINS": _contains,
    "NOT_CONTAINS": _not_contains,
    "STARTS_WITH": _starts_with,
    "ENDS_WITH": _ends_with,
    "EXISTS": _exists,
    "NOT_EXISTS": _not_exists,
    "REGEX": _regex,
    "BEFORE": _instant_comparison("<"),
    "AFTER": _instant_comparison(">"),
    "SEMVER_EQ": _semver_comparison("EQ"),
    "SEMVER_GT": _semver_comparison("GT"),
    "SEMVER_LT": _semver_comparison("LT"),
}
