"""The SQL membership compiler, operator by operator, and the member queries built on it."""

import itertools
import math
import random
from collections.abc import AsyncIterator
from fractions import Fraction
from typing import Any

import asyncpg
import pytest

from db.members import Definition, count_members, iter_members, member_page
from db.pagination import SqlBuilder
from db.pool import connect
from db.profiles import upsert_profiles
from db.rules_sql import compile_definition, percentage, postgres_regex
from rules.operators import OPERATORS, REGISTRY
from rules.values import compile_regex, regex_search
from tests.conftest import Project
from tests.rules.test_rules_operators import BUCKETS
from tests.test_members_agreement import NUMBERS, STRINGS

# Stored values beyond the generated ones: arrays of every element type, and floats that
# orjson writes in exponent form, which come back from jsonb as integers (or, beyond 64
# bits, as floats again).
ODD_VALUES = [
    True,
    False,
    None,
    [],
    ["pro"],
    ["Pro", 5],
    [5.0],
    ["true"],
    [True],
    [False, "x"],
    [[1]],
    [{"k": 1}],
    [None],
    [1e-7],
    [2**53 + 1],
    ["5"],
    [2**63 - 1],
    1e16,
    1e20,
    2.0**64,
    -(2.0**64),
    1.8446744073709552e19,
    -9.223372036854776e18,
    2**64 - 1,
    1e300,
    1e-300,
    123456789012345680.0,
    1e13,
    -5e14,
    9.3e12,
    "1e13",
    "9.3e12",
    "-5e14",
    # Strings whose lower-casing differs between Unicode and a database's collation.
    "İstanbul",
    "STRASSE",
    "straße",
    "ΣΊΣΥΦΟΣ",
    "ǅemal",
    "K",
    ["PRO", "Free"],
    ["ÜBER", 5, None, ["pro"]],
    ["12", 7, "v1.2.3", "2024-01-15"],
]

CONDITION_VALUES: dict[str, list[Any]] = {
    "EQ": STRINGS + NUMBERS + [True, False, 1e20, 2.0**64],
    "IN": [[value] for value in STRINGS + NUMBERS + [True, False]]
    + [STRINGS[:20], NUMBERS, [True, "5", 2**63], ["TRUE", 0.5, "x"], [2.0**64, 1e20]],
    "GT": NUMBERS + [1e16, 1e20, 2**64, 2.0**64, 0.1, -0.0],
    "CONTAINS": STRINGS,
    "STARTS_WITH": STRINGS,
    "EXISTS": [None],
    "REGEX": ["^pro$", "pro", r"\d", r"^\d+$", "^[a-z]+$", "1e", r"\.5$", "(?i)TRUE", "^$"],
    "BEFORE": [
        "2024-01-15",
        "2024-01-15T10:00:00Z",
        "2024-01-15T12:00:00Z",
        "2024-01-15T10:00:00.5+05:30",
        "2024-01-16T00:00:00+01:00",
        "2024-01-15T10:00:00.123456",
        "1970-01-01",
        "2000-02-29",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-23:59",
    ],
    "SEMVER_EQ": ["1.2.3", "v1.2.3", "1.2.3-beta.1", "1.2.3-beta.2", "1.10.0", "0.0.1"],
    "PERCENTAGE": [0, 0.001, 12.5, 50, 99.999, 100],
}
for negated, positive in [
    ("NEQ", "EQ"),
    ("NIN", "IN"),
    ("NOT_CONTAINS", "CONTAINS"),
    ("ENDS_WITH", "STARTS_WITH"),
    ("NOT_EXISTS", "EXISTS"),
    ("AFTER", "BEFORE"),
    ("SEMVER_GT", "SEMVER_EQ"),
    ("SEMVER_LT", "SEMVER_EQ"),
    ("GTE", "GT"),
    ("LT", "GT"),
    ("LTE", "GT"),
]:
    CONDITION_VALUES[negated] = CONDITION_VALUES[positive]


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await connect(database_url)
    yield connection
    await connection.close()


def definition(rules: list[dict[str, Any]], **targets: Any) -> Definition:
    return Definition(
        logical_op=targets.pop("logical_op", "AND"),
        rules=rules,
        force=targets.pop("force", False),
        included=targets.pop("included", []),
        excluded=targets.pop("excluded", []),
        salt=targets.pop("salt", "test"),
    )


def when(attribute: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"attribute": attribute, "operator": operator, "value": value}


def evaluate(segment: Definition, key: str, attributes: dict[str, Any]) -> bool:
    from db.profiles import profile_context

    compiled = segment.compile()
    return compiled.evaluate(profile_context(key, attributes)).matched


