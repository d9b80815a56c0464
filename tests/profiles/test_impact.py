"""Who a change lets in and out (DESIGN §14 "Impact"): segmentChangeImpact over GraphQL.

Every impact is checked twice: against the answer worked out by hand for a small set of
profiles, and against the evaluator, by asking evaluateSegment for every profile before and
after the update is really applied (membership is evaluation, DESIGN §11)."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from api.settings import Settings
from core.impact import impact_of
from db import segments as db_segments
from db.members import ImpactCounts, count_impact, member_page
from db.pool import connect
from schema.ids import decode_id_of
from tests.conftest import GraphQLClient, StatementCounter
from tests.mutations.helpers import (
    STATE,
    condition,
    delete_segment,
    new_flag,
    new_segment,
    ref,
    set_rules,
    update_segment,
)
from tests.mutations.test_big_segments import new_big, update_targets
from tests.profiles.test_members_api import upsert

pytestmark = pytest.mark.asyncio(loop_scope="module")

IMPACT = """
query($i: UpdateSegmentInput!, $n: Int = 10) {
  segmentChangeImpact(input: $i) {
    impact {
      memberCountBefore memberCountAfter entering leaving
      sampleEntering(first: $n) { targetingKey attributes }
      sampleLeaving(first: $n) { targetingKey }
      affectedFlags { flag { key } environment { key } ruleCount }
    }
    userErrors { field code message }
  }
}"""

PEOPLE: dict[str, dict[str, Any]] = {
    "ann": {"country": "DE", "plan": "pro", "email": "ann@corp.io"},
    "ben": {"country": "DE", "plan": "free"},
    "cat": {"country": "US", "plan": "pro", "email": "cat@home.net"},
    "dan": {"country": "FR", "plan": "enterprise", "email": "dan@corp.io"},
    "eve": {"country": "US", "plan": "free", "email": "eve@corp.io"},
    "fay": {"country": "DE", "plan": "pro"},
    "gus": {},
    "42": {"plan": "free"},
}
GERMANS = [condition("country", "EQ", "DE")]  # ann, ben, fay


async def impact(
    gql: GraphQLClient, segment_id: str, token: str | None = None, **change: Any
) -> dict:
    n = change.pop("n", 10)
    data = await gql(IMPACT, {"i": {"id": segment_id, **change}, "n": n}, token=token)
    return data["segmentChangeImpact"]


def summary(payload: dict) -> tuple[int, int, int, int, list[str], list[str]]:
    assert payload["userErrors"] == [], payload["userErrors"]
    found = payload["impact"]
    return (
        found["memberCountBefore"],
        found["memberCountAfter"],
        found["entering"],
        found["leaving"],
        [p["targetingKey"] for p in found["sampleEntering"]],
        [p["targetingKey"] for p in found["sampleLeaving"]],
    )


async def evaluated(gql: GraphQLClient, project_key: str, key: str) -> set[str]:
    """The stored profiles evaluateSegment matches, asked one by one (one request)."""
    names = sorted(PEOPLE)
    fields = " ".join(
        f"p{i}: evaluateSegment(projectKey: $p, key: $k, context: $c{i}) {{ matched }}"
        for i in range(len(names))
    )
    params = "".join(f", $c{i}: JSON!" for i in range(len(names)))
    variables: dict[str, Any] = {"p": project_key, "k": key}
    for i, name in enumerate(names):
        variables[f"c{i}"] = {"targetingKey": name, **PEOPLE[name]}
    data = await gql(f"query($p: String!, $k: String!{params}) {{ {fields} }}", variables)
    return {name for i, name in enumerate(names) if data[f"p{i}"]["matched"]}


async def agrees_with_evaluator(
    gql: GraphQLClient,
    project_key: str,
    segment: dict,
    payload: dict,
    change: dict,
    first: int = 10,
) -> None:
    """The impact equals what the evaluator says of every profile before and after the
    update is applied (samples: the first `first` keys); applies it."""
    before = await evaluated(gql, project_key, segment["key"])
    applied = await update_segment(gql, segment["id"], **change)
    assert applied["userErrors"] == []
    after = await evaluated(gql, project_key, applied["segment"]["key"])
    assert summary(payload) == (
        len(before),
        len(after),
        len(after - before),
        len(before - after),
        sorted(after - before)[:first],
        sorted(before - after)[:first],
    )


@pytest_asyncio.fixture(loop_scope="module")
async def people(gql, project) -> dict[str, dict[str, Any]]:
    await upsert(gql, project.key, PEOPLE)
    return PEOPLE


async def test_rule_change_counts_and_samples(gql, project, people):
    segment = await new_segment(gql, project.key, name="Germans", rules=GERMANS)
    change = {"rules": [condition("plan", "EQ", "pro")]}  # ann, cat, fay
    payload = await impact(gql, segment["id"], **change)
    assert summary(payload) == (3, 3, 1, 1, ["cat"], ["ben"])
    assert payload["impact"]["sampleEntering"][0]["attributes"] == PEOPLE["cat"]
    assert payload["impact"]["affectedFlags"] == []
    await agrees_with_evaluator(gql, project.key, segment, payload, change)


async def test_samples_are_in_key_order_and_bounded_by_first(gql, project, people):
    segment = await new_segment(
        gql, project.key, name="Nobody", rules=[condition("plan", "EQ", "x")]
    )
    payload = await impact(gql, segment["id"], force=True, n=3)
    assert summary(payload) == (0, 8, 8, 0, ["42", "ann", "ben"], [])
    assert summary(await impact(gql, segment["id"], force=True, n=0))[4] == []
    for bad in (-1, 101):
        errors = await gql.errors(IMPACT, {"i": {"id": segment["id"], "force": True}, "n": bad})
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    await agrees_with_evaluator(gql, project.key, segment, payload, {"force": True}, first=3)


async def test_force_off_and_rules_the_database_cannot_decide(gql, project, people):
    # \p{Ll} is beyond what PostgreSQL reads like RE2: the evaluator decides those rows.
    segment = await new_segment(gql, project.key, name="Everyone", force=True)
    change = {"force": False, "rules": [condition("email", "REGEX", "^\\p{Ll}{3}@corp")]}
    payload = await impact(gql, segment["id"], **change)
    # ann, dan and eve have a corp address.
    assert summary(payload) == (8, 3, 0, 5, [], ["42", "ben", "cat", "fay", "gus"])
    await agrees_with_evaluator(gql, project.key, segment, payload, change)


async def test_included_and_excluded_change(gql, project, people):
    segment = await new_segment(gql, project.key, name="Germans", rules=GERMANS, excluded=["fay"])
    change = {"included": ["gus", "ann"], "excluded": ["ben"]}
    payload = await impact(gql, segment["id"], **change)
    # Before: ann, ben (fay excluded). After: ann, fay, gus (ben excluded, gus included).
    assert summary(payload) == (2, 3, 2, 1, ["fay", "gus"], ["ben"])
    await agrees_with_evaluator(gql, project.key, segment, payload, change)


async def test_references_and_affected_flags(gql, project, people):
    pros = await new_segment(gql, project.key, name="Pros", rules=[condition("plan", "EQ", "pro")])
    german_pros = await new_segment(
        gql, project.key, name="German pros", rules=[*GERMANS, ref("pros")]
    )
    not_pros = await new_segment(
        gql, project.key, name="Not pros", rules=[ref("pros", negate=True)]
    )
    direct = await new_flag(gql, project.key, "direct")
    through = await new_flag(gql, project.key, "through")
    for flag, segment in ((direct, pros), (through, german_pros)):
        assert (
            await set_rules(gql, flag["id"], [{"segmentId": segment["id"], "variationKey": "on"}])
        )["userErrors"] == []

    # Changing "pros" moves the segments that reference it too; the impact is of "pros".
    change = {"rules": [condition("plan", "IN", ["pro", "enterprise"])]}
    payload = await impact(gql, pros["id"], **change)
    assert summary(payload) == (3, 4, 1, 0, ["dan"], [])
    assert payload["impact"]["affectedFlags"] == [
        {"flag": {"key": "direct"}, "environment": {"key": "production"}, "ruleCount": 1},
        {"flag": {"key": "through"}, "environment": {"key": "production"}, "ruleCount": 1},
    ]

    # A segment whose rules reference another: before and after both inline it.
    not_pros_change = {"rules": [ref("pros", negate=True), condition("country", "EQ", "US")]}
    payload = await impact(gql, not_pros["id"], **not_pros_change)
    # Not pro: ben, dan, eve, gus, 42; of them in the US: eve.
    assert summary(payload) == (5, 1, 0, 4, [], ["42", "ben", "dan", "gus"])
    assert payload["impact"]["affectedFlags"] == []
    await agrees_with_evaluator(gql, project.key, not_pros, payload, not_pros_change)

    # German pros, after pros changed: ann and fay, and no German enterprise customer.
    payload = await impact(gql, german_pros["id"], rules=[ref("pros")])
    assert summary(payload) == (2, 3, 1, 0, ["cat"], [])
    assert [f["flag"]["key"] for f in payload["impact"]["affectedFlags"]] == ["through"]
    await agrees_with_evaluator(
        gql, project.key, pros, await impact(gql, pros["id"], **change), change
    )
    payload = await impact(gql, german_pros["id"], rules=[ref("pros")])
    assert summary(payload) == (2, 4, 2, 0, ["cat", "dan"], [])


async def test_big_segment(gql, project, people):
    big = await new_big(gql, project.key, name="Customers")
    lists = {"addIncluded": ["ben", "42"], "addExcluded": ["cat"]}
    assert (await update_targets(gql, big["id"], **lists))["userErrors"] == []
    change = {"rules": [condition("plan", "EQ", "pro")]}
    payload = await impact(gql, big["id"], **change)
    # Before: the included ben and 42. After: also ann and fay (cat is excluded).
    assert summary(payload) == (2, 4, 2, 0, ["ann", "fay"], [])
    await agrees_with_evaluator(gql, project.key, big, payload, change)
    # A segment referencing the big one, changed to stop doing so.
    fans = await new_segment(gql, project.key, name="Fans", rules=[ref("customers")])
    payload = await impact(gql, fans["id"], rules=[condition("country", "EQ", "US")])
    # Cat is excluded from the big segment, not from fans: in the US, cat enters too.
    assert summary(payload) == (4, 2, 2, 4, ["cat", "eve"], ["42", "ann", "ben", "fay"])


async def test_refused_like_update_segment_and_nothing_written(gql, project, other_project, people):
    used = await new_segment(gql, project.key, name="Used", key="used")
    segment = await new_segment(gql, project.key, name="Germans", rules=GERMANS)
    loop = await new_segment(gql, project.key, name="Loop", rules=[ref("germans")])
    big = await new_big(gql, project.key, name="Customers")
    gone = await new_segment(gql, project.key, name="Gone")
    assert (await delete_segment(gql, gone["id"]))["userErrors"] == []
    foreign = await new_segment(GraphQLClient(gql.http, other_project.editor), other_project.key)
    cases = [
        (segment["id"], {"rules": [condition("plan", "GT", "pro")]}),
        (segment["id"], {"rules": [ref("nowhere")], "name": " "}),
        (segment["id"], {"rules": [ref("loop")]}),
        (segment["id"], {"key": used["key"]}),
        (segment["id"], {"expectedVersion": 7, "force": True}),
        (segment["id"], {"logicalOp": None}),
        (segment["id"], {"included": ["x"] * 15_001}),
        (big["id"], {"included": ["ann"]}),
        (gone["id"], {"force": True}),
        (foreign["id"], {"force": True}),
        ("not-an-id", {"force": True}),
    ]
    state = await gql(STATE, {"p": project.key})
    for segment_id, change in cases:
        payload = await impact(gql, segment_id, **change)
        assert payload["impact"] is None
        assert payload["userErrors"], change
        # Asked with the viewer's token; updateSegment with the editor's.
        as_viewer = await impact(gql, segment_id, token=project.viewer, **change)
        assert as_viewer == payload
        assert await gql(STATE, {"p": project.key}) == state
        refused = await update_segment(gql, segment_id, **change)
        assert refused["userErrors"] == payload["userErrors"], change
    assert loop["key"] == "loop"
    # And an impact that is answered writes nothing either.
    assert summary(await impact(gql, segment["id"], token=project.viewer, force=True))[:4] == (
        3,
        8,
        5,
        0,
    )
    assert await gql(STATE, {"p": project.key}) == state


async def test_change_request_entry_point_and_delete(gql, project, database_url, people):
    """What a change request shows: core.impact.impact_of with the segment row and the
    proposed column values, or delete=True (after a delete nobody is a member)."""
    segment = await new_segment(gql, project.key, name="Germans", rules=GERMANS)
    conn = await connect(database_url)
    try:
        [row] = await db_segments.segments_by_id(
            conn, project.id, [decode_id_of(segment["id"], "Segment")]
        )
        deleting = await impact_of(conn, project.id, row, None, delete=True)
        assert deleting.entering() is None
        assert await count_impact(conn, project.id, deleting.before, deleting.after) == (
            ImpactCounts(before=3, after=0, entering=0, leaving=3)
        )
        leaving = await member_page(conn, project.id, deleting.leaving(), None, 10)
        assert [r["targeting_key"] for r in leaving] == ["ann", "ben", "fay"]

        proposed = await impact_of(conn, project.id, row, {"force": True})
        assert await count_impact(conn, project.id, proposed.before, proposed.after) == (
            ImpactCounts(before=3, after=8, entering=5, leaving=0)
        )
        entering = proposed.entering()
        assert entering is not None
        page = await member_page(conn, project.id, entering, None, 2)
        assert [r["targeting_key"] for r in page] == ["42", "cat", "dan"]  # one more than asked
    finally:
        await conn.close()


@pytest_asyncio.fixture(loop_scope="module")
async def counted(database_url) -> AsyncIterator[tuple[StatementCounter, httpx.AsyncClient]]:
    """An app of its own over the module's database, whose statements a test counts."""
    app = create_app(Settings(database_url=database_url, pool_min_size=1, pool_max_size=2))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield StatementCounter(app), http


