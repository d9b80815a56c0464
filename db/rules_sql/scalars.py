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
from rules.values import is_number, storable_text, to_bool, to_number

# One builder per operator, mirroring rules/evaluate.py's _TEST_BUILDERS: each takes the leaf
# and the stored value and returns the leaf's three-valued SQL, "false" where the evaluator's
# builder rejects the value (the condition then never matches).


def equals(leaf: Leaf, expected: Any) -> str:
    if type(expected) is str:
        if not storable_text(expected):
            return "false"
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


def one_of(leaf: Leaf, expected: Any) -> str:
    if type(expected) is not list:
        return "false"
    strings = sorted({value for value in expected if type(value) is str and storable_text(value)})
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
    boolean_parts = [f"{leaf.text} = '{json_text(flag)}'" for flag in sorted(bool_keys)]
    return leaf.by_type(
        {
            "string": any_of(string_parts),
            "number": leaf.number_in(number_keys),
            "boolean": any_of(boolean_parts),
        }
    )


def negation(build: Callable[[Leaf, Any], str], accepts: Callable[[Any], bool]):
    """NEQ and NIN: true for a missing or null attribute, false for an array or object."""

    def negation(leaf: Leaf, expected: Any) -> str:
        if not accepts(expected):
            return "false"
        return (
            f"(CASE COALESCE({leaf.type}, 'null') WHEN 'null' THEN true"
            f" WHEN 'array' THEN false WHEN 'object' THEN false"
            f" ELSE NOT {build(leaf, expected)} END)"
        )

    return negation


def comparison(op: str):
    def build(leaf: Leaf, expected: Any) -> str:
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


def contains(leaf: Leaf, expected: Any) -> str:
    if type(expected) is not str or not storable_text(expected):
        return "false"
    return leaf.by_type(
        {
            "string": f"strpos({leaf.text}, {leaf.c.param(expected, 'text')}) > 0",
            "array": array_holds(leaf, expected),
        }
    )


def not_contains(leaf: Leaf, expected: Any) -> str:
    if type(expected) is not str:
        return "false"
    if not storable_text(expected):
        return leaf.by_type({"string": "true", "array": "true"})
    return leaf.by_type(
        {
            "string": f"strpos({leaf.text}, {leaf.c.param(expected, 'text')}) = 0",
            "array": f"NOT {array_holds(leaf, expected)}",
        }
    )


def starts_with(leaf: Leaf, expected: Any) -> str:
    if type(expected) is not str or not storable_text(expected):
        return "false"
    prefix = leaf.c.param(expected, "text")
    return leaf.by_type({"string": f"starts_with({leaf.text}, {prefix})"})


def ends_with(leaf: Leaf, expected: Any) -> str:
    if type(expected) is not str or not storable_text(expected):
        return "false"
    suffix = leaf.c.param(expected, "text")
    return leaf.by_type({"string": f"right({leaf.text}, length({suffix})) = {suffix}"})


def exists(leaf: Leaf, _: Any) -> str:
    return f"COALESCE({leaf.type} <> 'null', false)"


def not_exists(leaf: Leaf, _: Any) -> str:
    return f"COALESCE({leaf.type} = 'null', true)"