async def members(conn: asyncpg.Connection, project: Project, segment: Definition) -> list[str]:
    """The members by every path, after checking that the paths agree with each other."""
    streamed = [row["targeting_key"] async for row in iter_members(conn, project.id, segment, 3)]
    page = await member_page(conn, project.id, segment, None, 1000)
    assert [row["targeting_key"] for row in page] == streamed
    assert await count_members(conn, project.id, segment) == len(streamed)
    return streamed


async def test_every_operator_agrees_with_the_evaluator_on_every_kind_of_value(
    conn: asyncpg.Connection, project: Project
) -> None:
    """Each leaf's SQL is TRUE only where the evaluator matches, FALSE only where it does
    not; NULL (for the evaluator to decide) stays confined to the values SQL cannot judge."""
    values = STRINGS + NUMBERS + ODD_VALUES
    profiles = [(f"k{index:04d}", {"x": value}) for index, value in enumerate(values)]
    profiles.append(("absent", {}))
    await upsert_profiles(conn, project.id, profiles)
    contexts = {
        row["targeting_key"]: row["context"]
        for row in await conn.fetch("SELECT targeting_key, context FROM profiles")
    }
    undecided = dict.fromkeys(itertools.product(OPERATORS, [False, True]), 0)
    # Rows whose value holds a string beyond ASCII, which SQL cannot lower-case as Python does.
    unicode = {key for key, context in contexts.items() if _beyond_ascii(context.get("x"))}
    wrong = []
    for operator in OPERATORS:
        folds = [False, True] if REGISTRY[operator].case_insensitive else [False]
        for value in CONDITION_VALUES[operator]:
            left: dict[bool, set[str]] = {}
            for fold in folds:
                condition = when("x", operator, value)
                if fold:
                    condition["caseInsensitive"] = True
                segment = definition([condition])
                sql = SqlBuilder(project.id)
                predicate = segment.predicate(sql)
                rows = await conn.fetch(
                    f"SELECT p.targeting_key, {predicate.expr} AS decided"
                    " FROM profiles p WHERE p.project_id = $1",
                    *sql.params,
                )
                compiled = segment.compile()
                left[fold] = set()
                for row in rows:
                    if row["decided"] is None:
                        assert not predicate.exact, (operator, value)
                        undecided[operator, fold] += 1
                        left[fold].add(row["targeting_key"])
                        continue
                    context = contexts[row["targeting_key"]]
                    if row["decided"] != compiled.matches_flat(context):
                        wrong.append((operator, value, fold, context.get("x"), row["decided"]))
            if True in left and operator != "REGEX":
                # Case-insensitively, SQL leaves only strings beyond ASCII more to Python.
                assert left[True] - left[False] <= unicode, (operator, value)
    assert wrong == []
    # What SQL decides alone: everything but regexes and a few unusual values.
    assert undecided["EXISTS", False] == undecided["NOT_EXISTS", False] == 0
    assert undecided["STARTS_WITH", False] == undecided["ENDS_WITH", False] == 0
    assert undecided["PERCENTAGE", False] == 0
    assert undecided["REGEX", False] > 0
    for operator in OPERATORS:
        checked = len(CONDITION_VALUES[operator]) * len(profiles)
        limit = 0.9 if operator == "REGEX" else 0.1
        assert undecided[operator, False] <= checked * limit, operator


def _beyond_ascii(value: Any) -> bool:
    if isinstance(value, str):
        return not value.isascii()
    return isinstance(value, list) and any(map(_beyond_ascii, value))


# Coercions, end to end through count_members, member_page and iter_members.