async def test_statements_are_few_and_fixed(gql, project, people, counted):
    statements, http = counted
    await new_segment(gql, project.key, name="Pros", rules=[condition("plan", "EQ", "pro")])
    segment = await new_segment(gql, project.key, name="Germans", rules=[*GERMANS, ref("pros")])
    flag = await new_flag(gql, project.key, "through")
    await set_rules(gql, flag["id"], [{"segmentId": segment["id"], "variationKey": "on"}])
    client = GraphQLClient(http, project.viewer)
    change = {"rules": [ref("pros", negate=True)]}
    await impact(client, segment["id"], **change)  # warm: token, connection, type introspection
    async with statements.block() as s:
        payload = await impact(client, segment["id"], **change)
    # Not pro: ben, dan, eve, gus, 42; German pros: ann, fay.
    assert summary(payload) == (2, 5, 5, 2, ["42", "ben", "dan", "eve", "gus"], ["ann", "fay"])
    # Validation (the reference resolved, the row, the reference graph), the closure, one
    # scan for the four counts, one member page per sample, direct and indirect usage.
    assert s.count <= 9, s.count


PROPOSE_WITH_IMPACT = """
mutation($i: ProposeSegmentChangeInput!) {
  proposeSegmentChange(input: $i) {
    changeRequest {
      id state
      impact {
        memberCountBefore memberCountAfter entering leaving
        sampleEntering { targetingKey } sampleLeaving { targetingKey }
        affectedFlags { flag { key } }
      }
    }
    userErrors { field code message }
  }
}"""
WITHDRAW = """
mutation($i: WithdrawChangeRequestInput!) {
  withdrawChangeRequest(input: $i) { changeRequest { state impact { entering } } userErrors { code } }
}"""


