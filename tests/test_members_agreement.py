"""The SQL membership path and the Python evaluator agree on generated profiles and segments.

Membership is defined by evaluation (DESIGN §11): for every stored profile, count_members,
member_page and iter_members must say exactly what `compile_segment(...).evaluate` says of the
profile's context, whatever mix of types, coercions and operators the data and rules hold.
Generated segments may reference other generated segments (stored in the same project, some
referencing each other in turn), negated or not, at any nesting (DESIGN §12): SQL inlines
them, the evaluator evaluates them, both from the closure `core.references` loads.
Some segments, stored or checked, are big (DESIGN §13): their lists are stored as rows of
segment_targets, which SQL probes, and the evaluator is given the lists whole.
"""

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.references import references_of
from db.members import Definition, count_members, iter_members, member_page
from db.pool import connect
from db.profiles import profile_context, upsert_profiles
from rules.models import LOGICAL_OPS, referenced_ids
from rules.operators import OPERATORS, REGISTRY
from rules.values import storable_text
from tests.conftest import make_project

KEYS = [f"user-{n:02d}" for n in range(24)] + ["Z", "a b", "ü", "quote'\\"]

STRINGS = [
    "",
    "pro",
    "Pro",
    "free",
    "pro plan",
    "a%_b",
    'it\'s \\ "quoted"',
    "ünïcødé ✓",
    "日本",
    "True",
    "true",
    "FALSE",
    "tRuE",
    "5",
    "5.0",
    "05",
    "-3",
    "+7",
    ".5",
    "5.",
    "1e3",
    "1E-2",
    "1e400",
    "-1e400",
    "1e-400",
    "9007199254740993",
    "18446744073709551617",
    "0.1",
    "0.30000000000000004",
    "1.5e-7",
    "2024-01-15",
    "2024-01-15T10:00:00Z",
    "2024-01-15T10:00:00.123456Z",
    "2024-01-15T10:00:00.1234567",
    "2024-01-15t10:00",
    "2024-01-15 23:59:59",
    "2024-01-15T10:00:00+05:30",
    "2024-01-15T10:00-0800",
    "2024-01-15T10:00:00,5",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "0000-01-01",
    "2024-04-31",
    "2024-01-16",
    "2024-1-15",
    "2000-02-29",
    "1900-02-29",
    "1800-02-29",
    "2400-02-29",
    "2024-00-10",
    "2024-12-32",
    "abcd-ef-gh",
    "0001-01-01",
    "9999-12-31",
    "2024-01-15T10:00:00.000001+00:00",
    "2024-01-15T09:59:59.999999Z",
    "2024-01-15T24:00:00",
    "2024-01-15T10:60",
    "1705312800",
    "1705312800.5",
    "1.2.3",
    "v1.2.3",
    "1.2.3-beta.1",
    "1.2.3-beta.2",
    "1.2.3-01",
    "1.2.3+build.5",
    "1.2.3-rc.1+build",
    "1.2.3+",
    "1.10.0",
    "2.0.0",
    "01.2.3",
    "abc123",
    "a1b2",
    # Lower-casing beyond ASCII (caseInsensitive): Python's str.lower() is Unicode's.
    "PRO",
    "ÜBER",
    "über",
    "İ",
    "i\u0307",
    "ß",
    "SS",
    "Σ",
    "ΌΣΟΣ",
    "όσος",
    "ǅ",
    "ǆ",
    "\u212a",
    "k",
]

NUMBERS = [
    0,
    1,
    -1,
    5,
    3,
    7,
    1705312800,
    1705312800.5,
    0.5,
    0.1,
    0.30000000000000004,
    5.0,
    -3.25,
    1e-7,
    2**53,
    2**53 + 1,
    float(2**53),
    9007199254740994.0,
    2**62,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    123456789.125,
    9999999999999998.0,
]

ATTRIBUTES = [
    "plan",
    "age",
    "user.plan",
    "user.age",
    "a.b",
    "tags",
    "created",
    "version",
    "x",
    "targetingKey",
]
# Letters whose lower-casing differs between Unicode and a database collation, or changes
# the length of a string (caseInsensitive).
UNICODE_LETTERS = "aAbPRoİiß\u0307SsΣσςǅǆǄ\u212akÜü"
SALTS = ["checkout", "onboarding", "ünï/cödé", "a'b\\c", "x" * 100]