COERCION_CASES = [
    # (condition, attributes by key, expected members)
    (
        when("n", "EQ", "5"),
        {"a": {"n": 5}, "b": {"n": 5.0}, "c": {"n": "5"}, "d": {"n": "5.0"}},
        ["a", "b", "c"],
    ),
    (
        when("n", "EQ", 5),
        {"a": {"n": "5"}, "b": {"n": "+5"}, "c": {"n": "5e0"}, "d": {"n": " 5"}},
        ["a", "b", "c"],
    ),
    (
        when("b", "EQ", True),
        {"a": {"b": True}, "b": {"b": "TRUE"}, "c": {"b": "yes"}, "d": {"b": 1}},
        ["a", "b"],
    ),
    (when("b", "EQ", "false"), {"a": {"b": False}, "b": {"b": "False"}, "c": {"b": 0}}, ["a"]),
    (
        when("n", "NEQ", "x"),
        {"a": {}, "b": {"n": None}, "c": {"n": ["y"]}, "d": {"n": "y"}, "e": {"n": "x"}},
        ["a", "b", "c", "d"],
    ),
    (
        when("n", "IN", ["1", 2, True]),
        {"a": {"n": 1}, "b": {"n": "2.0"}, "c": {"n": "TRUE"}, "d": {"n": "2"}, "e": {"n": 3}},
        ["a", "b", "c", "d"],
    ),
    (
        when("n", "NIN", ["a"]),
        {"a": {"n": "a"}, "b": {}, "c": {"n": ["b"]}, "d": {"n": "b"}},
        ["b", "c", "d"],
    ),
    (
        when("n", "GT", 10),
        {"a": {"n": 11}, "b": {"n": "10.5"}, "c": {"n": "abc"}, "d": {"n": True}, "e": {"n": 10}},
        ["a", "b"],
    ),
    (
        when("n", "LTE", 0.1),
        {"a": {"n": 0.1}, "b": {"n": "0.1"}, "c": {"n": 0.10000000000000002}, "d": {"n": 0}},
        ["a", "b", "d"],
    ),
    (
        when("n", "GT", 2**53),
        {"a": {"n": 2**53 + 1}, "b": {"n": float(2**53)}, "c": {"n": "9007199254740993"}},
        ["a", "c"],
    ),
    (
        when("s", "CONTAINS", "ro"),
        {"a": {"s": "pro"}, "b": {"s": ["ro"]}, "c": {"s": ["pro"]}, "d": {"s": "RO"}},
        ["a", "b"],
    ),
    (
        when("s", "CONTAINS", "5"),
        {"a": {"s": [5]}, "b": {"s": [5.0, "x"]}, "c": {"s": ["05"]}, "d": {"s": 5}},
        ["a", "b"],
    ),
    (
        when("s", "NOT_CONTAINS", "x"),
        {"a": {"s": "abc"}, "b": {"s": []}, "c": {}, "d": {"s": 1}, "e": {"s": "xyz"}},
        ["a", "b"],
    ),
    (
        when("s", "STARTS_WITH", "Pr"),
        {"a": {"s": "Pro"}, "b": {"s": "pro"}, "c": {"s": ["Pro"]}},
        ["a", "c"],
    ),
    (
        when("s", "ENDS_WITH", ".io"),
        {"a": {"s": "x.io"}, "b": {"s": "x.IO"}, "c": {"s": ".io"}},
        ["a", "c"],
    ),
    (when("s", "EXISTS"), {"a": {"s": 0}, "b": {"s": None}, "c": {}, "d": {"s": []}}, ["a", "d"]),
    # List attributes: any element decides; NEQ and NIN are exactly not EQ and not IN.
    (
        when("s", "EQ", "a"),
        {"a": {"s": ["b", "a"]}, "b": {"s": ["b"]}, "c": {"s": [["a"]]}, "d": {"s": []}},
        ["a"],
    ),
    (
        when("s", "NEQ", "a"),
        {"a": {"s": ["b", "a"]}, "b": {"s": ["b"]}, "c": {"s": [["a"]]}, "d": {"s": []}},
        ["b", "c", "d"],
    ),
    (
        when("s", "GT", 10),
        {"a": {"s": [1, "11"]}, "b": {"s": [1, 2]}, "c": {"s": [{"k": 11}]}, "d": {"s": [None]}},
        ["a"],
    ),
    (
        when("s", "IN", ["x", 5]),
        {"a": {"s": ["5.0"]}, "b": {"s": ["y", "x"]}, "c": {"s": ["X"]}},
        ["a", "b"],
    ),
    (
        when("s", "NIN", ["x", 5]),
        {"a": {"s": ["5.0"]}, "b": {"s": ["y", "x"]}, "c": {"s": ["X"]}, "d": {}},
        ["c", "d"],
    ),
    (
        when("s", "SEMVER_GT", "1.2.3"),
        {"a": {"s": ["1.0.0", "2.0.0"]}, "b": {"s": ["1.0.0", "x"]}},
        ["a"],
    ),
    (when("s", "PERCENTAGE", 100), {"a": {"s": "x"}, "b": {"s": ["x"]}, "c": {"s": 7}}, ["a", "c"]),
    # caseInsensitive: both strings lower-cased; ASCII in SQL, the rest by the evaluator.
    (
        {**when("s", "EQ", "PRO"), "caseInsensitive": True},
        {"a": {"s": "pro"}, "b": {"s": "Pro"}, "c": {"s": "prö"}, "d": {"s": ["x", "pRo"]}},
        ["a", "b", "d"],
    ),
    (
        {**when("s", "STARTS_WITH", "ÜB"), "caseInsensitive": True},
        {"a": {"s": "über"}, "b": {"s": "UBER"}, "c": {"s": "Über"}},
        ["a", "c"],
    ),
    (
        {**when("s", "IN", ["İ", "SS"]), "caseInsensitive": True},
        {"a": {"s": "i\u0307"}, "b": {"s": "i"}, "c": {"s": "ß"}, "d": {"s": "ss"}},
        ["a", "d"],
    ),
    (
        {**when("s", "REGEX", "^P[A-Z]o$"), "caseInsensitive": True},
        {"a": {"s": "pro"}, "b": {"s": "PRO"}, "c": {"s": "Pöo"}, "d": {"s": "po"}},
        ["a", "b"],
    ),
    (when("s", "NOT_EXISTS"), {"a": {"s": 0}, "b": {"s": None}, "c": {}}, ["b", "c"]),
    (
        when("s", "REGEX", r"^\d+$"),
        {"a": {"s": "123"}, "b": {"s": 42}, "c": {"s": 4.5}, "d": {"s": "x1"}},
        ["a", "b"],
    ),
    (
        when("t", "AFTER", "2024-01-15"),
        {
            "a": {"t": "2024-01-16"},
            "b": {"t": "2024-01-15"},
            "c": {"t": 1705363200},
            "d": {"t": "2024-02-30"},
            "e": {"t": "2024-01-15T00:00:01Z"},
        },
        ["a", "c", "e"],
    ),
    (
        when("t", "BEFORE", "2024-01-15T12:00:00+02:00"),
        {
            "a": {"t": "2024-01-15"},
            "b": {"t": "2024-01-15T10:00:00Z"},
            "c": {"t": "1705312799"},
            "d": {"t": "2024-01-15T09:59:59.999999Z"},
            "e": {"t": 1705312800},
        },
        ["a", "c", "d"],
    ),
    (
        when("v", "SEMVER_GT", "1.2.3-beta.1"),
        {
            "a": {"v": "1.2.3"},
            "b": {"v": "1.2.3-beta.2"},
            "c": {"v": "1.2.3-alpha"},
            "d": {"v": "v1.10.0"},
            "e": {"v": "1.2"},
        },
        ["a", "b", "d"],
    ),
    (
        when("v", "SEMVER_EQ", "1.2.3"),
        {"a": {"v": "v1.2.3"}, "b": {"v": "1.2.3+build"}, "c": {"v": "1.2.3-rc.1"}},
        ["a", "b"],
    ),
    (
        when("v", "SEMVER_LT", "2.0.0"),
        {"a": {"v": "1.99.99"}, "b": {"v": "2.0.0-rc.1"}, "c": {"v": "2.0.0"}, "d": {"v": 1}},
        ["a", "b"],
    ),
    (
        when("user.plan", "EQ", "pro"),
        {
            "a": {"user": {"plan": "pro"}},
            "b": {"user.plan": "pro"},
            "c": {"user": {"plan": {"x": "pro"}}},
        },
        ["a", "b"],
    ),
]


