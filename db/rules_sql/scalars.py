"""The SQL leaves of the scalar operators: equality, membership, numeric comparison,
substrings, prefixes and presence."""

import math
from collections.abc import Callable
from typing import Any

from db.rules_sql.fragments import (
    SMALL,
    Leaf,
    any_of,
    decimal_of,
    json_text,
)
from rules.matchers import Operand
from rules.values import is_number, storable_text, to_bool, to_number

# One builder per operator, mirroring rules/matchers.py: each takes the leaf and the operand
# and returns the leaf's three-valued SQL, "false" where the evaluator's builder rejects the
# value (the condition then never matches). Case-insensitively, two strings compare as
# `Leaf.folded` against the value lower-cased by Python, under `Leaf.if_ascii`.


def equals(leaf: Leaf, operand: Operand) -> str:
    expected = operand.value
    if type(expected) is str:
        if not storable_text(expected):
            return "false"
        if operand.case_insensitive:
            folded = leaf.c.param(expected.lower(), "text")
            parts = [leaf.by_type({"string": leaf.if_ascii(f"{leaf.folded} = {folded}")})]
        else:
            parts = [leaf.has(json_text(expected))]
        as_bool = to_bool(expected)
        if as_bool is not None:
            parts.append(leaf.has(json_text(as_bool)))
        as_number = to_number(expected)
        if as_number is not None and math.isfinite(as_number):
            parts.append(leaf.equals_number(as_number))
        return any_of(parts)
    if type(expected) is bool:
        return leaf.spells(expected)
    if is_number(expected):
        return any_of(
            [
                leaf.equals_number(expected),
                leaf.by_type({"string": leaf.string_compare("=", expected)}),
            ]
        )
    return "false"


def one_of(leaf: Leaf, operand: Operand) -> str:
    expected = operand.value
    if type(expected) is not list:
        return "false"
    strings = sorted({value for value in expected if type(value) is str and storable_text(value)})
    bools = {value for value in expected if type(value) is bool}
    numbers = [value for value in expected if is_number(value)]
    converted = (to_number(value) for value in strings)
    number_keys = numbers + [n for n in converted if n is not None and math.isfinite(n)]
    bool_keys = bools | {b for b in map(to_bool, strings) if b is not None}
    string_parts = []
    if strings and operand.case_insensitive:
        folded = leaf.c.param(sorted({value.lower() for value in strings}), "text[]")
        string_parts.append(leaf.if_ascii(f"{leaf.folded} = ANY({folded})"))
    elif strings:
        string_parts.append(f"{leaf.text} = ANY({leaf.c.param(strings, 'text[]')})")
    if numbers:
        string_parts.append(leaf.string_in(numbers))
    # Strings spelling a listed boolean (a listed string spelling one is in `strings`).
    string_parts.extend(leaf.spells(flag) for flag in sorted(bools))
    boolean_parts = [f"{leaf.text} = '{json_text(flag)}'" for flag in sorted(bool_keys)]
    return leaf.by_type(
        {
            "string": any_of(string_parts),
            "number": leaf.number_in(number_keys),
            "boolean": any_of(boolean_parts),
        }
    )


# Equality with at most this many strings is tested on arrays by containment, one probe each.
_HELD_STRINGS = 32


def elements(leaf: Leaf, build: Callable[[Leaf, Operand], str], operand: Operand) -> str:
    """For an array attribute: some element matches `build` (`Leaf.any_element`), by jsonb
    containment when `build` is equality with strings, which decides every array exactly
    whatever its length."""
    if build is equals:
        values = [operand.value]
    elif build is one_of and type(operand.value) is list:
        values = operand.value
    else:
        values = []
    held = (
        not operand.case_insensitive
        and 0 < len(values) <= _HELD_STRINGS
        and all(type(value) is str and storable_text(value) for value in values)
    )
    if held:
        return any_of([array_holds(leaf, value) for value in sorted(set(values))])
    return leaf.any_element(build, operand)


