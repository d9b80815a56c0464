"""Each condition operator of DESIGN §7: coercions, missing and null attributes, wrong types."""

import math
from fractions import Fraction
from itertools import pairwise
from typing import Any

import pytest

from rules.evaluate import compile_rules, compile_segment, flatten_context
from rules.values import percent_bucket

MISSING = object()  # the attribute is absent from the context


def matches(
    operator: str, value: Any, actual: Any, *, case_insensitive: bool = False, salt: str = "test"
) -> bool:
    """Evaluate one condition on attribute "a" and check both evaluation paths agree."""
    condition: dict[str, Any] = {"attribute": "a", "operator": operator, "value": value}
    if case_insensitive:
        condition["caseInsensitive"] = True
    segment = compile_segment(
        salt=salt,
        logical_op="AND",
        rules=[condition],  # type: ignore[list-item]
        force=False,
        included=[],
        excluded=[],
    )
    context = {} if actual is MISSING else {"a": actual}
    evaluation = segment.evaluate(context)
    assert segment.matches_flat(flatten_context(context)) is evaluation.matched
    return evaluation.matched


def cases(operator: str, *rows: tuple[Any, Any, bool]) -> list[Any]:
    return [
        pytest.param(operator, value, actual, expected, id=f"{operator}-{value!r}-{actual!r}")
        for value, actual, expected in rows
    ]


EQ = cases(
    "EQ",
    ("pro", "pro", True),
    ("pro", "Pro", False),  # strings are case-sensitive
    ("1", 1, True),
    (1, "1", True),
    (1, "1.0", True),
    (1, "+1", True),
    (1, "1e0", True),
    (1.5, "1.5", True),
    (1, 1.0, True),
    (1, " 1", False),  # no whitespace in numeric strings
    (1, "one", False),
    (1, "nan", False),
    ("1", "1.0", False),  # two strings compare as strings
    (True, "true", True),
    (True, "True", True),
    (True, "TRUE", True),
    (False, "fAlSe", True),
    (True, "yes", False),
    ("true", True, True),
    ("False", False, True),
    ("false", True, False),
    (True, 1, False),  # a number never equals a boolean
    (1, True, False),
    (0, False, False),
    ("pro", MISSING, False),
    ("pro", None, False),
    # An array matches when an element does; nested arrays and objects never do.
    (1, [1], True),
    ("pro", ["free", "pro"], True),
    ("5", [5.0], True),  # with the coercions
    ("pro", ["Pro"], False),
    ("pro", [], False),
    ("pro", [["pro"]], False),
    ("pro", [{"k": "pro"}], False),
)

NEQ = cases(
    "NEQ",
    ("pro", "pro", False),
    ("pro", "basic", True),
    (1, "1", False),
    ("true", True, False),
    (True, 1, True),  # number and boolean are not equal
    ("pro", MISSING, True),
    ("pro", None, True),
    # Exactly not EQ, arrays included: true when no element equals.
    (1, [2], True),
    ("a", ["a", "b"], False),
    ("c", ["a", "b"], True),
    ("a", [], True),
    ("a", [["a"]], True),
)

IN = cases(
    "IN",
    (["a", "b"], "a", True),
    (["a", "b"], "c", False),
    ([1, 2], "2", True),
    ([1, 2], "2.0", True),
    (["2"], 2, True),
    (["2"], "2.0", False),
    ([1.0], 1, True),
    ([True], "TRUE", True),
    (["true"], True, True),
    ([1], True, False),
    ([True], 1, False),
    (["a"], MISSING, False),
    (["a"], None, False),
    (["a"], ["b", "a"], True),
    (["a"], ["A", [["a"]]], False),
)

NIN = cases(
    "NIN",
    (["a", "b"], "a", False),
    (["a", "b"], "c", True),
    ([1, 2], "2", False),
    ([True], 1, True),
    (["a"], MISSING, True),
    (["a"], None, True),
    (["a"], ["b"], True),
    (["a"], ["b", "a"], False),
    (["a"], [], True),
)

COMPARISONS = (
    cases(
        "GT",
        (10, 11, True),
        (10, 10, False),
        (10, 10.5, True),
        (10, "11", True),
        (10, "1e2", True),
        (10, "abc", False),
        (10, True, False),
        (10, MISSING, False),
        (10, None, False),
        (10, [11], True),
        (10, [1, "11"], True),
        (10, [1, [11]], False),
    )
    + cases(
        "GTE",
        (10, 10, True),
        (10, "10.0", True),
        (10, 9.99, False),
        (0, False, False),
    )
    + cases(
        "LT",
        (10, 9, True),
        (10, 10, False),
        (10, "-3", True),
        (10, MISSING, False),
    )
    + cases(
        "LTE",
        (10, 10, True),
        (10, 11, False),
        (10, "", False),
        (10, None, False),
    )
)

