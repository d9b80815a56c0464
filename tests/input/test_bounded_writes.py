"""Writes stay bounded: targeting rules per flag and environment, and what an audit event stores."""

import json

import httpx
import orjson
from hypothesis import given
from hypothesis import strategies as st

from api.app import create_app
from api.settings import Settings
from tests.conftest import GraphQLClient
from tests.mutations.helpers import (
    FLAG_RULES,
    audit_log,
    condition,
    new_flag,
    new_segment,
    set_rules,
    state,
)

AUDIT_PAGE = """
query($p: String!) {
  auditLog(projectKey: $p, first: 20) {
    nodes { action entityType changes { field before after } }
  }
}"""
UPDATE = "mutation($i: UpdateSegmentInput!) { updateSegment(input: $i) { segment { version } userErrors { code } } }"


def custom(index: int) -> dict:
    return {"rules": [condition("plan", "EQ", f"p{index}")], "variationKey": "on"}


async def test_set_targeting_rules_refuses_more_than_200_rules_and_keeps_the_old_ones(gql, project):
    flag = await new_flag(gql, project.key)
    assert (await set_rules(gql, flag["id"], [custom(0)]))["userErrors"] == []
    before = await state(gql, project.key)

    payload = await set_rules(gql, flag["id"], [custom(i) for i in range(201)])

    assert payload["flag"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["input", "rules"], "LIMIT_EXCEEDED")
    ]
    assert "200" in payload["userErrors"][0]["message"]
    assert await state(gql, project.key) == before
    assert (await set_rules(gql, flag["id"], [custom(i) for i in range(200)]))["userErrors"] == []
    rules = (await gql(FLAG_RULES, {"p": project.key, "k": flag["key"], "env": "production"}))[
        "flag"
    ]
    assert len(rules["targetingRules"]) == 200


async def test_the_targeting_rule_limit_is_a_setting(database_url, project, monkeypatch):
    monkeypatch.setenv("SEGMENTS_MAX_TARGETING_RULES", "3")
    settings = Settings(database_url=database_url, pool_min_size=1, pool_max_size=4)
    assert settings.max_targeting_rules == 3
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        gql = GraphQLClient(http, project.editor)
        flag = await new_flag(gql, project.key)
        assert (await set_rules(gql, flag["id"], [custom(i) for i in range(3)]))["userErrors"] == []
        payload = await set_rules(gql, flag["id"], [custom(i) for i in range(4)])
        assert [e["code"] for e in payload["userErrors"]] == ["LIMIT_EXCEEDED"]


async def test_audit_events_store_long_lists_as_count_and_sample(gql, project):
    included = [f"user-{i:05d}" for i in range(7500)]
    excluded = [f"blocked-{i:05d}" for i in range(7500)]
    segment = await new_segment(gql, project.key, name="Big", included=included, excluded=excluded)
    for round_ in range(1, 20):  # 20 events, each changing 15,000 targets
        shifted = [f"user-{round_:02d}-{i:05d}" for i in range(7500)]
        data = await gql(
            UPDATE, {"i": {"id": segment["id"], "included": shifted, "name": f"Big {round_}"}}
        )
        assert data["updateSegment"]["userErrors"] == []

    response = await gql.raw(AUDIT_PAGE, {"p": project.key})

    assert response.status_code == 200
    # Before: every event carried both whole lists, about 6 MB for the page.
    assert len(response.content) < 200_000, len(response.content)
    events = response.json()["data"]["auditLog"]["nodes"]
    assert len(events) == 20
    latest = {c["field"]: c for c in events[0]["changes"]}
    assert latest["name"] == {
        "field": "name",
        "before": "Big 18",
        "after": "Big 19",
    }  # small values as they were
    assert latest["included"]["before"] == {
        "count": 7500,
        "sample": [f"user-18-{i:05d}" for i in range(20)],
    }
    assert latest["included"]["after"] == {
        "count": 7500,
        "sample": [f"user-19-{i:05d}" for i in range(20)],
    }
    created = {c["field"]: c for c in events[-1]["changes"]}
    assert created["excluded"]["after"] == {"count": 7500, "sample": excluded[:20]}
    assert created["tags"]["after"] == []


async def test_audit_of_targeting_rules_bounds_the_rule_list_and_keeps_segment_ids(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    flag = await new_flag(gql, project.key)
    rules = [{"segmentId": segment["id"], "variationKey": "on"}] + [custom(i) for i in range(150)]
    assert (await set_rules(gql, flag["id"], rules))["userErrors"] == []

    event = (await audit_log(gql, project.key, first=1))["nodes"][0]

    change = event["changes"][0]
    assert change["field"] == "targetingRules.production" and change["before"] == []
    assert change["after"]["count"] == 151
    assert len(change["after"]["sample"]) == 20
    assert change["after"]["sample"][0]["segmentId"] == segment["id"]  # the global id, as before


# The one audit writer's bound, on generated changes: short lists and scalars are stored as
# given; every longer list becomes its count and a prefix sample; nothing grows without bound.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=60) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=400,
)


def lists_in(value):
    if isinstance(value, list):
        yield value
        for item in value:
            yield from lists_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from lists_in(item)


@given(before=json_values, after=json_values)
def test_an_audit_change_is_stored_whole_when_small_and_bounded_otherwise(before, after):
    from db.audit import CHANGE_BYTES, SAMPLE_SIZE, bounded_change

    change = {"field": "rules", "before": before, "after": after}
    stored = bounded_change(change)
    assert all(len(items) <= SAMPLE_SIZE for items in lists_in(stored))
    if (
        all(len(items) <= SAMPLE_SIZE for items in lists_in(change))
        and len(orjson.dumps(change)) <= CHANGE_BYTES
    ):
        assert stored == change
    for key in ("before", "after"):
        if isinstance(change[key], list) and len(change[key]) > SAMPLE_SIZE:
            assert stored[key]["count"] == len(change[key])
    # Lists collapse to counts at worst, so only dict keys and scalars remain.
    assert len(orjson.dumps(stored)) <= max(CHANGE_BYTES, len(json.dumps(change)))


async def test_events_stored_before_the_bound_are_read_bounded(gql, project, database_url):
    from db.pool import connect

    conn = await connect(database_url)
    try:
        await conn.execute(
            """
            INSERT INTO audit_events (project_id, entity_type, entity_id, action, actor, changes)
            VALUES ($1, 'segment', 1, 'UPDATED', 'old', $2)
            """,
            project.id,
            [
                {"field": "included", "before": [], "after": [f"u{i}" for i in range(15_000)]},
                {"field": "name", "before": "A", "after": "B"},
            ],
        )
    finally:
        await conn.close()
    event = (await audit_log(gql, project.key, first=1))["nodes"][0]
    assert event["changes"] == [
        {
            "field": "included",
            "before": [],
            "after": {"count": 15_000, "sample": [f"u{i}" for i in range(20)]},
        },
        {"field": "name", "before": "A", "after": "B"},
    ]