scalars = (
    st.sampled_from(STRINGS)
    | st.sampled_from(NUMBERS)
    | st.booleans()
    | st.none()
    | st.integers(-10, 10)
    | st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
    | st.text(alphabet="ab1.-eE+ Tt:Z", max_size=8)
    | st.text(alphabet=UNICODE_LETTERS, max_size=5)
)
arrays = st.lists(
    scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.sampled_from(["k"]), scalars),
    max_size=4,
)
# One in three values an array (a plain `|` would flatten into scalars' many branches).
values = st.integers(0, 2).flatmap(lambda n: arrays if n == 0 else scalars)
present = st.integers(0, 3).map(lambda n: n > 0)


@st.composite
def attributes(draw: Any) -> dict[str, Any]:
    """An attributes object: some top-level, some nested under "user", a dotted key."""
    result: dict[str, Any] = {}
    for name in ["plan", "age", "tags", "created", "version", "a.b", "x"]:
        if draw(present):
            result[name] = draw(values)
    if draw(present):
        user = {}
        for name in ["plan", "age"]:
            if draw(present):
                user[name] = draw(values)
        result["user"] = user
    if draw(st.integers(0, 9)) == 0:
        result["a"] = {"b": draw(values)}  # collides with the dotted key "a.b"
    return result


def _condition_value(operator: str) -> st.SearchStrategy[Any]:
    if operator in ("EQ", "NEQ"):
        return st.sampled_from(STRINGS) | st.sampled_from(NUMBERS) | st.booleans()
    if operator in ("IN", "NIN"):
        return st.lists(
            st.sampled_from(STRINGS) | st.sampled_from(NUMBERS) | st.booleans(),
            min_size=1,
            max_size=12,
        )
    if operator in ("GT", "GTE", "LT", "LTE"):
        return st.sampled_from(NUMBERS) | st.integers(-10, 10) | st.floats(-1e6, 1e6)
    if operator in ("CONTAINS", "NOT_CONTAINS", "STARTS_WITH", "ENDS_WITH"):
        return (
            st.sampled_from(STRINGS)
            | st.text(alphabet="ab1.-", max_size=3)
            | st.text(alphabet=UNICODE_LETTERS, max_size=3)
        )
    if operator == "PERCENTAGE":
        return (
            st.sampled_from([0, 0.001, 12.5, 33.333, 50, 99.999, 100])
            | st.integers(0, 100)
            | st.integers(0, 100_000).map(lambda n: n / 1000)
        )
    if operator in ("EXISTS", "NOT_EXISTS"):
        return st.none()
    if operator == "REGEX":
        return st.sampled_from(
            [
                "^pro$",
                "pro",
                r"\d",
                r"^\d+$",
                "^[a-z]+$",
                "1e",
                "e-",
                r"\.5$",
                "(?i)TRUE",
                "^$",
                "^P[A-Z]O",
                "ß|SS",
                "^ü",
                r"\W",
                "[^k]",
                "E",
            ]
        )
    if operator in ("BEFORE", "AFTER"):
        return st.sampled_from(
            [
                "2024-01-15",
                "2024-01-15T10:00:00Z",
                "2024-01-15T10:00:00.5+05:30",
                "2024-01-16",
                "1970-01-01",
                "2024-01-15T10:00:00.123456",
                "0001-01-01T00:00:00+05:00",
                "9999-12-31T23:59:59-23:59",
                "2024-01-15T12:00:00Z",
                "2024-01-16T00:00:00+01:00",
                "2000-02-29",
            ]
        )
    return st.sampled_from(["1.2.3", "v1.2.3", "1.2.3-beta.1", "1.2.3-beta.2", "1.10.0", "0.0.1"])


