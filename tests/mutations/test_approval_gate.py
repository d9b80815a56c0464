"""The approval gate (DESIGN §14): with requireApproval on, an editor's direct update, delete,
restore or revert is APPROVAL_REQUIRED and writes nothing; an admin writes past it and the
audit event says so; creates are not gated."""

import pytest
import pytest_asyncio

from tests.mutations.helpers import (
    ERRORS,
    SEGMENT,
    SEGMENT_HISTORY,
    admin_token,
    delete_segment,
    errors_of,
    new_segment,
    restore_segment,
    state,
    update_segment,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

REQUIRE_APPROVAL = """
mutation($p: String!) {
  updateProjectSettings(input: {projectKey: $p, requireApproval: true}) { userErrors { code } }
}"""

REVERT = f"""
mutation($i: RevertSegmentInput!) {{
  revertSegment(input: $i) {{ segment {{ {SEGMENT} }} {ERRORS} }}
}}"""

GATED = [(None, "APPROVAL_REQUIRED")]


async def require_approval(gql, project, admin):
    data = await gql(REQUIRE_APPROVAL, {"p": project.key}, token=admin)
    assert data["updateProjectSettings"]["userErrors"] == []


@pytest_asyncio.fixture(loop_scope="module")
async def gated(gql, project, database_url):
    """A segment at version 2, then the gate shut; returns (segment, admin token)."""
    admin = await admin_token(database_url, project)
    segment = await new_segment(gql, project.key, name="Gated")
    await update_segment(gql, segment["id"], name="Gated 2")
    await require_approval(gql, project, admin)
    return segment, admin


async def test_an_editor_cannot_update_delete_restore_or_revert_directly(gql, project, gated):
    segment, _ = gated
    before = await state(gql, project.key)
    assert errors_of(await update_segment(gql, segment["id"], name="Nope")) == GATED
    assert errors_of(await delete_segment(gql, segment["id"])) == GATED
    assert errors_of(await restore_segment(gql, segment["id"])) == GATED
    reverted = await gql(REVERT, {"i": {"id": segment["id"], "toVersion": 1}})
    assert errors_of(reverted["revertSegment"]) == GATED
    assert await state(gql, project.key) == before


async def test_creates_are_not_gated(gql, project, gated):
    await new_segment(gql, project.key, name="Fresh")


async def test_an_admin_writes_past_the_gate_and_the_event_says_so(gql, project, gated):
    segment, admin = gated
    payload = await update_segment(gql, segment["id"], token=admin, name="By admin")
    assert payload["userErrors"] == [] and payload["segment"]["version"] == 3
    reverted = await gql(REVERT, {"i": {"id": segment["id"], "toVersion": 1}}, token=admin)
    assert reverted["revertSegment"]["segment"]["name"] == "Gated"
    assert (await delete_segment(gql, segment["id"], token=admin))["userErrors"] == []
    assert (await restore_segment(gql, segment["id"], token=admin))["userErrors"] == []
    history = (await gql(SEGMENT_HISTORY, {"id": segment["id"], "first": 4}))["node"]["history"]
    bypass = {"field": "approval", "before": "required", "after": "bypassed"}
    assert [e["action"] for e in history["nodes"]] == ["RESTORED", "DELETED", "UPDATED", "UPDATED"]
    assert all(e["changes"][-1] == bypass for e in history["nodes"])
    assert all(e["actor"] == "admin" for e in history["nodes"])


async def test_an_open_gate_records_no_bypass(gql, project, database_url):
    admin = await admin_token(database_url, project)
    segment = await new_segment(gql, project.key, name="Open")
    await update_segment(gql, segment["id"], token=admin, name="Open 2")
    history = (await gql(SEGMENT_HISTORY, {"id": segment["id"], "first": 1}))["node"]["history"]
    assert history["nodes"][0]["changes"] == [
        {"field": "name", "before": "Open", "after": "Open 2"}
    ]


async def test_rest_put_and_delete_answer_409_approval_required(gql, shared, project, gated):
    segment, _ = gated
    headers = {"Authorization": f"Bearer {project.editor}"}
    before = await state(gql, project.key)
    put = await shared.http.put(
        f"/projects/{project.key}/segments/{segment['key']}", json={"name": "X"}, headers=headers
    )
    assert put.status_code == 409 and put.json()["error"]["code"] == "APPROVAL_REQUIRED"
    deleted = await shared.http.delete(
        f"/projects/{project.key}/segments/{segment['key']}", headers=headers
    )
    assert deleted.status_code == 409 and deleted.json()["error"]["code"] == "APPROVAL_REQUIRED"
    assert await state(gql, project.key) == before
