"""Cursors that decode but hold odd values are bad input on every connection, never a 500."""

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest
from graphql import GraphQLError
from hypothesis import given, settings
from hypothesis import strategies as st

from schema.pagination import decode_cursor, id_value, text_value, time_value
from tests.mutations.helpers import new_segment

OUT_OF_RANGE_TIMES = [
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:00:00-01:00",
]


def cursor(kind: str, value: object, row_id: object = 1) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, value, row_id]).encode()).decode()


SEGMENTS = """
query($p: String!, $after: String, $before: String, $last: Int, $order: SegmentOrder) {
  segments(projectKey: $p, after: $after, before: $before, last: $last, orderBy: $order) { nodes { key } }
}"""
FLAGS = (
    "query($p: String!, $after: String) { flags(projectKey: $p, after: $after) { nodes { key } } }"
)
AUDIT = "query($p: String!, $after: String) { auditLog(projectKey: $p, after: $after) { nodes { id } } }"
HISTORY = """
query($p: String!, $after: String) {
  segment(projectKey: $p, key: "beta") { history(after: $after) { nodes { id } } }
}"""
PROFILES = "query($p: String!, $after: String) { profiles(projectKey: $p, after: $after) { nodes { targetingKey } } }"
MEMBERS = """
query($p: String!, $after: String) {
  segment(projectKey: $p, key: "beta") { members(after: $after) { nodes { targetingKey } } }
}"""

# (query, extra variables, the cursor kind the connection makes)
CONNECTIONS = {
    "segments-name": (SEGMENTS, {"order": {"field": "NAME"}}, "NAME"),
    "segments-created": (SEGMENTS, {"order": {"field": "CREATED_AT"}}, "CREATED_AT"),
    "segments-updated-desc": (
        SEGMENTS,
        {"order": {"field": "UPDATED_AT", "direction": "DESC"}},
        "UPDATED_AT",
    ),
    "flags": (FLAGS, {}, "flag"),
    "audit": (AUDIT, {}, "audit"),
    "history": (HISTORY, {}, "audit"),
    "profiles": (PROFILES, {}, "profile"),
    "members": (MEMBERS, {}, "member"),
}


@pytest.fixture
async def beta(gql, project):
    await new_segment(gql, project.key, name="Beta", key="beta")


async def outcome(gql, query: str, variables: dict) -> str:
    """ "ok", or the code of the first error; the response never carries internals."""
    response = await gql.raw(query, variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "Traceback" not in response.text and "asyncpg" not in response.text
    if not body.get("errors"):
        return "ok"
    return body["errors"][0]["extensions"]["code"]


@pytest.mark.parametrize("moment", OUT_OF_RANGE_TIMES)
async def test_a_time_cursor_beyond_the_calendar_is_bad_user_input(gql, project, beta, moment):
    for field in ("CREATED_AT", "UPDATED_AT"):
        for direction in ("ASC", "DESC"):
            order = {"field": field, "direction": direction}
            after = {"p": project.key, "after": cursor(field, moment), "order": order}
            assert await outcome(gql, SEGMENTS, after) == "BAD_USER_INPUT", (field, direction)
            before = {"p": project.key, "before": cursor(field, moment), "last": 2, "order": order}
            assert await outcome(gql, SEGMENTS, before) == "BAD_USER_INPUT", (field, direction)


@pytest.mark.parametrize("name", sorted(CONNECTIONS))
async def test_every_connection_answers_odd_cursors_without_an_internal_error(
    gql, project, beta, name
):
    query, extra, kind = CONNECTIONS[name]
    odd = [
        *(cursor(kind, moment) for moment in OUT_OF_RANGE_TIMES),
        cursor(kind, "9999-12-31T23:59:59.999999+00:00"),
        cursor(kind, "0001-01-01T00:00:00"),
        cursor(kind, 2**80),
        cursor(kind, -(2**63) - 1),
        cursor(kind, 1.5e308),
        cursor(kind, "x" * 10_000),
        cursor(kind, "\U0010ffff"),
        cursor(kind, 1, 2**63),
        cursor(kind, 1, -1),
    ]
    for after in odd:
        got = await outcome(gql, query, {"p": project.key, "after": after, **extra})
        assert got in ("ok", "BAD_USER_INPUT"), (name, base64.urlsafe_b64decode(after)[:80], got)


# Whatever a cursor holds, decoding it either refuses it as bad input or yields values the
# database accepts as the column's type: the driver never sees what it cannot send.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
near_the_ends = st.datetimes(min_value=datetime(9999, 12, 31)) | st.datetimes(
    max_value=datetime(1, 1, 1, 23)
)
instants = (
    st.datetimes(timezones=offsets)
    | near_the_ends.flatmap(
        lambda moment: offsets.map(lambda offset: moment.replace(tzinfo=offset))
    )
).map(datetime.isoformat)
payloads = st.tuples(
    st.sampled_from(["NAME", "CREATED_AT", "audit"]), json_scalars | instants, st.integers()
)
PARSERS = {
    "NAME": (text_value, "text"),
    "CREATED_AT": (time_value, "timestamptz"),
    "audit": (id_value, "bigint"),
}


def test_decoded_cursor_values_are_always_sendable(database_url):
    loop = asyncio.new_event_loop()
    conn = loop.run_until_complete(asyncpg.connect(database_url))

    @settings(max_examples=400, deadline=None)
    @given(payload=payloads)
    def check(payload):
        kind, value, row_id = payload
        parse, sql_type = PARSERS[kind]
        try:
            decoded, decoded_id = decode_cursor(cursor(kind, value, row_id), kind, parse)
        except GraphQLError as error:
            assert error.extensions == {"code": "BAD_USER_INPUT"}
            return
        loop.run_until_complete(
            conn.fetchval(f"SELECT ($1::{sql_type}, $2::bigint)", decoded, decoded_id)
        )

    try:
        check()
    finally:
        loop.run_until_complete(conn.close())
        loop.close()