@st.composite
def conditions(draw: Any) -> dict[str, Any]:
    operator = draw(st.sampled_from(OPERATORS))
    condition = {
        "attribute": draw(st.sampled_from(ATTRIBUTES)),
        "operator": operator,
        "value": draw(_condition_value(operator)),
    }
    if REGISTRY[operator].case_insensitive and draw(st.booleans()):
        condition["caseInsensitive"] = True
    return condition


def _placeholder(index: int, negate: bool) -> dict[str, Any]:
    """A reference to the index-th stored segment of the example, resolved once stored."""
    return {"segmentId": -1 - index, "negate": negate}


def rule_trees(stored: int) -> st.SearchStrategy[Any]:
    """Rule trees whose leaves are conditions and, one in four, references to one of the
    first `stored` segments of the example."""
    leaves: st.SearchStrategy[Any] = conditions()
    if stored:
        references = st.builds(_placeholder, st.integers(0, stored - 1), st.booleans())
        leaves = st.integers(0, 3).flatmap(lambda n: references if n == 0 else conditions())
    return st.recursive(
        leaves,
        lambda children: st.fixed_dictionaries(
            {"logicalOp": st.sampled_from(LOGICAL_OPS), "rules": st.lists(children, max_size=4)}
        ),
        max_leaves=8,
    )


def definitions(stored: int = 0) -> st.SearchStrategy[Definition]:
    return st.builds(
        Definition,
        logical_op=st.sampled_from(LOGICAL_OPS),
        rules=st.lists(rule_trees(stored), max_size=4),
        force=st.integers(0, 30).map(lambda n: n == 30),
        included=st.lists(st.sampled_from(KEYS), max_size=3),
        excluded=st.lists(st.sampled_from(KEYS), max_size=3),
        salt=st.sampled_from(SALTS) | st.text(min_size=1, max_size=8).filter(storable_text),
        # BIG marks a segment to store as a big one.
        big_segment_id=st.integers(0, 3).map(lambda n: BIG if n == 0 else None),
    )


BIG = -1


@st.composite
def segment_sets(draw: Any) -> tuple[list[Definition], list[Definition]]:
    """Up to three segments to store, each maybe referencing the ones before it (a chain of
    at most 4 with the checked segment on top), and the segments to check, which may
    reference any of them."""
    stored = [draw(definitions(index)) for index in range(draw(st.integers(0, 3)))]
    checked = draw(st.lists(definitions(len(stored)), min_size=1, max_size=12))
    return stored, checked


profile_sets = st.lists(attributes(), min_size=12, max_size=len(KEYS)).map(
    lambda attrs: dict(zip(KEYS, attrs, strict=False))
)


def expected_members(definition: Definition, profiles: dict[str, dict[str, Any]]) -> list[str]:
    segment = definition.compile()
    return sorted(
        key
        for key, attrs in profiles.items()
        if segment.evaluate(profile_context(key, attrs)).matched
    )


def _resolved(rules: Any, ids: list[int]) -> Any:
    """Rules with every placeholder reference turned into the stored segment's id."""
    if isinstance(rules, list):
        return [_resolved(rule, ids) for rule in rules]
    if "segmentId" in rules:
        return {**rules, "segmentId": ids[-1 - rules["segmentId"]]}
    if "logicalOp" in rules:
        return {**rules, "rules": _resolved(rules["rules"], ids)}
    return rules


async def store_segment(
    conn: Any, project_id: int, key: str, definition: Definition, rules: Any
) -> int:
    """Store one segment as a write would; a big one keeps its lists as segment_targets rows."""
    big = definition.big_segment_id == BIG
    segment_id = await conn.fetchval(
        """
        INSERT INTO segments (project_id, key, name, logical_op, rules, force, included,
                              excluded, salt, unbounded)
        VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9)
        RETURNING id
        """,
        project_id,
        key,
        definition.logical_op,
        rules,
        definition.force,
        [] if big else definition.included,
        [] if big else definition.excluded,
        definition.salt,
        big,
    )
    if big:
        for kind in ("included", "excluded"):
            await conn.execute(
                """
                INSERT INTO segment_targets (project_id, segment_id, kind, targeting_key)
                SELECT $1, $2, $3, unnest($4::text[])
                ON CONFLICT DO NOTHING
                """,
                project_id,
                segment_id,
                kind,
                getattr(definition, kind),
            )
    return segment_id


