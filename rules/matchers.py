"""The Python test of each operator: given a condition's stored value, a function of the
attribute's actual value (from the flattened context; None when absent, since every operator
treats absent and null alike), or None when the stored value is unusable (the condition then
never matches). `rules.operators` names one builder per operator.
"""

from collections.abc import Callable
from typing import Any

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

Test = Callable[[Any], bool]
Builder = Callable[[Any], Test | None]

_SCALAR_TYPES = frozenset((str, int, float, bool))


def never(_: Any) -> bool:
    return False


def present(actual: Any) -> bool:
    return actual is not None


def absent(actual: Any) -> bool:
    return actual is None


def equals(expected: Any) -> Test | None:
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


def one_of(expected: Any) -> Test | None:
    """IN: membership with EQ's coercions, by set lookups split per type (1 == True in Python)."""
    if type(expected) is not list:
        return None
    strings = {value for value in expected if type(value) is str}
    bools = {value for value in expected if type(value) is bool}
    numbers = {value for value in expected if is_number(value)}
    # What a number or boolean actual meets: the listed ones plus the strings that spell one.
    number_keys = numbers | {n for n in map(to_number, strings) if n is not None}
    bool_keys = bools | {b for b in map(to_bool, strings) if b is not None}

    def is_one_of(actual: Any) -> bool:
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

    return is_one_of


def negation(build: Callable[[Any], Test | None]) -> Callable[[Any], Test | None]:
    """NEQ and NIN: true for a missing or null attribute, false for an array or object."""

    def build_negation(expected: Any) -> Test | None:
        test = build(expected)
        if test is None:
            return None

        def negated(actual: Any) -> bool:
            if actual is None:
                return True
            return type(actual) in _SCALAR_TYPES and not test(actual)

        return negated

    return build_negation


def comparison(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Test | None]:
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


def contains(expected: Any) -> Test | None:
    """CONTAINS: a substring of a string, or an element (compared as EQ does) of an array."""
    element_equals = equals(expected) if type(expected) is str else None
    if element_equals is None:
        return None

    def holds(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            return expected in actual
        if kind is list:
            return any(map(element_equals, actual))
        return False

    return holds


def not_contains(expected: Any) -> Test | None:
    test = contains(expected)
    if test is None:
        return None

    def lacks(actual: Any) -> bool:
        kind = type(actual)
        return (kind is str or kind is list) and not test(actual)

    return lacks


def string_test(method: Callable[[str, str], bool]) -> Callable[[Any], Test | None]:
    def build(expected: Any) -> Test | None:
        if type(expected) is not str:
            return None
        return lambda actual: type(actual) is str and method(actual, expected)

    return build


def regex(expected: Any) -> Test | None:
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


def instant_comparison(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Test | None]:
    def build(expected: Any) -> Test | None:
        bound = parse_iso_instant(expected) if type(expected) is str else None
        if bound is None:
            return None

        def test(actual: Any) -> bool:
            instant = to_instant(actual)
            return instant is not None and compare(instant, bound)

        return test

    return build


def semver_comparison(compare: Callable[[Any, Any], bool]) -> Callable[[Any], Test | None]:
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