@pytest.mark.parametrize(("condition", "profiles", "expected"), COERCION_CASES)
async def test_operator_coercions_decide_membership(
    conn: asyncpg.Connection, project: Project, condition: dict, profiles: dict, expected: list
) -> None:
    await upsert_profiles(conn, project.id, list(profiles.items()))
    segment = definition([condition])
    assert [key for key, attrs in profiles.items() if evaluate(segment, key, attrs)] == expected
    assert await members(conn, project, segment) == expected


async def test_logical_operators_and_empty_groups(
    conn: asyncpg.Connection, project: Project
) -> None:
    await upsert_profiles(
        conn, project.id, [("a", {"x": 1, "y": 1}), ("b", {"x": 1}), ("c", {"y": 1}), ("d", {})]
    )
    x, y = when("x", "EXISTS"), when("y", "EXISTS")
    assert await members(conn, project, definition([x, y])) == ["a"]
    assert await members(conn, project, definition([x, y], logical_op="OR")) == ["a", "b", "c"]
    assert await members(conn, project, definition([x, y], logical_op="NOT")) == ["b", "c", "d"]
    nested = {"logicalOp": "NOT", "rules": [{"logicalOp": "OR", "rules": [x, y]}]}
    assert await members(conn, project, definition([nested])) == ["d"]
    for op in ("AND", "OR", "NOT"):
        assert await members(conn, project, definition([], logical_op=op)) == []
        empty_group = {"logicalOp": op, "rules": []}
        assert await members(conn, project, definition([empty_group], logical_op="OR")) == []
        assert await members(conn, project, definition([empty_group], logical_op="NOT")) == [
            "a",
            "b",
            "c",
            "d",
        ]