async def store_segments(conn: Any, project_id: int, stored: list[Definition]) -> list[int]:
    """Store the example's referenced segments (and their references) as a write would."""
    await conn.execute("DELETE FROM segment_references WHERE project_id = $1", project_id)
    await conn.execute("DELETE FROM segment_targets WHERE project_id = $1", project_id)
    await conn.execute("DELETE FROM segments WHERE project_id = $1", project_id)
    ids: list[int] = []
    for index, definition in enumerate(stored):
        rules = _resolved(definition.rules, ids)
        segment_id = await store_segment(conn, project_id, f"stored-{index}", definition, rules)
        await conn.execute(
            """
            INSERT INTO segment_references (project_id, segment_id, referenced_id)
            SELECT $1, $2, unnest($3::bigint[])
            """,
            project_id,
            segment_id,
            sorted(set(referenced_ids(rules))),
        )
        ids.append(segment_id)
    return ids


async def check(
    conn: Any, project_id: int, segments: tuple[list[Definition], list[Definition]], profiles: dict
) -> None:
    await conn.execute("DELETE FROM profiles WHERE project_id = $1", project_id)
    await upsert_profiles(conn, project_id, list(profiles.items()))
    stored, checked = segments
    ids = await store_segments(conn, project_id, stored)
    # The evaluator's reference: every segment with its lists whole.
    whole = {
        segment_id: {"included": definition.included, "excluded": definition.excluded}
        for segment_id, definition in zip(ids, stored, strict=True)
    }
    for index, definition in enumerate(checked):
        rules = _resolved(definition.rules, ids)
        references = await references_of(conn, project_id, rules)
        reference = replace(
            definition,
            rules=rules,
            big_segment_id=None,
            references={i: {**found, **whole[i]} for i, found in references.items()},  # type: ignore[typeddict-item]
        )
        definition = replace(definition, rules=rules, references=references, big_segment_id=None)
        if definition.big_segment_id is None and checked[index].big_segment_id == BIG:
            segment_id = await store_segment(
                conn, project_id, f"checked-{index}", checked[index], rules
            )
            definition = replace(definition, included=[], excluded=[], big_segment_id=segment_id)
        await check_segment(conn, project_id, definition, profiles, reference)


async def check_segment(
    conn: Any,
    project_id: int,
    definition: Definition,
    profiles: dict,
    reference: Definition | None = None,
) -> None:
    """SQL's members of `definition` are the evaluator's members of `reference` (the same
    segment with every list whole; by default `definition` itself)."""
    expected = expected_members(reference or definition, profiles)
    assert await count_members(conn, project_id, definition) == len(expected)
    streamed = [row["targeting_key"] async for row in iter_members(conn, project_id, definition, 7)]
    assert streamed == expected
    paged: list[str] = []
    after = None
    while True:
        rows = await member_page(conn, project_id, definition, after, 5)
        assert len(rows) <= 6
        keys = [row["targeting_key"] for row in rows[:5]]
        paged.extend(keys)
        if len(rows) <= 5:
            break
        after = keys[-1]
    assert paged == expected


def run_agreement(database_url: str, examples: int) -> None:
    loop = asyncio.new_event_loop()
    project = loop.run_until_complete(make_project(database_url, "acme"))
    conn = loop.run_until_complete(connect(database_url))

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(segments=segment_sets(), profiles=profile_sets)
    def agree(
        segments: tuple[list[Definition], list[Definition]], profiles: dict[str, dict[str, Any]]
    ) -> None:
        loop.run_until_complete(check(conn, project.id, segments, profiles))

    try:
        agree()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()


def test_sql_membership_agrees_with_the_evaluator(database_url: str) -> None:
    run_agreement(database_url, examples=250)


@pytest.mark.slow
def test_sql_membership_agrees_with_the_evaluator_at_length(
    database_url: str, request: pytest.FixtureRequest
) -> None:
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("long-running; select with -m slow")
    run_agreement(database_url, examples=3000)