STRINGS = (
    cases(
        "CONTAINS",
        ("ell", "hello", True),
        ("Ell", "hello", False),
        ("x", "hello", False),
        ("b", ["a", "b"], True),
        ("b", ["abc"], False),  # array elements are compared whole, not searched
        ("2", [1, 2], True),  # with EQ's coercions
        ("true", [True], True),
        ("1", 123, False),
        ("a", MISSING, False),
        ("a", None, False),
    )
    + cases(
        "NOT_CONTAINS",
        ("x", "hello", True),
        ("ell", "hello", False),
        ("c", ["a", "b"], True),
        ("a", ["a"], False),
        ("1", 123, False),
        ("a", MISSING, False),
        ("a", None, False),
    )
    + cases(
        "STARTS_WITH",
        ("he", "hello", True),
        ("He", "hello", False),
        ("lo", "hello", False),
        ("1", 123, False),
        ("a", ["xyz", "abc"], True),
        ("a", ["xa"], False),
        ("a", MISSING, False),
    )
    + cases(
        "ENDS_WITH",
        ("lo", "hello", True),
        ("LO", "hello", False),
        ("3", 123, False),
        ("a", None, False),
    )
)

PRESENCE = cases(
    "EXISTS",
    (None, "x", True),
    (None, "", True),
    (None, 0, True),
    (None, False, True),
    (None, [], True),
    (None, None, False),
    (None, MISSING, False),
) + cases(
    "NOT_EXISTS",
    (None, "x", False),
    (None, False, False),
    (None, None, True),
    (None, MISSING, True),
)

REGEX = cases(
    "REGEX",
    (r"^\d+$", "123", True),
    (r"abc", "xxabcxx", True),  # search anywhere
    (r"ABC", "abc", False),
    (r"(?i)ABC", "abc", True),
    (r"\d", 1, True),  # numbers in their JSON text form
    (r"^1\.5$", 1.5, True),
    (r"^1$", 1, True),
    (r"true", True, False),  # not booleans
    (r"é", "café", True),
    (r"a", "\ud800a", True),  # a lone surrogate (json.loads allows it) does not raise
    (r"a", MISSING, False),
    (r"a", None, False),
    (r"a", ["a"], True),
    (r"\d", ["x", 7], True),
    (r"a", [["a"]], False),
)

INSTANTS = cases(
    "BEFORE",
    ("2024-01-01", "2023-12-31", True),
    ("2024-01-01", "2024-01-01", False),
    ("2024-01-01", "2023-12-31T23:59:59Z", True),
    ("2024-01-01", "2023-12-31T23:59:59", True),  # naive date-times are UTC
    ("2024-01-01", "2024-01-01T00:00:00.000001Z", False),
    ("2024-01-01T00:00:00+01:00", "2023-12-31T23:30:00Z", False),  # the bound is 23:00Z
    ("2024-01-01T00:00:00+01:00", "2023-12-31T22:59:59Z", True),
    ("2024-01-01", "2024-01-01T00:30:00+01:00", True),
    ("2024-01-01", 1704067199, True),  # epoch seconds
    ("2024-01-01", 1704067200, False),
    ("2024-01-01", 1704067199.5, True),
    ("2024-01-01", "1704067199", True),
    ("2024-01-01", "not a date", False),
    ("2024-01-01", "2023-02-30", False),  # not a real day
    ("2024-01-01", True, False),
    ("2024-01-01", MISSING, False),
    ("2024-01-01", None, False),
) + cases(
    "AFTER",
    ("2024-01-01", "2024-01-02", True),
    ("2024-01-01", "2024-01-01T00:00:00Z", False),
    ("2024-01-01", "2024-01-01T00:00:01Z", True),
    ("2024-01-01T12:00:00Z", "2024-01-01 12:00:01", True),
    ("2024-01-01", 1704067201, True),
    ("2024-01-01", "1704067200", False),
    ("2024-01-01", [1704067201], True),
    ("2024-01-01", [1704067199, "2023-12-31"], False),
)