async def test_force_included_and_excluded(conn: asyncpg.Connection, project: Project) -> None:
    await upsert_profiles(conn, project.id, [("a", {"x": 1}), ("b", {"x": 1}), ("c", {})])
    x = when("x", "EXISTS")
    assert await members(conn, project, definition([], force=True, excluded=["a"])) == [
        "a",
        "b",
        "c",
    ]
    assert await members(conn, project, definition([], included=["c", "zz"])) == ["c"]
    assert await members(conn, project, definition([x], excluded=["a"])) == ["b"]
    # Excluded wins over included.
    assert await members(conn, project, definition([x], included=["a", "c"], excluded=["a"])) == [
        "b",
        "c",
    ]
    # Targets decide before rules that only the evaluator can judge.
    regex = when("x", "REGEX", "^2$")
    assert await members(conn, project, definition([regex], included=["b"], excluded=["a"])) == [
        "b"
    ]


async def test_values_are_parameters_not_sql(conn: asyncpg.Connection, project: Project) -> None:
    odd = [
        "it's",
        'say "hi"',
        "back\\slash",
        "'); DELETE FROM profiles; --",
        "$1",
        "%_",
        "ünïcødé ✓ 日本 🎉",
        "\u2028line",
    ]
    await upsert_profiles(
        conn, project.id, [(f"k{i}", {"s": value, value: value}) for i, value in enumerate(odd)]
    )
    for i, value in enumerate(odd):
        for condition in (
            when("s", "EQ", value),
            when("s", "IN", [value, "other"]),
            when("s", "STARTS_WITH", value),
            when("s", "ENDS_WITH", value),
            when("s", "CONTAINS", value),
            when(value, "EQ", value),
            when(value, "EXISTS"),
        ):
            assert await members(conn, project, definition([condition])) == [f"k{i}"], condition
    for condition in (when("s", "NEQ", odd[0]), when("s", "NOT_CONTAINS", "'")):
        expected = [
            f"k{i}"
            for i, value in enumerate(odd)
            if evaluate(definition([condition]), f"k{i}", {"s": value})
        ]
        assert await members(conn, project, definition([condition])) == expected
    assert await conn.fetchval("SELECT count(*) FROM profiles") == len(odd)


async def test_regex_rows_are_decided_by_the_evaluator(
    conn: asyncpg.Connection, project: Project
) -> None:
    await upsert_profiles(
        conn,
        project.id,
        [
            (f"u{n:03d}", {"email": f"user{n}@{'acme.io' if n % 3 == 0 else 'mail.com'}", "n": n})
            for n in range(120)
        ],
    )
    segment = definition([when("email", "REGEX", r"@acme\.io$"), when("n", "GTE", 30)])
    expected = [f"u{n:03d}" for n in range(30, 120) if n % 3 == 0]
    assert await members(conn, project, segment) == expected
    page = await member_page(conn, project.id, segment, "u050", 4)
    assert [row["targeting_key"] for row in page] == ["u051", "u054", "u057", "u060", "u063"]
    async with conn.transaction():  # the caller's transaction is reused, not nested
        assert await count_members(conn, project.id, segment) == len(expected)


async def test_member_pages_follow_keys_across_inserts_and_deletes(
    conn: asyncpg.Connection, project: Project
) -> None:
    await upsert_profiles(
        conn, project.id, [(f"u{n:03d}", {"even": n % 2 == 0}) for n in range(0, 100, 2)]
    )
    segment = definition([when("even", "EQ", True)])
    first = await member_page(conn, project.id, segment, None, 10)
    assert [row["targeting_key"] for row in first] == [f"u{n:03d}" for n in range(0, 22, 2)]
    after = first[9]["targeting_key"]  # u018: the cursor of the 10th member
    # New members before and after the cursor, one member removed after it.
    await upsert_profiles(conn, project.id, [("u001", {"even": True}), ("u019", {"even": True})])
    await conn.execute("DELETE FROM profiles WHERE targeting_key = 'u020'")
    second = await member_page(conn, project.id, segment, after, 3)
    assert [row["targeting_key"] for row in second] == ["u019", "u022", "u024", "u026"]
    rows = await member_page(conn, project.id, segment, "u096", 10)
    assert [row["targeting_key"] for row in rows] == ["u098"]
    assert await member_page(conn, project.id, segment, "u098", 10) == []
    only_one = await member_page(conn, project.id, segment, None, 0)  # limit + 1 rows
    assert [row["targeting_key"] for row in only_one] == ["u000"]
    assert set(first[0].keys()) >= {"project_id", "id", "targeting_key", "attributes", "updated_at"}


async def test_sparse_and_dense_segments_page_through_many_windows(
    conn: asyncpg.Connection, project: Project
) -> None:
    await upsert_profiles(conn, project.id, [(f"u{n:05d}", {"n": n}) for n in range(5000)])
    sparse = definition([when("n", "IN", [7, 2500, 4999])])
    assert await members(conn, project, sparse) == ["u00007", "u02500", "u04999"]
    assert [r["targeting_key"] for r in await member_page(conn, project.id, sparse, None, 1)] == [
        "u00007",
        "u02500",
    ]
    dense = definition([when("n", "GTE", 0)])
    streamed = [row["targeting_key"] async for row in iter_members(conn, project.id, dense, 700)]
    assert streamed == [f"u{n:05d}" for n in range(5000)]
    assert await count_members(conn, project.id, dense) == 5000