def negation(build: Callable[[Leaf, Operand], str], accepts: Callable[[Any], bool]):
    """NEQ and NIN: exactly not EQ / not IN, for an array not any element; true for a missing
    or null attribute."""

    def negation(leaf: Leaf, operand: Operand) -> str:
        if not accepts(operand.value):
            return "false"
        return (
            f"(CASE COALESCE({leaf.type}, 'null') WHEN 'null' THEN true"
            f" WHEN 'array' THEN NOT {elements(leaf, build, operand)}"
            " WHEN 'object' THEN false"
            f" ELSE NOT {build(leaf, operand)} END)"
        )

    return negation


def comparison(op: str):
    def build(leaf: Leaf, operand: Operand) -> str:
        expected = operand.value
        if not is_number(expected):
            return "false"
        return leaf.by_type(
            {
                "number": leaf.number_compare(op, expected),
                "string": leaf.string_compare(op, expected),
            }
        )

    return build


def array_holds(leaf: Leaf, expected: str) -> str:
    """An array attribute with an element that EQ `expected` would match."""
    parts = [leaf.has(f"[{json_text(expected)}]")]
    as_bool = to_bool(expected)
    if as_bool is not None:
        parts.append(leaf.has(f"[{json_text(as_bool)}]"))
    as_number = to_number(expected)
    if as_number is not None and math.isfinite(as_number):
        if abs(as_number) < SMALL:
            parts.append(leaf.has(f"[{decimal_of(as_number)}]"))
        else:
            # Elements beyond 64 bits read back as floats; let Python look.
            parts.append(leaf.c.unknown())
    return any_of(parts)


def _string_test(leaf: Leaf, operand: Operand, test: Callable[[str, str], str]) -> str:
    """`test(text, value)` of a string attribute, both lower-cased when case-insensitive."""
    expected: str = operand.value
    if operand.case_insensitive:
        return leaf.if_ascii(test(leaf.folded, leaf.c.param(expected.lower(), "text")))
    return test(leaf.text, leaf.c.param(expected, "text"))


def _holds(leaf: Leaf, operand: Operand) -> str:
    """CONTAINS of an array: an element EQ would match (jsonb containment when it can)."""
    if operand.case_insensitive:
        return leaf.any_element(equals, operand)
    return array_holds(leaf, operand.value)


def contains(leaf: Leaf, operand: Operand) -> str:
    expected = operand.value
    if type(expected) is not str or not storable_text(expected):
        return "false"
    return leaf.by_type(
        {
            "string": _string_test(
                leaf, operand, lambda text, value: f"strpos({text}, {value}) > 0"
            ),
            "array": _holds(leaf, operand),
        }
    )


def not_contains(leaf: Leaf, operand: Operand) -> str:
    expected = operand.value
    if type(expected) is not str:
        return "false"
    if not storable_text(expected):
        return leaf.by_type({"string": "true", "array": "true"})
    return leaf.by_type(
        {
            "string": _string_test(
                leaf, operand, lambda text, value: f"strpos({text}, {value}) = 0"
            ),
            "array": f"NOT {_holds(leaf, operand)}",
        }
    )


def starts_with(leaf: Leaf, operand: Operand) -> str:
    if type(operand.value) is not str or not storable_text(operand.value):
        return "false"
    test = _string_test(leaf, operand, lambda text, prefix: f"starts_with({text}, {prefix})")
    return leaf.by_type({"string": test})


def ends_with(leaf: Leaf, operand: Operand) -> str:
    if type(operand.value) is not str or not storable_text(operand.value):
        return "false"
    test = _string_test(
        leaf, operand, lambda text, suffix: f"right({text}, length({suffix})) = {suffix}"
    )
    return leaf.by_type({"string": test})


def exists(leaf: Leaf, _: Operand) -> str:
    return f"COALESCE({leaf.type} <> 'null', false)"


def not_exists(leaf: Leaf, _: Operand) -> str:
    return f"COALESCE({leaf.type} = 'null', true)"