SEMVERS = (
    cases(
        "SEMVER_EQ",
        ("1.2.3", "1.2.3", True),
        ("1.2.3", "v1.2.3", True),
        ("v1.2.3", "1.2.3", True),
        ("1.2.3", "1.2.3+build.5", True),  # build metadata is ignored
        ("1.2.3-rc.1", "1.2.3-rc.1+x", True),
        ("1.2.3", "1.2.3-rc.1", False),
        ("1.2.3", "1.2.4", False),
        ("1.2.3", "1.2", False),
        ("1.2.3", "01.2.3", False),
        ("1.2.3", 1.2, False),
        ("1.2.3", MISSING, False),
    )
    + cases(
        "SEMVER_GT",
        ("1.9.0", "1.10.0", True),  # numeric, not lexical
        ("1.0.0-rc.1", "1.0.0", True),  # a release follows its pre-releases
        ("1.0.0", "1.0.0-rc.1", False),
        ("1.0.0", "1.0.0+1", False),
        ("2.3.0", "v2.4.1", True),
        ("2.3.0", "garbage", False),
        ("2.3.0", None, False),
    )
    + cases(
        "SEMVER_LT",
        ("1.0.0", "0.9.9", True),
        ("1.0.0", "1.0.0-alpha", True),
        ("1.0.0-alpha.1", "1.0.0-alpha", True),
        ("1.0.0-alpha.beta", "1.0.0-alpha.1", True),  # numeric identifiers sort first
        ("1.0.0", 0, False),
    )
)


# Known buckets, computed apart from the code (sha256sum of "salt/text"; the first 16 hex
# digits as an unsigned integer): see test_percentage_buckets_are_the_sha256_of_salt_and_text.
BUCKETS = [
    ("checkout", "user-1", 0x71121377F83468FD),
    ("checkout", "user-2", 0xF42B81166DBF589A),
    ("onboarding", "user-1", 0xC4FED2FCCBA84D96),
    ("checkout", "42", 0x4C4C01724C985923),
]

PERCENTAGES = cases(
    "PERCENTAGE",
    (100, "anyone", True),  # 100 matches everyone with the attribute
    (100, 0, True),  # integers bucket by their decimal text
    (0, "anyone", False),  # 0 matches no one
    (100, 1.5, False),  # other types never match
    (100, 1.0, False),
    (100, True, False),
    (100, MISSING, False),
    (100, None, False),
    (100, ["anyone"], False),  # arrays never match
)

CASE_INSENSITIVE = [
    pytest.param(operator, value, actual, expected, id=f"ci-{operator}-{value!r}-{actual!r}")
    for operator, value, actual, expected in [
        ("EQ", "Pro", "pRO", True),
        ("EQ", "ÜBER", "über", True),  # Unicode lower-casing
        ("EQ", "STRASSE", "straße", False),  # lower-cased, not case-folded
        ("EQ", "İ", "i\u0307", True),  # "İ".lower() is "i" + combining dot
        ("EQ", "İ", "i", False),
        ("EQ", "ΌΣΟΣ", "όσος", True),  # str.lower() spells a final sigma ς
        ("EQ", "ΌΣΟΣ", "όσοσ", False),
        ("EQ", "ΌΣΟΣ", "ΌσοΣ", True),
        ("EQ", "ǅ", "ǆ", True),
        ("EQ", "\u212a", "k", True),  # the Kelvin sign lower-cases to k
        ("EQ", "5", 5, True),  # not two strings: the usual coercions
        ("EQ", "TRUE", True, True),
        ("EQ", "pro", ["Free", "PRO"], True),
        ("NEQ", "Pro", "pro", False),
        ("NEQ", "Pro", ["PRO"], False),
        ("NEQ", "Pro", "basic", True),
        ("IN", ["Pro", "Team"], "TEAM", True),
        ("IN", ["Pro"], "free", False),
        ("NIN", ["Pro", "Team"], "TEAM", False),
        ("CONTAINS", "ROC", "Procedure", True),
        ("CONTAINS", "PRO", ["x", "pro"], True),  # elements compared as EQ does
        ("CONTAINS", "PRO", ["xpro"], False),
        ("NOT_CONTAINS", "ROC", "Procedure", False),
        ("NOT_CONTAINS", "PRO", ["x", "pro"], False),
        ("STARTS_WITH", "HE", "hello", True),
        ("ENDS_WITH", "LO", "HELLO", True),
        ("ENDS_WITH", "ß", "STRASSE", False),
        ("REGEX", "^PRO$", "pro", True),
        ("REGEX", "^pro$", "PRO", True),
        ("REGEX", "^[A-Z]+$", "Pro", True),
        ("REGEX", "^ü", "Über", True),
        ("REGEX", "E", 1e-7, True),  # numbers in their text form, "1e-07"
    ]
]


@pytest.mark.parametrize(
    ("operator", "value", "actual", "expected"),
    EQ
    + NEQ
    + IN
    + NIN
    + COMPARISONS
    + STRINGS
    + PRESENCE
    + REGEX
    + INSTANTS
    + SEMVERS
    + PERCENTAGES,
)
def test_operator(operator: str, value: Any, actual: Any, expected: bool) -> None:
    assert matches(operator, value, actual) is expected