async def test_members_stay_inside_their_project(
    conn: asyncpg.Connection, project: Project, other_project: Project
) -> None:
    await upsert_profiles(conn, project.id, [("a", {"x": 1})])
    await upsert_profiles(conn, other_project.id, [("a", {"x": 1}), ("b", {"x": 1})])
    segment = definition([when("x", "EQ", 1)])
    assert await members(conn, project, segment) == ["a"]
    assert await count_members(conn, other_project.id, segment) == 2


async def test_definition_reads_a_segment_row() -> None:
    row = {
        "logical_op": "OR",
        "rules": [when("x", "EXISTS")],
        "force": False,
        "included": ["a"],
        "excluded": [],
        "salt": "s",
    }
    assert Definition.from_row(row) == Definition(
        "OR", [when("x", "EXISTS")], False, ["a"], [], "s"
    )


async def test_floats_written_in_exponent_form_come_back_as_integers(
    conn: asyncpg.Connection, project: Project
) -> None:
    """jsonb keeps a number's value, not its spelling: 1e16 is stored as 10000000000000000,
    which JSON readers take for an integer. Membership is what the evaluator says of the
    stored context; only REGEX on such numbers could tell the difference."""
    await upsert_profiles(conn, project.id, [("a", {"n": 1e16}), ("b", {"n": 2.0**64})])
    assert (await conn.fetchrow("SELECT context FROM profiles WHERE targeting_key = 'a'"))[
        "context"
    ]["n"] == 10**16
    assert await members(conn, project, definition([when("n", "EQ", 10**16)])) == ["a"]
    assert await members(conn, project, definition([when("n", "GTE", 2**64)])) == ["b"]
    assert await members(conn, project, definition([when("n", "REGEX", "^1000")])) == ["a"]


async def test_strings_postgres_cannot_hold_match_nothing_stored(
    conn: asyncpg.Connection, project: Project
) -> None:
    """Preview definitions may carry NUL characters or lone surrogates, which no stored
    profile can: they are never sent to PostgreSQL, and they decide as the evaluator does."""
    await upsert_profiles(conn, project.id, [("a", {"s": "abc"}), ("b", {"s": ["abc"]}), ("c", {})])
    for odd in ("a\x00", "\ud800"):
        cases = [
            when("s", "EQ", odd),
            when("s", "NEQ", odd),
            when("s", "IN", [odd, "abc"]),
            when("s", "NIN", [odd]),
            when("s", "CONTAINS", odd),
            when("s", "NOT_CONTAINS", odd),
            when("s", "STARTS_WITH", odd),
            when("s", "ENDS_WITH", odd),
            when(odd, "NOT_EXISTS"),
            when(odd, "NEQ", "x"),
            when(odd, "EQ", "abc"),
        ]
        for condition in cases:
            segment = definition([condition], included=[odd, "c"], excluded=[odd])
            expected = [
                key
                for key in "abc"
                if evaluate(segment, key, {"a": {"s": "abc"}, "b": {"s": ["abc"]}, "c": {}}[key])
            ]
            assert await members(conn, project, segment) == expected, condition


async def test_translated_regexes_search_like_re2(conn: asyncpg.Connection) -> None:
    """Patterns postgres_regex rewrites match exactly the strings RE2 matches; the rest are
    left to the evaluator (None)."""
    pieces = list("ab1.-_ \n^$|()[]{}*+?\\dswDSWé,:z") + [
        "\\d", "\\w", "\\s", "\\S", "\\.", "[a-z]", "[^a]", "[\\d-]", "(?:", "{2}", "{1,3}",
        "\\n", "\\b", "(?i)", "0-9",
    ]  # fmt: skip
    alphabet = list("ab1._- \n\t\r\x0b\x0cAZzé٣ẞ{}[]()*+?$^|\\")
    rnd = random.Random(20240115)
    strings = ["".join(rnd.choices(alphabet, k=rnd.randint(0, 8))) for _ in range(300)]
    translated = 0
    for _ in range(4000):
        pattern = "".join(rnd.choices(pieces, k=rnd.randint(1, 7)))
        regex = compile_regex(pattern)
        postgres = postgres_regex(pattern) if regex is not None else None
        if postgres is None:
            continue
        translated += 1
        rows = await conn.fetch(
            "SELECT s, s ~ $1 AS m FROM unnest($2::text[]) s", postgres, strings
        )
        mismatches = [row["s"] for row in rows if row["m"] != regex_search(regex, row["s"])]
        assert mismatches == [], (pattern, postgres)
    assert translated > 1000
    for pattern, expected in [
        (r"@acme\.io$", r"\@acme\.io$"),
        (r"^\d{3}-\w+", r"^[0-9]{3}\-[0-9A-Za-z_]+"),
        ("(gmail|acme)", "(?:gmail|acme)"),
        (".", "[^\\n]"),
        ("(?i)pro", None),  # case folding differs by locale
        (r"\bpro", None),
        ("[é-ü]", None),  # ranges beyond ASCII may follow the locale
        ("(a{2}){3}", None),
    ]:
        assert postgres_regex(pattern) == expected, pattern


