"""Admin keys and project settings (DESIGN §14): settings start at their defaults, only an
admin changes them, partially, and every change is audited."""

import pytest

from tests.mutations.helpers import AUDIT_LOG, ERRORS, admin_token, errors_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

SETTINGS = """
query($p: String!) {
  project(key: $p) { settings { requireApproval requiredApprovals strictAttributes } }
}"""

UPDATE_SETTINGS = f"""
mutation($i: UpdateProjectSettingsInput!) {{
  updateProjectSettings(input: $i) {{
    project {{ key settings {{ requireApproval requiredApprovals strictAttributes }} }}
    {ERRORS}
  }}
}}"""


async def settings(gql, project):
    return (await gql(SETTINGS, {"p": project.key}))["project"]["settings"]


async def update(gql, project, token, **fields):
    data = await gql(UPDATE_SETTINGS, {"i": {"projectKey": project.key, **fields}}, token=token)
    return data["updateProjectSettings"]


async def test_a_new_project_has_the_default_settings(gql, project):
    assert await settings(gql, project) == {
        "requireApproval": False,
        "requiredApprovals": 1,
        "strictAttributes": False,
    }


async def test_an_admin_changes_settings_partially(gql, project, database_url):
    admin = await admin_token(database_url, project)
    payload = await update(gql, project, admin, requireApproval=True)
    assert payload["userErrors"] == []
    assert payload["project"]["settings"] == {
        "requireApproval": True,
        "requiredApprovals": 1,
        "strictAttributes": False,
    }
    payload = await update(gql, project, admin, requiredApprovals=3)
    assert payload["project"]["settings"]["requireApproval"] is True
    assert await settings(gql, project) == {
        "requireApproval": True,
        "requiredApprovals": 3,
        "strictAttributes": False,
    }


async def test_settings_changes_are_audited_and_no_change_writes_nothing(
    gql, project, database_url
):
    admin = await admin_token(database_url, project, name="ops admin")
    await update(gql, project, admin, requireApproval=True, requiredApprovals=2)
    await update(gql, project, admin, requireApproval=True)
    log = (await gql(AUDIT_LOG, {"p": project.key}))["auditLog"]
    assert log["totalCount"] == 1
    event = log["nodes"][0]
    assert (event["action"], event["entityType"], event["actor"]) == (
        "UPDATED",
        "project",
        "ops admin",
    )
    assert event["changes"] == [
        {"field": "requireApproval", "before": False, "after": True},
        {"field": "requiredApprovals", "before": 1, "after": 2},
    ]


@pytest.mark.parametrize("role", ["editor", "viewer"])
async def test_only_admins_change_settings(gql, project, role):
    errors = await gql.errors(
        UPDATE_SETTINGS,
        {"i": {"projectKey": project.key, "requireApproval": True}},
        token=getattr(project, role),
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert (await settings(gql, project))["requireApproval"] is False


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"requiredApprovals": 0}, ("input", "requiredApprovals")),
        ({"requiredApprovals": 6}, ("input", "requiredApprovals")),
        ({"requireApproval": None}, ("input", "requireApproval")),
        ({"strictAttributes": None}, ("input", "strictAttributes")),
    ],
)
async def test_bad_settings_are_refused_and_change_nothing(
    gql, project, database_url, fields, path
):
    admin = await admin_token(database_url, project)
    valid = {"requireApproval": True, "requiredApprovals": 2, "strictAttributes": True}
    payload = await update(gql, project, admin, **{**valid, **fields})
    assert errors_of(payload) == [(path, "INVALID_INPUT")]
    assert payload["project"] is None
    assert await settings(gql, project) == {
        "requireApproval": False,
        "requiredApprovals": 1,
        "strictAttributes": False,
    }


async def test_another_projects_settings_are_not_found(gql, project, other_project, database_url):
    admin = await admin_token(database_url, project)
    payload = await update(gql, other_project, admin, requireApproval=True)
    assert errors_of(payload) == [(("input", "projectKey"), "NOT_FOUND")]


async def test_an_admin_key_writes_like_an_editor(gql, project, database_url):
    admin = await admin_token(database_url, project)
    data = await gql(
        """mutation($i: CreateSegmentInput!) { createSegment(input: $i) { segment { key } userErrors { code } } }""",
        {"i": {"projectKey": project.key, "name": "By admin"}},
        token=admin,
    )
    assert data["createSegment"] == {"segment": {"key": "by_admin"}, "userErrors": []}
