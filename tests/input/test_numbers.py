"""Numbers JSON cannot carry exactly (integers beyond signed 64 bits, non-finite ones) and
contexts nested deeper than a profile may be are refused alike inline, through variables and
in import files: a typed error, nothing written, never a silent float, null or 500."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.mutations.helpers import condition, new_segment
from tests.test_cli import run

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
REFUSED = [
    "9223372036854775808",  # 2^63: orjson keeps it an int, jsonb would store it
    "-9223372036854775809",  # below -2^63: orjson reads a float
    "18446744073709551616",  # 2^64: orjson reads a float
    "1" + "0" * 40,
    "1e400",  # orjson refuses it; GraphQL literals read infinity
    "-1e400",
    "1" * 5000,  # beyond Python's int() digit limit
]
KEPT = ["9223372036854775807", "-9223372036854775808", "1.5e308", "123456789012345678", "0.1"]

UPSERT = "mutation($i: UpsertProfilesInput!) { upsertProfiles(input: $i) { upsertedCount userErrors { field code message } } }"
UPSERT_INLINE = """mutation { upsertProfiles(input: {projectKey: "acme", profiles: [
  {targetingKey: "fine", attributes: {plan: "pro"}}, {targetingKey: "odd", attributes: {n: NUMBER}}
]}) { upsertedCount userErrors { field code message } } }"""
CREATE = "mutation($i: CreateSegmentInput!) { createSegment(input: $i) { segment { key } userErrors { field code message } } }"
CREATE_INLINE = """mutation { createSegment(input: {projectKey: "acme", name: "Odd", rules: [
  {condition: {attribute: "n", operator: EQ, value: NUMBER}}
]}) { segment { key } userErrors { field code message } } }"""
EVALUATE = 'query($c: JSON!) { evaluateSegment(projectKey: "acme", key: "beta", context: $c) { matched conditions { actual } } }'
EVALUATE_INLINE = 'query { evaluateSegment(projectKey: "acme", key: "beta", context: {n: NUMBER}) { matched conditions { actual } } }'
PROFILES = 'query { profiles(projectKey: "acme") { totalCount nodes { targetingKey attributes } } }'
SEGMENTS = 'query { segments(projectKey: "acme") { totalCount } }'


def body(query: str, variables: dict, number: str) -> str:
    """The request as JSON text with `number` written verbatim where variables say "NUMBER"."""
    return json.dumps({"query": query, "variables": variables}).replace('"NUMBER"', number)


async def post(client, project, text: str) -> dict:
    response = await client.post(
        "/graphql",
        content=text,
        headers={"Authorization": f"Bearer {project.editor}", "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def upsert_variables(number_placeholder: str = "NUMBER") -> dict:
    return {
        "i": {
            "projectKey": "acme",
            "profiles": [
                {"targetingKey": "fine", "attributes": {"plan": "pro"}},
                {"targetingKey": "odd", "attributes": {"n": number_placeholder}},
            ],
        }
    }


@pytest.fixture
async def beta(gql, project):
    await new_segment(gql, project.key, name="Beta", key="beta", rules=[condition("n", "EQ", 1)])


@pytest.mark.parametrize("number", REFUSED, ids=lambda n: n[:24])
async def test_profile_attributes_refuse_inexact_numbers_inline_and_through_variables(
    client, gql, project, number
):
    inline = await post(
        client, project, json.dumps({"query": UPSERT_INLINE.replace("NUMBER", number)})
    )
    through_variables = await post(client, project, body(UPSERT, upsert_variables(), number))
    for answer in (inline, through_variables):
        payload = answer["data"]["upsertProfiles"]
        assert payload["upsertedCount"] == 0
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            (["input", "profiles", "1", "attributes"], "INVALID_INPUT")
        ]
        assert "64 bits" in payload["userErrors"][0]["message"]
    assert inline == through_variables
    assert (await gql(PROFILES))["profiles"]["totalCount"] == 0


@pytest.mark.parametrize("number", KEPT)
async def test_profile_attributes_keep_every_exact_number_as_sent(client, gql, project, number):
    inline = await post(
        client, project, json.dumps({"query": UPSERT_INLINE.replace("NUMBER", number)})
    )
    assert inline["data"]["upsertProfiles"] == {"upsertedCount": 2, "userErrors": []}
    stored = {
        n["targetingKey"]: n["attributes"] for n in (await gql(PROFILES))["profiles"]["nodes"]
    }
    assert stored["odd"] == {"n": json.loads(number)}
    through_variables = await post(client, project, body(UPSERT, upsert_variables(), number))
    assert through_variables["data"]["upsertProfiles"] == {"upsertedCount": 2, "userErrors": []}
    stored = {
        n["targetingKey"]: n["attributes"] for n in (await gql(PROFILES))["profiles"]["nodes"]
    }
    assert stored["odd"] == {"n": json.loads(number)}


@pytest.mark.parametrize("number", REFUSED, ids=lambda n: n[:24])
async def test_rule_values_refuse_inexact_numbers_inline_and_through_variables(
    client, gql, project, number
):
    inline = await post(
        client, project, json.dumps({"query": CREATE_INLINE.replace("NUMBER", number)})
    )
    variables = {
        "i": {"projectKey": "acme", "name": "Odd", "rules": [condition("n", "EQ", "NUMBER")]}
    }
    through_variables = await post(client, project, body(CREATE, variables, number))
    for answer in (inline, through_variables):
        payload = answer["data"]["createSegment"]
        assert payload["segment"] is None
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            (["input", "rules", "0", "condition", "value"], "INVALID_RULE")
        ]
    assert inline == through_variables
    assert (await gql(SEGMENTS))["segments"]["totalCount"] == 0


@pytest.mark.parametrize("number", REFUSED, ids=lambda n: n[:24])
async def test_evaluation_contexts_refuse_inexact_numbers_inline_and_through_variables(
    client, project, beta, number
):
    inline = await post(
        client, project, json.dumps({"query": EVALUATE_INLINE.replace("NUMBER", number)})
    )
    through_variables = await post(client, project, body(EVALUATE, {"c": {"n": "NUMBER"}}, number))
    for answer in (inline, through_variables):
        assert answer["data"] is None
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"]
        assert "64 bits" in answer["errors"][0]["message"]
    assert inline["errors"][0]["message"] == through_variables["errors"][0]["message"]


def nested(depth: int, leaf: object = 1) -> object:
    """`depth` levels of arrays around `leaf` (evaluation flattens objects, not arrays)."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def deep_text(depth: int) -> str:
    # As text: the standard library's encoder would itself run out of stack.
    return "[" * depth + "1" + "]" * depth