def _stored(rules: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"key": "ref", "logical_op": "AND", "rules": rules, "force": False,
            "included": [], "excluded": [], "salt": "ref", **fields}  # fmt: skip


async def test_a_reference_is_inlined_as_the_referenced_definition(
    conn: asyncpg.Connection, project: Project
) -> None:
    await upsert_profiles(
        conn,
        project.id,
        [("a", {"x": 1, "y": "2"}), ("b", {"x": 1}), ("c", {"y": "2"}), ("vip", {}), ("d", {})],
    )
    x = when("x", "EXISTS")
    regex = when("y", "REGEX", "^2$")  # left to the evaluator by SQL
    references = {
        1: _stored([x], included=["vip"], excluded=["b"]),
        2: _stored([regex]),
        3: _stored([], force=True),
        4: _stored([{"segmentId": 1, "negate": False}, {"segmentId": 2, "negate": True}]),
    }

    def referencing(*rules: dict[str, Any], logical_op: str = "AND") -> Definition:
        return Definition("AND" if logical_op == "AND" else logical_op, list(rules), False, [], [],
                          "salt", references)  # fmt: skip

    def ref(segment_id: int, negate: bool = False) -> dict[str, Any]:
        return {"segmentId": segment_id, "negate": negate}

    assert await members(conn, project, referencing(ref(1))) == ["a", "vip"]
    assert await members(conn, project, referencing(ref(1, negate=True))) == ["b", "c", "d"]
    assert await members(conn, project, referencing(ref(2))) == ["a", "c"]
    assert await members(conn, project, referencing(ref(2, negate=True))) == ["b", "d", "vip"]
    assert await members(conn, project, referencing(ref(3, negate=True))) == []
    assert await members(conn, project, referencing(ref(4))) == ["vip"]
    nested = {"logicalOp": "OR", "rules": [ref(2), ref(1, negate=True)]}
    assert await members(conn, project, referencing(nested)) == ["a", "b", "c", "d"]
    # A reference the closure lacks never matches, negated or not.
    assert await members(conn, project, referencing(ref(9, negate=True), logical_op="OR")) == []
    # Every path above agreed with the evaluator given the same closure.
    for rules in ([ref(1)], [ref(2, negate=True)], [ref(4)], [nested]):
        segment = referencing(*rules)
        expected = [key for key in ("a", "b", "c", "d", "vip") if _evaluates(segment, key)]
        assert await members(conn, project, segment) == expected


def _evaluates(segment: Definition, key: str) -> bool:
    attributes = {"a": {"x": 1, "y": "2"}, "b": {"x": 1}, "c": {"y": "2"}}.get(key, {})
    from db.profiles import profile_context

    return segment.compile().evaluate(profile_context(key, attributes)).matched


def test_a_segment_referenced_twice_is_compiled_once() -> None:
    references = {1: _stored([when("plan", "IN", ["pro", "team"])])}

    def compiled(rules: list[dict[str, Any]]) -> tuple[SqlBuilder, str]:
        sql = SqlBuilder(1)
        predicate = compile_definition(sql, logical_op="OR", rules=rules, force=False,
                                       included=[], excluded=[], salt="s", references=references)  # fmt: skip
        return sql, predicate.expr

    once, _ = compiled([{"segmentId": 1, "negate": False}])
    twice, expr = compiled([{"segmentId": 1, "negate": False}, {"segmentId": 1, "negate": True}])
    assert twice.params.count(["pro", "team"]) == once.params.count(["pro", "team"]) > 0
    assert "NOT" in expr


# PERCENTAGE in SQL: the same buckets as the evaluator, from PostgreSQL's own sha256.


def _percentage_count_sql(sql: SqlBuilder, percent: float, salt: str, keys: int) -> str:
    """A count over generated contexts {"targetingKey": "user-<n>"} of the real leaf."""
    rule = when("targetingKey", "PERCENTAGE", percent)
    predicate = compile_definition(
        sql,
        logical_op="AND",
        rules=[rule],
        force=False,
        included=[],
        excluded=[],
        salt=salt,
        context="jsonb_build_object('targetingKey', 'user-' || g.n)",
        key="('user-' || g.n)",
    )
    assert predicate.exact
    return f"SELECT count(*) FROM generate_series(1, {keys}) AS g(n) WHERE {predicate.expr}"


