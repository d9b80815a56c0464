"""Change requests (DESIGN §14): propose an update or delete validated like the write, review
(no self-review, one reject rejects, N distinct approvals approve), apply by the author or an
admin (not gated by requireApproval), withdraw; conflicts and rebase; every step audited."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from schema.ids import decode_id
from tests.mutations.helpers import (
    AUDIT_LOG,
    CHANGE_REQUEST,
    admin_token,
    apply_request,
    attach,
    change_request,
    condition,
    delete_segment,
    editor_token,
    errors_of,
    new_flag,
    new_segment,
    propose,
    ref,
    review,
    segment_by_key,
    sql_fetch,
    state,
    update_segment,
    withdraw,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEGMENT_REQUESTS = """
query($p: String!, $k: String!, $state: ChangeRequestState, $first: Int, $after: String) {
  segment(projectKey: $p, key: $k) {
    changeRequests(state: $state, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      nodes { id state }
    }
  }
}"""

PROJECT_REQUESTS = f"""
query($p: String!, $state: ChangeRequestState) {{
  changeRequests(projectKey: $p, state: $state) {{ totalCount nodes {{ {CHANGE_REQUEST} }} }}
}}"""

REVISION = """
query($id: ID!, $v: Int!) {
  node(id: $id) { ... on Segment { revision(version: $v) { version actor changes { field } } } }
}"""

REQUIRE = """
mutation($p: String!, $approve: Boolean, $n: Int) {
  updateProjectSettings(input: {projectKey: $p, requireApproval: $approve, requiredApprovals: $n}) {
    userErrors { code }
  }
}"""


@pytest_asyncio.fixture(loop_scope="module")
async def keys(project, database_url):
    """A second editor (the reviewer) and an admin key."""
    return {
        "reviewer": await editor_token(database_url, project, "reviewer"),
        "second": await editor_token(database_url, project, "second reviewer"),
        "admin": await admin_token(database_url, project),
    }


async def proposed(gql, segment_id, **fields):
    """An OPEN request to update the segment; fails the test on user errors."""
    payload = await propose(gql, update={"id": segment_id, **fields})
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["changeRequest"]


async def approved(gql, keys, segment_id, **fields):
    request = await proposed(gql, segment_id, **fields)
    payload = await review(gql, request["id"], "APPROVE", token=keys["reviewer"])
    assert payload["changeRequest"]["state"] == "APPROVED", payload
    return payload["changeRequest"]


async def test_a_proposal_opens_a_request_against_the_current_version_and_writes_nothing_else(
    gql, project
):
    segment = await new_segment(gql, project.key, name="Beta", tags=["a"])
    request = await proposed(gql, segment["id"], name="Beta 2", tags=["a"])
    assert request["state"] == "OPEN"
    assert request["author"] == f"{project.key} editor"
    assert request["baseVersion"] == 1 and request["deletes"] is False
    # Only what the proposal changes, in revision snapshot shapes.
    assert request["changes"] == [{"field": "name", "before": "Beta", "after": "Beta 2"}]
    assert request["segment"] == {
        "id": segment["id"],
        "key": "beta",
        "name": "Beta",
        "version": 1,
        "deleted": False,
    }
    assert (await segment_by_key(gql, project.key, "beta"))["version"] == 1
    events = (await gql(AUDIT_LOG, {"p": project.key, "first": 1}))["auditLog"]["nodes"]
    assert events[0]["entityType"] == "changeRequest" and events[0]["action"] == "CREATED"
    assert events[0]["entityId"] == request["id"]


async def test_a_proposal_is_refused_exactly_like_the_write_it_proposes(gql, project):
    segment = await new_segment(gql, project.key, name="Target")
    await new_segment(gql, project.key, name="Taken")
    flag = await new_flag(gql, project.key)
    used = await new_segment(gql, project.key, name="Used")
    await attach(gql, flag["id"], used["id"])
    before = await state(gql, project.key)
    cases = [
        (
            {"update": {"id": segment["id"], "key": "no spaces"}},
            [(("input", "update", "key"), "INVALID_KEY")],
        ),
        (
            {"update": {"id": segment["id"], "key": "taken"}},
            [(("input", "update", "key"), "KEY_TAKEN")],
        ),
        (
            {"update": {"id": segment["id"], "rules": [condition("a..b", "EXISTS")]}},
            [(("input", "update", "rules", "0", "condition", "attribute"), "INVALID_RULE")],
        ),
        (
            {"update": {"id": segment["id"], "name": "X", "expectedVersion": 7}},
            [(("input", "update", "expectedVersion"), "VERSION_CONFLICT")],
        ),
        ({"update": {"id": "nope", "name": "X"}}, [(("input", "update", "id"), "NOT_FOUND")]),
        (
            {"update": {"id": segment["id"], "name": "Target"}},
            [(("input", "update"), "INVALID_INPUT")],
        ),
        ({"delete": {"id": used["id"]}}, [(("input", "delete", "id"), "SEGMENT_IN_USE")]),
        (
            {"update": {"id": segment["id"]}, "delete": {"id": segment["id"]}},
            [(("input",), "INVALID_INPUT")],
        ),
        ({}, [(("input",), "INVALID_INPUT")]),
        (
            {"update": {"id": segment["id"], "name": "Y"}, "note": "n" * 1001},
            [(("input", "note"), "INVALID_INPUT")],
        ),
    ]
    for input, expected in cases:
        payload = await propose(gql, **input)
        assert payload["changeRequest"] is None
        got = errors_of(payload)
        assert got[:1] == expected, (input, payload["userErrors"])
    assert await state(gql, project.key) == before
    listed = await gql(PROJECT_REQUESTS, {"p": project.key})
    assert listed["changeRequests"]["totalCount"] == 0


async def test_the_author_cannot_review_and_one_reject_rejects(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Reviewed")
    request = await proposed(gql, segment["id"], name="Reviewed 2")
    assert errors_of(await review(gql, request["id"], "APPROVE")) == [
        (("input", "id"), "SELF_REVIEW")
    ]
    rejected = await review(gql, request["id"], "REJECT", token=keys["reviewer"], comment="no")
    assert rejected["changeRequest"]["state"] == "REJECTED"
    assert rejected["changeRequest"]["reviews"] == [
        {"reviewer": "reviewer", "decision": "REJECT", "comment": "no"}
    ]
    again = await review(gql, request["id"], "APPROVE", token=keys["second"])
    assert errors_of(again) == [(("input", "id"), "INVALID_STATE")]
    assert errors_of(await apply_request(gql, request["id"])) == [
        (("input", "id"), "INVALID_STATE")
    ]


async def test_required_approvals_come_from_distinct_reviewers(gql, project, keys):
    data = await gql(REQUIRE, {"p": project.key, "n": 2}, token=keys["admin"])
    assert data["updateProjectSettings"]["userErrors"] == []
    segment = await new_segment(gql, project.key, name="Two")
    request = await proposed(gql, segment["id"], name="Two 2")
    first = await review(gql, request["id"], "APPROVE", token=keys["reviewer"])
    # The same reviewer approving again replaces their review: still one approval.
    twice = await review(gql, request["id"], "APPROVE", token=keys["reviewer"], comment="sure")
    assert first["changeRequest"]["state"] == twice["changeRequest"]["state"] == "OPEN"
    assert twice["changeRequest"]["reviews"] == [
        {"reviewer": "reviewer", "decision": "APPROVE", "comment": "sure"}
    ]
    assert errors_of(await apply_request(gql, request["id"])) == [
        (("input", "id"), "INVALID_STATE")
    ]
    done = await review(gql, request["id"], "APPROVE", token=keys["second"])
    assert done["changeRequest"]["state"] == "APPROVED"
    assert [r["reviewer"] for r in done["changeRequest"]["reviews"]] == [
        "reviewer",
        "second reviewer",
    ]


async def test_applying_writes_a_normal_version_revision_and_audit_events(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Applied")
    request = await approved(gql, keys, segment["id"], name="Applied 2")
    payload = await apply_request(gql, request["id"])
    assert payload["userErrors"] == []
    done = payload["changeRequest"]
    assert done["state"] == "APPLIED" and done["appliedVersion"] == 2
    assert done["segment"]["name"] == "Applied 2" and done["segment"]["version"] == 2
    revision = (await gql(REVISION, {"id": segment["id"], "v": 2}))["node"]["revision"]
    assert revision == {
        "version": 2,
        "actor": f"{project.key} editor",
        "changes": [{"field": "name"}],
    }
    assert errors_of(await apply_request(gql, request["id"])) == [
        (("input", "id"), "INVALID_STATE")
    ]
    events = (await gql(AUDIT_LOG, {"p": project.key, "first": 4}))["auditLog"]["nodes"]
    assert [(e["entityType"], e["action"]) for e in events] == [
        ("changeRequest", "UPDATED"),  # applied
        ("segment", "UPDATED"),
        ("changeRequest", "UPDATED"),  # approved
        ("changeRequest", "CREATED"),
    ]
    assert {"field": "state", "before": "APPROVED", "after": "APPLIED"} in events[0]["changes"]
    assert {"field": "appliedVersion", "before": None, "after": 2} in events[0]["changes"]


async def test_applying_is_not_gated_by_require_approval(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Gated")
    data = await gql(REQUIRE, {"p": project.key, "approve": True}, token=keys["admin"])
    assert data["updateProjectSettings"]["userErrors"] == []
    assert errors_of(await update_segment(gql, segment["id"], name="Direct")) == [
        (None, "APPROVAL_REQUIRED")
    ]
    request = await approved(gql, keys, segment["id"], name="Gated 2")
    payload = await apply_request(gql, request["id"])
    assert payload["userErrors"] == [] and payload["changeRequest"]["state"] == "APPLIED"
    history = await gql(
        """query($id: ID!) { node(id: $id) { ... on Segment { history(first: 1) {
             nodes { changes { field } } } } } }""",
        {"id": segment["id"]},
    )
    # An applied request is no admin bypass: the event records no approval field.
    assert history["node"]["history"]["nodes"][0]["changes"] == [{"field": "name"}]


APPLY_CODES = """mutation($i: ApplyChangeRequestInput!) {
  applyChangeRequest(input: $i) { userErrors { code } } }"""
WITHDRAW_CODES = """mutation($i: WithdrawChangeRequestInput!) {
  withdrawChangeRequest(input: $i) { userErrors { code } } }"""


async def test_only_the_author_or_an_admin_applies_or_withdraws(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Owned")
    request = await approved(gql, keys, segment["id"], name="Owned 2")
    for document in (APPLY_CODES, WITHDRAW_CODES):
        errors = await gql.errors(document, {"i": {"id": request["id"]}}, token=keys["reviewer"])
        assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"]
    assert (await change_request(gql, request["id"]))["state"] == "APPROVED"
    payload = await apply_request(gql, request["id"], token=keys["admin"])
    assert payload["changeRequest"]["state"] == "APPLIED"


async def test_a_viewer_is_forbidden_every_change_request_mutation(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Viewed")
    request = await proposed(gql, segment["id"], name="Viewed 2")
    documents = {
        "proposeSegmentChange": (
            "mutation($i: ProposeSegmentChangeInput!) { proposeSegmentChange(input: $i) { userErrors { code } } }",
            {"update": {"id": segment["id"], "name": "V"}},
        ),
        "reviewChangeRequest": (
            "mutation($i: ReviewChangeRequestInput!) { reviewChangeRequest(input: $i) { userErrors { code } } }",
            {"id": request["id"], "decision": "APPROVE"},
        ),
        "applyChangeRequest": (
            "mutation($i: ApplyChangeRequestInput!) { applyChangeRequest(input: $i) { userErrors { code } } }",
            {"id": request["id"]},
        ),
        "withdrawChangeRequest": (
            "mutation($i: WithdrawChangeRequestInput!) { withdrawChangeRequest(input: $i) { userErrors { code } } }",
            {"id": request["id"]},
        ),
    }
    before = await state(gql, project.key)
    for name, (document, variables) in documents.items():
        errors = await gql.errors(document, {"i": variables}, token=project.viewer)
        assert [(e["extensions"]["code"], e["path"]) for e in errors] == [("FORBIDDEN", [name])]
    assert await state(gql, project.key) == before
    assert (await change_request(gql, request["id"]))["state"] == "OPEN"


async def test_another_projects_request_is_not_found(gql, project, other_project, keys):
    segment = await new_segment(gql, project.key, name="Private")
    request = await proposed(gql, segment["id"], name="Private 2")
    other = other_project.editor
    assert await change_request(gql, request["id"], token=other) is None
    assert errors_of(await review(gql, request["id"], "REJECT", token=other)) == [
        (("input", "id"), "NOT_FOUND")
    ]
    assert errors_of(await apply_request(gql, request["id"], token=other)) == [
        (("input", "id"), "NOT_FOUND")
    ]
    assert errors_of(await withdraw(gql, request["id"], token=other)) == [
        (("input", "id"), "NOT_FOUND")
    ]
    assert errors_of(
        await propose(gql, token=other, update={"id": segment["id"], "name": "Mine"})
    ) == [(("input", "update", "id"), "NOT_FOUND")]
    listed = await gql(PROJECT_REQUESTS, {"p": project.key}, token=other)
    assert listed["changeRequests"]["totalCount"] == 0
    assert (await change_request(gql, request["id"]))["state"] == "OPEN"


async def test_a_base_moved_on_in_other_fields_is_rebased_and_keeps_the_other_change(
    gql, project, keys
):
    segment = await new_segment(gql, project.key, name="Rebased", tags=["old"])
    request = await approved(gql, keys, segment["id"], name="Rebased 2")
    moved = await update_segment(gql, segment["id"], tags=["new"], description="meanwhile")
    assert moved["segment"]["version"] == 2
    payload = await apply_request(gql, request["id"])
    assert payload["userErrors"] == []
    assert payload["changeRequest"]["state"] == "APPLIED"
    assert payload["changeRequest"]["appliedVersion"] == 3
    now = await segment_by_key(gql, project.key, "rebased")
    assert (now["name"], now["tags"], now["description"]) == ("Rebased 2", ["new"], "meanwhile")


async def test_a_base_moved_on_in_the_same_field_is_a_conflict_and_writes_nothing(
    gql, project, keys, database_url
):
    segment = await new_segment(gql, project.key, name="Clash")
    request = await approved(gql, keys, segment["id"], name="Clash mine", tags=["t"])
    await update_segment(gql, segment["id"], name="Clash theirs")
    before = await segment_by_key(gql, project.key, "clash")
    revisions = "SELECT count(*) AS n FROM segment_revisions WHERE project_id = $1"
    revisions_before = (await sql_fetch(database_url, revisions, project.id))[0]["n"]
    payload = await apply_request(gql, request["id"])
    assert errors_of(payload) == [(("input", "id"), "CHANGE_CONFLICT")]
    assert "name" in payload["userErrors"][0]["message"]
    shown = payload["changeRequest"]
    assert shown["state"] == "CONFLICT" and shown["appliedVersion"] is None
    assert shown["conflict"] == "Changed since version 1: name."
    assert await segment_by_key(gql, project.key, "clash") == before
    assert (await sql_fetch(database_url, revisions, project.id))[0]["n"] == revisions_before
    # A conflicting request can only be withdrawn.
    assert errors_of(await apply_request(gql, request["id"])) == [
        (("input", "id"), "INVALID_STATE")
    ]
    assert (await withdraw(gql, request["id"]))["changeRequest"]["state"] == "WITHDRAWN"


async def test_a_delete_request_deletes_the_segment(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Doomed")
    payload = await propose(gql, delete={"id": segment["id"]}, note="unused")
    request = payload["changeRequest"]
    assert request["deletes"] is True and request["note"] == "unused"
    assert request["changes"] == [{"field": "deleted", "before": False, "after": True}]
    await review(gql, request["id"], "APPROVE", token=keys["reviewer"])
    done = await apply_request(gql, request["id"])
    assert done["changeRequest"]["state"] == "APPLIED"
    assert done["changeRequest"]["segment"]["deleted"] is True
    assert await segment_by_key(gql, project.key, "doomed") is None


async def test_a_request_is_refused_by_todays_state_and_stays_approved(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Later")
    request = await propose(gql, delete={"id": segment["id"]})
    request = await review(gql, request["changeRequest"]["id"], "APPROVE", token=keys["reviewer"])
    flag = await new_flag(gql, project.key, key="late-flag")
    await attach(gql, flag["id"], segment["id"])
    payload = await apply_request(gql, request["changeRequest"]["id"])
    assert errors_of(payload) == [(("input", "id"), "SEGMENT_IN_USE")]
    assert (await change_request(gql, request["changeRequest"]["id"]))["state"] == "APPROVED"
    assert (await segment_by_key(gql, project.key, "later"))["deleted"] is False


REFERENCES_AND_IMPACT = """
query($id: ID!, $request: ID!) {
  segment: node(id: $id) {
    ... on Segment { rules { ... on SegmentMatch { segment { id key } negate } } }
  }
  request: node(id: $request) { ... on ChangeRequest { state impact { memberCountAfter } } }
}"""


async def test_a_request_references_the_segments_it_proposed_after_they_are_renamed(
    gql, project, keys
):
    staff = await new_segment(gql, project.key, name="Staff", key="staff")
    segment = await new_segment(gql, project.key, name="Not staff")
    request = await approved(gql, keys, segment["id"], rules=[ref("staff", True)])
    await update_segment(gql, staff["id"], key="former-staff")
    # Another segment takes the freed key: the request still means the one it named.
    await new_segment(gql, project.key, name="New staff", key="staff")
    found = await gql(REFERENCES_AND_IMPACT, {"id": segment["id"], "request": request["id"]})
    assert found["request"]["impact"] is not None  # today's state would accept it
    done = await apply_request(gql, request["id"])
    assert done["userErrors"] == [] and done["changeRequest"]["state"] == "APPLIED"
    found = await gql(REFERENCES_AND_IMPACT, {"id": segment["id"], "request": request["id"]})
    rules = [r for r in found["segment"]["rules"] if r]
    assert rules == [{"segment": {"id": staff["id"], "key": "former-staff"}, "negate": True}]


async def test_a_request_referencing_a_segment_deleted_since_is_refused_and_stays_approved(
    gql, project, keys
):
    staff = await new_segment(gql, project.key, name="Staff", key="staff")
    segment = await new_segment(gql, project.key, name="Not staff")
    request = await approved(gql, keys, segment["id"], rules=[ref("staff")])
    await delete_segment(gql, staff["id"])
    await new_segment(gql, project.key, name="New staff", key="staff")
    found = await gql(REFERENCES_AND_IMPACT, {"id": segment["id"], "request": request["id"]})
    assert found["request"] == {"state": "APPROVED", "impact": None}
    before = await state(gql, project.key)
    payload = await apply_request(gql, request["id"])
    assert errors_of(payload) == [(("input", "id"), "NOT_FOUND")]
    assert "staff" in payload["userErrors"][0]["message"]
    assert await state(gql, project.key) == before
    assert (await change_request(gql, request["id"]))["state"] == "APPROVED"


async def test_scheduling_and_withdrawing(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Scheduled")
    request = await approved(gql, keys, segment["id"], name="Scheduled 2")
    too_far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    assert errors_of(await apply_request(gql, request["id"], applyAt=too_far)) == [
        (("input", "applyAt"), "INVALID_INPUT")
    ]
    later = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    payload = await apply_request(gql, request["id"], applyAt=later.isoformat())
    shown = payload["changeRequest"]
    assert shown["state"] == "SCHEDULED"
    assert datetime.fromisoformat(shown["applyAt"]) == later
    assert errors_of(await apply_request(gql, request["id"])) == [
        (("input", "id"), "INVALID_STATE")
    ]
    assert (await withdraw(gql, request["id"]))["changeRequest"]["state"] == "WITHDRAWN"
    assert errors_of(await withdraw(gql, request["id"])) == [(("input", "id"), "INVALID_STATE")]
    assert (await segment_by_key(gql, project.key, "scheduled"))["version"] == 1


async def test_an_apply_at_in_the_past_applies_now(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Past")
    request = await approved(gql, keys, segment["id"], name="Past 2")
    earlier = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    payload = await apply_request(gql, request["id"], applyAt=earlier)
    assert payload["changeRequest"]["state"] == "APPLIED"


async def wait_for_state(gql, request_id, wanted, timeout=6.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        shown = await change_request(gql, request_id)
        if shown["state"] in wanted or asyncio.get_running_loop().time() > deadline:
            return shown
        await asyncio.sleep(0.2)


async def test_the_scheduler_applies_a_due_request_and_conflicts_a_clashing_one(gql, project, keys):
    due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    fine = await new_segment(gql, project.key, name="On time")
    clash = await new_segment(gql, project.key, name="Clashing")
    first = await approved(gql, keys, fine["id"], name="On time 2")
    second = await approved(gql, keys, clash["id"], name="Clashing 2")
    for request in (first, second):
        payload = await apply_request(gql, request["id"], applyAt=due)
        assert payload["changeRequest"]["state"] == "SCHEDULED"
    await update_segment(gql, clash["id"], name="Clashing theirs")
    applied = await wait_for_state(gql, first["id"], {"APPLIED", "CONFLICT"})
    assert applied["state"] == "APPLIED" and applied["segment"]["name"] == "On time 2"
    conflicted = await wait_for_state(gql, second["id"], {"APPLIED", "CONFLICT"})
    assert conflicted["state"] == "CONFLICT" and conflicted["conflict"] == (
        "Changed since version 1: name."
    )
    assert (await segment_by_key(gql, project.key, "clashing"))["name"] == "Clashing theirs"


async def test_lists_filter_by_state_newest_first(gql, project, keys):
    segment = await new_segment(gql, project.key, name="Listed")
    ids = [(await proposed(gql, segment["id"], name=f"Listed {n}"))["id"] for n in range(3)]
    await review(gql, ids[0], "REJECT", token=keys["reviewer"])
    variables = {"p": project.key, "k": "listed"}
    listed = (await gql(SEGMENT_REQUESTS, {**variables, "first": 2}))["segment"]["changeRequests"]
    assert listed["totalCount"] == 3
    assert [n["id"] for n in listed["nodes"]] == [ids[2], ids[1]]
    assert listed["pageInfo"]["hasNextPage"] is True
    rest = await gql(SEGMENT_REQUESTS, {**variables, "after": listed["pageInfo"]["endCursor"]})
    assert [n["id"] for n in rest["segment"]["changeRequests"]["nodes"]] == [ids[0]]
    open_only = await gql(SEGMENT_REQUESTS, {**variables, "state": "OPEN"})
    assert [n["id"] for n in open_only["segment"]["changeRequests"]["nodes"]] == [ids[2], ids[1]]
    rejected = await gql(PROJECT_REQUESTS, {"p": project.key, "state": "REJECTED"})
    assert [n["id"] for n in rejected["changeRequests"]["nodes"]] == [ids[0]]


@pytest.mark.parametrize("same_field", [True, False])
async def test_two_requests_racing_to_apply_never_both_apply_blindly(
    gql, project, keys, same_field
):
    for round in range(10):
        segment = await new_segment(gql, project.key, name=f"Race {same_field} {round}")
        mine = await approved(gql, keys, segment["id"], name=f"Mine {round}")
        theirs_fields = {"name": f"Theirs {round}"} if same_field else {"tags": [f"t{round}"]}
        theirs = await approved(gql, keys, segment["id"], **theirs_fields)
        results = await asyncio.gather(
            apply_request(gql, mine["id"]), apply_request(gql, theirs["id"])
        )
        states = sorted(r["changeRequest"]["state"] for r in results)
        now = await gql(
            "query($id: ID!) { node(id: $id) { ... on Segment { name tags version } } }",
            {"id": segment["id"]},
        )
        now = now["node"]
        if same_field:
            # One applies, the other conflicts; the name is the one that applied.
            assert states == ["APPLIED", "CONFLICT"], results
            winner = next(r for r in results if r["changeRequest"]["state"] == "APPLIED")
            assert now["version"] == 2
            assert now["name"] == winner["changeRequest"]["segment"]["name"]
        else:
            # Both apply, the second rebased over the first: both changes are kept.
            assert states == ["APPLIED", "APPLIED"], results
            assert now["version"] == 3
            assert (now["name"], now["tags"]) == (f"Mine {round}", [f"t{round}"])


async def test_a_request_the_scheduler_cannot_apply_holds_up_no_other_and_ends_in_conflict(
    gql, project, keys, database_url
):
    due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    broken_segment = await new_segment(gql, project.key, name="Broken")
    fine_segment = await new_segment(gql, project.key, name="Fine")
    broken = await approved(gql, keys, broken_segment["id"], name="Broken 2")
    fine = await approved(gql, keys, fine_segment["id"], name="Fine 2")
    await apply_request(gql, broken["id"], applyAt=due)
    await apply_request(gql, fine["id"], applyAt=due)
    # A stored base the apply cannot read: every attempt raises inside the scheduler.
    await sql_fetch(
        database_url,
        "UPDATE change_requests SET base = '{\"bogus\": 1}' WHERE id = $1",
        decode_id(broken["id"])[1],
    )
    assert (await wait_for_state(gql, fine["id"], {"APPLIED"}))["state"] == "APPLIED"
    given_up = await wait_for_state(gql, broken["id"], {"CONFLICT"}, timeout=10)
    assert given_up["state"] == "CONFLICT"
    assert given_up["conflict"].startswith("It could not be applied")
    assert (await segment_by_key(gql, project.key, "broken"))["version"] == 1