@pytest.mark.parametrize(("operator", "value", "actual", "expected"), CASE_INSENSITIVE)
def test_case_insensitive_lower_cases_both_strings(
    operator: str, value: Any, actual: Any, expected: bool
) -> None:
    assert matches(operator, value, actual, case_insensitive=True) is expected


def test_case_insensitive_false_is_the_case_sensitive_operator() -> None:
    assert matches("EQ", "Pro", "pro") is False
    assert matches("EQ", "Pro", "pro", case_insensitive=True) is True


@pytest.mark.parametrize(("salt", "text", "bucket"), BUCKETS)
def test_percentage_buckets_are_the_sha256_of_salt_and_text(
    salt: str, text: str, bucket: int
) -> None:
    assert percent_bucket(salt, text) == bucket
    # The bucket as a percentage is bucket * 100 / 2^64: a value just above it matches, one
    # at or below it does not (values have at most three decimals).
    position = Fraction(bucket * 100, 2**64)
    above = math.floor(position * 1000 + 1) / 1000
    below = math.floor(position * 1000) / 1000
    assert matches("PERCENTAGE", above, text, salt=salt)
    assert not matches("PERCENTAGE", below, text, salt=salt)


def test_percentage_buckets_integers_by_their_decimal_text() -> None:
    salt, text, bucket = BUCKETS[3]
    position = Fraction(bucket * 100, 2**64)
    assert matches("PERCENTAGE", math.floor(position * 1000 + 1) / 1000, 42, salt=salt)
    assert not matches("PERCENTAGE", math.floor(position * 1000) / 1000, 42, salt=salt)


@pytest.mark.parametrize("percent", [0.5, 25, 70.125])
def test_percentage_splits_keys_in_proportion(percent: float) -> None:
    rule = {"attribute": "targetingKey", "operator": "PERCENTAGE", "value": percent}
    test = compile_rules("AND", [rule], "rollout")  # type: ignore[list-item]
    keys = 100_000
    matched = sum(test({"targetingKey": f"user-{n}"}) for n in range(keys))
    assert abs(matched / keys * 100 - percent) <= 1


def test_percentage_depends_on_the_salt() -> None:
    keys = [f"user-{n}" for n in range(1000)]
    first = {key for key in keys if matches("PERCENTAGE", 50, key, salt="a")}
    second = {key for key in keys if matches("PERCENTAGE", 50, key, salt="b")}
    assert first != second
    assert 400 < len(first & second) + len(set(keys) - first - second) < 600


def test_semver_precedence_follows_the_spec_example() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "2.0.0",
        "2.1.0",
        "2.1.1",
    ]
    for lower, higher in pairwise(ordered):
        assert matches("SEMVER_LT", higher, lower)
        assert matches("SEMVER_GT", lower, higher)
        assert not matches("SEMVER_EQ", lower, higher)


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("EQ", False),
        ("NEQ", False),
        ("IN", False),
        ("NIN", False),
        ("GT", False),
        ("CONTAINS", False),
        ("NOT_CONTAINS", False),
        ("STARTS_WITH", False),
        ("REGEX", False),
        ("BEFORE", False),
        ("SEMVER_EQ", False),
        ("EXISTS", True),
        ("NOT_EXISTS", False),
    ],
)
def test_an_object_value_is_a_type_mismatch(operator: str, expected: bool) -> None:
    # Flattening never leaves an object behind, but a caller's flat dict may hold one.
    value = {
        "EQ": "x",
        "NEQ": "x",
        "IN": ["x"],
        "NIN": ["x"],
        "GT": 1,
        "CONTAINS": "x",
        "NOT_CONTAINS": "x",
        "STARTS_WITH": "x",
        "REGEX": "x",
        "BEFORE": "2024-01-01",
        "SEMVER_EQ": "1.0.0",
    }.get(operator)
    segment = compile_segment(
        salt="test",
        logical_op="AND",
        rules=[{"attribute": "a", "operator": operator, "value": value}],
        force=False,
        included=[],
        excluded=[],
    )
    assert segment.matches_flat({"a": {"x": "x"}}) is expected


def test_huge_values_do_not_raise() -> None:
    digits = "9" * 50_000
    assert matches("GT", 1, digits)
    assert matches("EQ", 1, digits) is False
    assert matches("REGEX", "9$", digits)
    assert matches("SEMVER_GT", "1.0.0", f"{digits}.0.0") is False
    assert matches("BEFORE", "2024-01-01", digits) is False
    assert matches("GT", 1, 10**5000)