@pytest.mark.parametrize(("salt", "text", "bucket"), BUCKETS)
async def test_percentage_buckets_in_sql_are_the_known_ones(
    conn: asyncpg.Connection, salt: str, text: str, bucket: int
) -> None:
    assert (
        await conn.fetchval(f"SELECT {percentage.bucket('$1::text', '$2::text')}", f"{salt}/", text)
        == bucket
    )
    # Through the leaf: just above the bucket's position matches, at or below it does not.
    position = Fraction(bucket * 100, 2**64)
    for percent, expected in [
        (math.floor(position * 1000 + 1) / 1000, True),
        (math.floor(position * 1000) / 1000, False),
    ]:
        value = int(text) if text.isdigit() else text  # integers bucket by their decimals
        sql = SqlBuilder({"x": value})  # the connection encodes jsonb
        predicate = compile_definition(
            sql,
            logical_op="AND",
            rules=[when("x", "PERCENTAGE", percent)],
            force=False,
            included=[],
            excluded=[],
            salt=salt,
            context="$1::jsonb",
            key="''",
        )
        assert await conn.fetchval(f"SELECT {predicate.expr}", *sql.params) is expected, (
            percent,
            sql.params,
        )


@pytest.mark.parametrize("percent", [0, 0.5, 25, 70.125, 100])
async def test_percentage_splits_keys_in_proportion_in_sql(
    conn: asyncpg.Connection, percent: float
) -> None:
    sql = SqlBuilder()
    keys = 100_000
    matched = await conn.fetchval(_percentage_count_sql(sql, percent, "rollout", keys), *sql.params)
    assert abs(matched / keys * 100 - percent) <= 1
    if percent in (0, 100):
        assert matched == keys * percent / 100  # 0 matches no one, 100 everyone


async def test_arrays_longer_than_sql_unrolls_are_decided_by_the_evaluator(
    conn: asyncpg.Connection, project: Project
) -> None:
    """SQL tests the first elements of an array attribute itself and leaves longer arrays to
    the evaluator; either way the members are the evaluator's, wherever the match sits."""
    words = [f"v{i}" for i in range(20)]
    numbers = list(range(20))
    profiles = {
        "far": {"x": [*words, "pro"], "n": [*numbers, 99]},
        "none": {"x": words, "n": numbers},
        "near": {"x": ["pro"], "n": [99]},
        "scalar": {"x": "pro", "n": 99},
    }
    await upsert_profiles(conn, project.id, list(profiles.items()))
    cases = [
        (when("x", "STARTS_WITH", "pr"), ["far", "near", "scalar"]),
        (when("x", "EQ", "pro"), ["far", "near", "scalar"]),
        (when("x", "IN", ["pro", "x"]), ["far", "near", "scalar"]),
        (when("x", "NEQ", "pro"), ["none"]),
        (when("x", "EQ", "PRO") | {"caseInsensitive": True}, ["far", "near", "scalar"]),
        (when("n", "GT", 50), ["far", "near", "scalar"]),
        (when("n", "IN", [99]), ["far", "near", "scalar"]),
        (when("n", "NIN", [99]), ["none"]),
    ]
    for condition, expected in cases:
        segment = definition([condition])
        assert [key for key, attrs in profiles.items() if evaluate(segment, key, attrs)] == [
            key for key in profiles if key in expected
        ], condition
        assert await members(conn, project, segment) == sorted(expected), condition


async def test_no_leaf_needs_a_subquery_so_counts_can_run_in_parallel(
    conn: asyncpg.Connection, project: Project
) -> None:
    """A correlated subquery makes PostgreSQL run the whole count in one process; every
    operator's leaf, arrays included, must compile without one."""
    for operator in OPERATORS:
        for value in CONDITION_VALUES[operator]:
            folds = [False, True] if REGISTRY[operator].case_insensitive else [False]
            for fold in folds:
                condition = when("x", operator, value) | ({"caseInsensitive": True} if fold else {})
                sql = SqlBuilder(project.id)
                predicate = definition([condition]).predicate(sql)
                plan = "\n".join(
                    row[0]
                    for row in await conn.fetch(
                        "EXPLAIN SELECT count(*) FROM profiles p"
                        f" WHERE p.project_id = $1 AND ({predicate.expr}) IS NOT FALSE",
                        *sql.params,
                    )
                )
                assert "SubPlan" not in plan, (operator, value, fold)