@pytest.mark.parametrize("depth", [11, 60, 1000])
async def test_an_evaluation_context_nested_deeper_than_a_profile_is_bad_user_input(
    client, gql, project, beta, depth
):
    # The condition's `actual` is the deep value itself: today it cannot be written out.
    answer = await post(
        client, project, body(EVALUATE, {"c": {"n": "NUMBER"}}, deep_text(depth - 1))
    )
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"], answer
    assert "nested deeper than 10 levels" in answer["errors"][0]["message"]
    if depth <= 60:  # the GraphQL parser itself refuses deeper literals
        errors = await gql.errors(EVALUATE_INLINE.replace("NUMBER", deep_text(depth - 1)))
        assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"], errors


async def test_an_evaluation_context_as_deep_as_a_profile_may_be_is_evaluated(gql, project, beta):
    context = {"n": nested(9), "m": 1}
    data = await gql(EVALUATE, {"c": context})
    assert data["evaluateSegment"] == {"matched": False, "conditions": [{"actual": nested(9)}]}


@pytest.mark.parametrize("depth", [11, 1000])
async def test_a_preview_rule_value_nested_deeply_is_a_user_error(client, project, depth):
    preview = "query($i: PreviewSegmentInput!) { previewSegment(input: $i) { memberCount userErrors { field code } } }"
    for operator, value in (("EQ", deep_text(depth)), ("IN", f"[{deep_text(depth - 1)}]")):
        variables = {"i": {"projectKey": "acme", "rules": [condition("n", operator, "NUMBER")]}}
        data = (await post(client, project, body(preview, variables, value)))["data"]
        assert data["previewSegment"] == {
            "memberCount": None,
            "userErrors": [
                {"field": ["input", "rules", "0", "condition", "value"], "code": "INVALID_RULE"}
            ],
        }


