"""The Python test of each operator: given a condition's `Operand`, a function of the
attribute's actual value (from the flattened context; None when absent, since every operator
treats absent and null alike), or None when the stored value is unusable (the condition then
never matches). `rules.operators` names one builder per operator, and how it treats arrays.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rules.values import (
    compile_regex,
    is_number,
    number_text,
    parse_iso_instant,
    parse_semver,
    percent_bucket,
    percent_of,
    percent_threshold,
    regex_search,
    to_bool,
    to_instant,
    to_number,
)

Test = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class Operand:
    """What a condition's test is built from: its stored value, whether strings compare
    lower-cased (`caseInsensitive`), and the salt of its owner (PERCENTAGE buckets)."""

    value: Any
    case_insensitive: bool = False
    salt: str = ""


Builder = Callable[[Operand], Test | None]


class Arrays(Enum):
    """How an operator treats an array attribute (DESIGN §12, list attributes)."""

    ANY = "any"  # matches when any element matches; elements that are arrays or objects never
    NEVER = "never"  # an array never matches
    OWN = "own"  # the builder decides (element membership, negations, presence)


def for_arrays(arrays: Arrays, test: Test) -> Test:
    """`test` extended to array attributes as `arrays` says."""
    if arrays is Arrays.ANY:
        return lambda actual: any_element(test, actual) if type(actual) is list else test(actual)
    if arrays is Arrays.NEVER:
        return lambda actual: type(actual) is not list and test(actual)
    return test


def any_element(test: Test, elements: list[Any]) -> bool:
    return any(map(test, elements))


_SCALAR_TYPES = frozenset((str, int, float, bool))


def never(_: Any) -> bool:
    return False


def present(actual: Any) -> bool:
    return actual is not None


def absent(actual: Any) -> bool:
    return actual is None


def equals(operand: Operand) -> Test | None:
    """EQ: a string meets a number as a number when numeric, a boolean when "true"/"false";
    two strings compare lower-cased when case-insensitive."""
    expected = operand.value
    if type(expected) is str:
        fold = operand.case_insensitive
        text: str = expected.lower() if fold else expected
        as_number = to_number(expected)
        as_bool = to_bool(expected)

        def equals_string(actual: object) -> bool:
            kind = type(actual)
            if kind is str:
                return text == (actual.lower() if fold else actual)  # type: ignore[attr-defined]
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


def one_of(operand: Operand) -> Test | None:
    """IN: membership with EQ's coercions, by set lookups split per type (1 == True in Python)."""
    expected = operand.value
    if type(expected) is not list:
        return None
    fold = operand.case_insensitive
    strings = {value for value in expected if type(value) is str}
    folded = {value.lower() for value in strings} if fold else strings
    bools = {value for value in expected if type(value) is bool}
    numbers = {value for value in expected if is_number(value)}
    # What a number or boolean actual meets: the listed ones plus the strings that spell one.
    number_keys = numbers | {n for n in map(to_number, strings) if n is not None}
    bool_keys = bools | {b for b in map(to_bool, strings) if b is not None}

    def is_one_of(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            if (actual.lower() if fold else actual) in folded:
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


def negation(build: Builder) -> Builder:
    """NEQ and NIN: exactly not EQ / not IN, arrays included (true when no element matches);
    true for a missing or null attribute."""

    def build_negation(operand: Operand) -> Test | None:
        test = build(operand)
        if test is None:
            return None

        def negated(actual: Any) -> bool:
            if actual is None:
                return True
            kind = type(actual)
            if kind is list:
                return not any_element(test, actual)
            return kind in _SCALAR_TYPES and not test(actual)

        return negated

    return build_negation


def comparison(compare: Callable[[Any, Any], bool]) -> Builder:
    def build(operand: Operand) -> Test | None:
        expected = operand.value
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


def contains(operand: Operand) -> Test | None:
    """CONTAINS: a substring of a string, or an element (compared as EQ does) of an array."""
    expected = operand.value
    element_equals = equals(operand) if type(expected) is str else None
    if element_equals is None:
        return None
    fold = operand.case_insensitive
    needle = expected.lower() if fold else expected

    def holds(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            return needle in (actual.lower() if fold else actual)
        if kind is list:
            return any_element(element_equals, actual)
        return False

    return holds


def not_contains(operand: Operand) -> Test | None:
    test = contains(operand)
    if test is None:
        return None

    def lacks(actual: Any) -> bool:
        kind = type(actual)
        return (kind is str or kind is list) and not test(actual)

    return lacks


def string_test(method: Callable[[str, str], bool]) -> Builder:
    def build(operand: Operand) -> Test | None:
        expected = operand.value
        if type(expected) is not str:
            return None
        if operand.case_insensitive:
            folded = expected.lower()
            return lambda actual: type(actual) is str and method(actual.lower(), folded)
        return lambda actual: type(actual) is str and method(actual, expected)

    return build


def regex(operand: Operand) -> Test | None:
    """REGEX: searched anywhere; case-insensitively, the lower-cased text is searched with
    the pattern compiled case-insensitively (RE2's `(?i)`)."""
    expected = operand.value
    fold = operand.case_insensitive
    regex = compile_regex(expected, fold) if type(expected) is str else None
    if regex is None:
        return None

    def search(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            return regex_search(regex, actual.lower() if fold else actual)
        if kind is int or kind is float:
            return regex_search(regex, number_text(actual))
        return False

    return search


def percentage(operand: Operand) -> Test | None:
    """PERCENTAGE: the bucket of salt + "/" + a string attribute, or an integer's decimal
    text, is below the stored percentage (DESIGN §12); exact integer arithmetic."""
    percent = percent_of(operand.value)
    if percent is None:
        return None
    threshold = percent_threshold(percent)
    salt = operand.salt

    def below(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            return percent_bucket(salt, actual) < threshold
        if kind is int:
            return percent_bucket(salt, str(actual)) < threshold
        return False

    return below


def instant_comparison(compare: Callable[[Any, Any], bool]) -> Builder:
    def build(operand: Operand) -> Test | None:
        expected = operand.value
        bound = parse_iso_instant(expected) if type(expected) is str else None
        if bound is None:
            return None

        def test(actual: Any) -> bool:
            instant = to_instant(actual)
            return instant is not None and compare(instant, bound)

        return test

    return build


def semver_comparison(compare: Callable[[Any, Any], bool]) -> Builder:
    def build(operand: Operand) -> Test | None:
        expected = operand.value
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