async def test_change_request_shows_its_impact_live(gql, project, people):
    segment = await new_segment(gql, project.key, name="Germans", rules=GERMANS)
    change = {"rules": [condition("plan", "EQ", "pro")]}
    data = await gql(PROPOSE_WITH_IMPACT, {"i": {"update": {"id": segment["id"], **change}}})
    payload = data["proposeSegmentChange"]
    assert payload["userErrors"] == []
    request = payload["changeRequest"]
    assert summary({"impact": request["impact"], "userErrors": []}) == (
        3,
        3,
        1,
        1,
        ["cat"],
        ["ben"],
    )
    # Against the current version: the segment moved on (fay excluded) since the proposal.
    assert (await update_segment(gql, segment["id"], excluded=["fay"]))["userErrors"] == []
    data = await gql(
        "query($id: ID!) { node(id: $id) { ... on ChangeRequest { impact { memberCountBefore"
        " memberCountAfter entering leaving } } } }",
        {"id": request["id"]},
    )
    assert data["node"]["impact"] == {
        "memberCountBefore": 2,
        "memberCountAfter": 2,
        "entering": 1,
        "leaving": 1,
    }
    withdrawn = (await gql(WITHDRAW, {"i": {"id": request["id"]}}))["withdrawChangeRequest"]
    assert withdrawn["changeRequest"] == {"state": "WITHDRAWN", "impact": None}

    deleting = await gql(PROPOSE_WITH_IMPACT, {"i": {"delete": {"id": segment["id"]}}})
    impact_of_delete = deleting["proposeSegmentChange"]["changeRequest"]["impact"]
    assert summary({"impact": impact_of_delete, "userErrors": []}) == (
        2,
        0,
        0,
        2,
        [],
        ["ann", "ben"],
    )