async def test_import_files_refuse_inexact_numbers_by_line(database_url, project, gql, tmp_path):
    file = tmp_path / "people.ndjson"
    lines = ['{"targetingKey": "fine", "attributes": {"n": 9223372036854775807}}']
    lines += [
        f'{{"targetingKey": "odd-{i}", "attributes": {{"n": {number}}}}}'
        for i, number in enumerate(REFUSED)
    ]
    file.write_text("\n".join(lines) + "\n")

    result = run(
        "profiles", "import", "--project", project.key, str(file), database_url=database_url
    )

    assert result.returncode == 1, result.stderr
    bad = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [line.split(":")[0] for line in bad] == [f"line {n}" for n in range(2, 2 + len(REFUSED))]
    assert all("64 bits" in line for line in bad), bad
    assert (await gql(PROFILES))["profiles"]["totalCount"] == 0

    result = run(
        "profiles",
        "import",
        "--skip-invalid",
        "--project",
        project.key,
        str(file),
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    assert (await gql(PROFILES))["profiles"]["nodes"] == [
        {"targetingKey": "fine", "attributes": {"n": INT64_MAX}}
    ]


# The one reader of client JSON text: numbers come back exactly as written, and the check
# refuses exactly the numbers outside 64-bit integers and finite floats.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def as_text(value: object) -> str:
    # The standard library writes every integer exactly; infinities are spelled as overflowing
    # literals, as a client would have to.
    return json.dumps(value).replace("-Infinity", "-1e999").replace("Infinity", "1e999")


def numbers(value: object) -> list:
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return [value] if type(value) in (int, float) else []


@given(json_values)
def test_client_json_reads_numbers_exactly_and_refuses_only_inexact_ones(value):
    from rules.values import json_problem, loads_json

    text = as_text(value)
    read = loads_json(text.encode())
    assert read == value and as_text(read) == text
    exact = all(
        (INT64_MIN <= n <= INT64_MAX) if type(n) is int else math.isfinite(n)
        for n in numbers(value)
    )
    assert (json_problem(read, 100) is None) == exact


@pytest.mark.parametrize(
    "text",
    [
        b'"\\ud800"',
        b'["\\ud800", 1e400]',  # the exact reading refuses what orjson refuses
        b"[NaN, 1e400]",
        b"[Infinity, 12345678901234567890]",
        b'{"a": 1e400,}',
        b"[" * 2000 + b"1e400" + b"]" * 2000,
        b"\xff 1e400",
    ],
)
def test_text_that_is_not_json_is_refused_whichever_way_it_is_read(text):
    import orjson

    from rules.values import loads_json

    with pytest.raises(orjson.JSONDecodeError):
        loads_json(text)


@pytest.mark.parametrize("number", ["18446744073709551616", "1e400"])
async def test_get_variables_are_read_exactly_too(client, project, beta, number):
    response = await client.get(
        "/graphql",
        params={"query": EVALUATE, "variables": f'{{"c": {{"n": {number}}}}}'},
        headers={"Authorization": f"Bearer {project.editor}"},
    )
    assert response.status_code == 200, response.text
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["BAD_USER_INPUT"]


async def test_csv_cells_spelling_inexact_numbers_stay_text_never_null(
    database_url, project, gql, tmp_path
):
    # CSV has no types: a cell is a number only when it spells one we take exactly (like
    # "007" stays text), so such a cell keeps its characters rather than being refused.
    file = tmp_path / "people.csv"
    file.write_text("targetingKey,n,m\nu1,1e400,18446744073709551616\n")
    result = run(
        "profiles", "import", "--project", project.key, str(file), database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    assert (await gql(PROFILES))["profiles"]["nodes"] == [
        {"targetingKey": "u1", "attributes": {"n": "1e400", "m": "18446744073709551616"}}
    ]


# The bytes JSON numbers are made of, and a few others, so runs and exponents come up often.
number_bytes = st.binary(max_size=60).map(
    lambda noise: bytes(b'0123456789eE+-.x"'[byte % 17] for byte in noise)
)


@given(number_bytes | st.binary(max_size=60))
def test_the_inexact_prescan_finds_exactly_what_its_pattern_describes(raw):
    import re

    from rules.values import may_be_inexact

    pattern = re.compile(rb"[0-9]{19}|[eE][+-]?[0-9]{3}")
    assert may_be_inexact(raw) == (pattern.search(raw) is not None)


deep_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=14,
)


@given(st.dictionaries(st.text(max_size=3), deep_values, max_size=4), st.text(max_size=3))
def test_an_import_line_is_judged_as_upsert_profiles_judges_it(attributes, key):
    """The import skips the walk over values when the line's bytes show it cannot find
    anything; the verdict and the stored JSON stay those of the full check."""
    import orjson

    from api.profile_files import _ndjson_line
    from rules.profiles import validate_profile

    text = as_text({"targetingKey": key, "attributes": attributes}).encode()
    line = _ndjson_line(1, text)
    problems = validate_profile(key, loads_exact(text)["attributes"])
    if problems:
        assert line.profile is None
        assert line.problem == "; ".join(problem.message for problem in problems)
    else:
        assert line.problem is None
        assert orjson.loads(line.profile[2]) == line.profile[1] == attributes


def loads_exact(text: bytes) -> object:
    from rules.values import loads_json

    return loads_json(text, inexact=True)  # the exact reader, whatever the bytes
