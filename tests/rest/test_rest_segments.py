"""The seed's REST API (DESIGN §16): Flagmint's own bodies and answers, on the same data as GraphQL."""

import copy
from typing import Any

import pytest

from rules.validate import derive_key
from tests.mutations.helpers import SEGMENT, attach, new_flag, new_segment

# The segment bodies of the Flagmint document (../shared/seeds/000_…), as its curl sends them.
SEED_SEGMENTS: list[dict[str, Any]] = [
    {"name": "EU Premium Users", "key": "eu_premium_users",
     "description": "Users on premium or growth plans in the EU", "logical_op": "AND",
     "rules": [{"type": "rule", "attribute": "user.plan", "operator": "in", "value": ["premium", "growth"]},
               {"type": "rule", "attribute": "organization.country", "operator": "in",
                "value": ["DE", "NL", "FR", "IE", "AT", "BE"]}]},
    {"name": "Enterprise Admins", "logical_op": "AND",
     "rules": [{"type": "rule", "attribute": "user.plan", "operator": "eq", "value": "enterprise"},
               {"type": "rule", "attribute": "user.role", "operator": "eq", "value": "admin"}]},
    {"name": "Internal Users", "logical_op": "OR",
     "rules": [{"type": "rule", "attribute": "user.email", "operator": "endsWith", "value": "@flagmint.com"},
               {"type": "rule", "attribute": "user.email", "operator": "endsWith", "value": "@acme.com"},
               {"type": "rule", "attribute": "custom.is_internal", "operator": "eq", "value": "true"}]},
    {"name": "Non-Free Users", "logical_op": "NOT",
     "rules": [{"type": "rule", "attribute": "user.plan", "operator": "eq", "value": "free"}]},
    {"name": "Beta Testers", "force": True, "logical_op": "AND",
     "rules": [{"type": "rule", "attribute": "user.plan", "operator": "eq", "value": "enterprise"}]},
    {"name": "DACH Region", "key": "dach_region", "logical_op": "OR",
     "rules": [{"type": "rule", "attribute": "organization.country", "operator": "eq", "value": "DE"},
               {"type": "rule", "attribute": "organization.country", "operator": "eq", "value": "AT"},
               {"type": "rule", "attribute": "organization.country", "operator": "eq", "value": "CH"}]},
    {"name": "Paid Users", "key": "paid_users", "logical_op": "AND",
     "rules": [{"type": "rule", "attribute": "user.plan", "operator": "nin", "value": ["free"]}]},
    {"name": "Enterprise Partners", "key": "enterprise_partners", "logical_op": "AND",
     "rules": [{"type": "rule", "attribute": "organization.employeeCount", "operator": "gt", "value": 500},
               {"type": "rule", "attribute": "user.email", "operator": "endsWith", "value": "@partner.com"}]},
    {"name": "Non-Legacy Users", "key": "non_legacy", "logical_op": "AND",
     "rules": [{"type": "rule", "attribute": "user.plan", "operator": "neq", "value": "legacy"},
               {"type": "rule", "attribute": "user.plan", "operator": "exists"}]},
]  # fmt: skip

GRAPHQL_OPERATORS = {"in": "IN", "eq": "EQ", "endsWith": "ENDS_WITH", "nin": "NIN", "gt": "GT",
                     "neq": "NEQ", "exists": "EXISTS"}  # fmt: skip
BY_KEY = f"query($p: String!, $k: String!) {{ segment(projectKey: $p, key: $k) {{ {SEGMENT} }} }}"


def graphql_rules(rest_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed's conditions as the GraphQL schema answers them."""
    return [
        {"__typename": "Condition", "attribute": r["attribute"],
         "operator": GRAPHQL_OPERATORS[r["operator"]], "value": r.get("value")}
        for r in rest_rules
    ]  # fmt: skip


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def rest(client, project):
    http_client, project_key, editor_token = client, project.key, project.editor

    class Rest:
        client, project, editor = http_client, project_key, editor_token

        async def post(self, body: Any, token: str | None = None, project_key: str | None = None):
            return await client.post(
                f"/projects/{project_key or project.key}/segments",
                json=body,
                headers=auth(token or project.editor),
            )

        async def get(self, path: str = "", token: str | None = None, **params: Any):
            return await client.get(
                f"/projects/{project.key}/segments{path}",
                params=params,
                headers=auth(token or project.viewer),
            )

        async def put(self, key: str, body: Any, token: str | None = None):
            return await client.put(
                f"/projects/{project.key}/segments/{key}",
                json=body,
                headers=auth(token or project.editor),
            )

        async def delete(self, key: str, token: str | None = None):
            return await client.delete(
                f"/projects/{project.key}/segments/{key}", headers=auth(token or project.editor)
            )

    return Rest()


@pytest.mark.parametrize("body", SEED_SEGMENTS, ids=[s["name"] for s in SEED_SEGMENTS])
async def test_seed_segment_created_over_rest_reads_the_same_over_graphql(rest, gql, project, body):
    response = await rest.post(body)
    assert response.status_code == 201, response.text
    created = response.json()
    key = body.get("key") or derive_key(body["name"])
    assert created["id"] == created["key"] == key
    assert created["name"] == body["name"]
    assert created["logical_op"] == body["logical_op"]
    assert created["rules"] == body["rules"]
    assert created["force"] is body.get("force", False)
    assert created["version"] == 1

    segment = (await gql(BY_KEY, {"p": project.key, "k": key}))["segment"]
    assert segment["name"] == body["name"]
    assert segment["description"] == body.get("description")
    assert segment["logicalOp"] == body["logical_op"]
    assert segment["force"] is body.get("force", False)
    assert segment["rules"] == graphql_rules(body["rules"])
    assert (await rest.get(f"/{key}")).json() == created


async def test_segment_created_over_graphql_reads_the_same_over_rest(rest, gql, project):
    segment = await new_segment(
        gql, project.key, name="Grouped", key="grouped", description="d", tags=["t"],
        logicalOp="OR", included=["u-1"], excluded=["u-2"],
        rules=[{"condition": {"attribute": "plan", "operator": "STARTS_WITH", "value": "pro"}},
               {"group": {"logicalOp": "NOT", "rules": [
                   {"condition": {"attribute": "country", "operator": "EXISTS"}}]}}],
    )  # fmt: skip
    answer = (await rest.get("/grouped")).json()
    assert answer == {
        "id": "grouped", "key": "grouped", "name": "Grouped", "description": "d",
        "logical_op": "OR", "force": False, "tags": ["t"], "included": ["u-1"], "excluded": ["u-2"],
        "rules": [
            {"type": "rule", "attribute": "plan", "operator": "startsWith", "value": "pro"},
            {"type": "group", "logical_op": "NOT",
             "rules": [{"type": "rule", "attribute": "country", "operator": "exists"}]},
        ],
        "salt": "grouped", "version": segment["version"], "created_at": answer["created_at"],
        "updated_at": answer["updated_at"],
        "unbounded": False, "included_count": 1, "excluded_count": 1, "generation": 0,
    }  # fmt: skip


async def test_partial_put_changes_only_logical_op_and_rules(rest, gql, project):
    body = copy.deepcopy(SEED_SEGMENTS[0])
    created = (await rest.post(body)).json()
    change = {
        "logical_op": "OR",
        "rules": [
            {"type": "rule", "attribute": "organization.country", "operator": "eq", "value": "DE"},
            {"type": "rule", "attribute": "organization.country", "operator": "eq", "value": "FR"},
        ],
    }
    response = await rest.put("eu_premium_users", change)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated == {**created, **change, "version": 2, "updated_at": updated["updated_at"]}
    segment = (await gql(BY_KEY, {"p": project.key, "k": "eu_premium_users"}))["segment"]
    assert segment["logicalOp"] == "OR" and segment["description"] == body["description"]


async def test_delete_of_a_used_segment_is_400_with_who_uses_it(rest, gql, project):
    segment = await new_segment(gql, project.key, name="Used", key="used")
    flag = await new_flag(gql, project.key, "new-dashboard")
    await attach(gql, flag["id"], segment["id"])
    response = await rest.delete("used")
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "SEGMENT_IN_USE"
    assert body["used_in_flags"] == [
        {"id": "new-dashboard", "name": "New-Dashboard", "environment": "production"}
    ]
    usage = (await rest.get("/used/usage")).json()
    assert usage == {
        "usage_count": 1,
        "used_in_flags": body["used_in_flags"],
        "used_in_segments": [],
    }
    assert (await rest.get("/used")).status_code == 200


async def test_delete_answers_204_and_the_segment_is_gone(rest, gql, project):
    await rest.post({"name": "Doomed"})
    response = await rest.delete("doomed")
    assert response.status_code == 204 and response.content == b""
    assert (await rest.get("/doomed")).status_code == 404
    assert (await rest.delete("doomed")).status_code == 404
    assert (await gql(BY_KEY, {"p": project.key, "k": "doomed"}))["segment"] is None


async def test_list_pages_searches_and_sorts(rest):
    for name in ("Alpha", "Bravo", "Charlie", "Delta", "Echo"):
        assert (await rest.post({"name": name})).status_code == 201
    first = (await rest.get(limit=2)).json()
    assert [s["name"] for s in first["data"]] == ["Alpha", "Bravo"]
    assert (first["page"], first["limit"], first["total"]) == (1, 2, 5)
    third = (await rest.get(limit=2, page=3)).json()
    assert [s["name"] for s in third["data"]] == ["Echo"]
    desc = (await rest.get(sort="key", dir="desc", limit=3)).json()
    assert [s["key"] for s in desc["data"]] == ["echo", "delta", "charlie"]
    found = (await rest.get(search="HAR")).json()
    assert [s["name"] for s in found["data"]] == ["Charlie"] and found["total"] == 1
    assert (await rest.get()).json()["limit"] == 20


@pytest.mark.parametrize(
    "params, field",
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"page": 0}, "page"), ({"page": "x"}, "page"),
     ({"sort": "version"}, "sort"), ({"dir": "up"}, "dir")],
)  # fmt: skip
async def test_bad_list_parameters_are_400_naming_the_parameter(rest, params, field):
    response = await rest.get(**params)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    "body, status, code, field",
    [
        ({"name": "X", "logical_op": "XOR"}, 400, "INVALID_INPUT", "logical_op"),
        ({"name": "X", "rules": [{"type": "rule", "attribute": "a", "operator": "like", "value": 1}]},
         400, "INVALID_INPUT", "rules.0.operator"),
        ({"name": "X", "rules": [{"type": "rule", "attribute": "a", "operator": "in", "value": 3}]},
         400, "INVALID_RULE", "rules.0.value"),
        ({"name": "X", "key": "bad key!"}, 400, "INVALID_KEY", "key"),
        ({"key": "x"}, 400, "INVALID_INPUT", "name"),
        ({"name": "X", "colour": "red"}, 400, "INVALID_INPUT", "colour"),
    ],
)  # fmt: skip
async def test_invalid_bodies_are_400_with_the_field_and_write_nothing(
    rest, body, status, code, field
):
    response = await rest.post(body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert (await rest.get()).json()["total"] == 0


async def test_salt_case_insensitive_and_percentage_over_rest(rest, gql, project):
    rules = [
        {"type": "rule", "attribute": "plan", "operator": "eq", "value": "Pro",
         "case_insensitive": True},
        {"type": "rule", "attribute": "targetingKey", "operator": "percentage", "value": 12.5},
        {"type": "rule", "attribute": "email", "operator": "endsWith", "value": "@acme.com",
         "case_insensitive": False},
    ]  # fmt: skip
    response = await rest.post({"name": "Rollout", "key": "rollout", "rules": rules})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["salt"] == "rollout"  # the key, when not given
    assert created["rules"] == [
        rules[0],
        rules[1],
        {k: v for k, v in rules[2].items() if k != "case_insensitive"},  # omitted when false
    ]
    segment = (await gql(BY_KEY, {"p": project.key, "k": "rollout"}))["segment"]
    assert [r["operator"] for r in segment["rules"]] == ["EQ", "PERCENTAGE", "ENDS_WITH"]

    changed = await rest.put("rollout", {"salt": "reshuffled", "key": "rollout-2"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["salt"], changed.json()["version"]) == ("reshuffled", 2)
    salted = await rest.post({"name": "Salted", "salt": "given"})
    assert salted.json()["salt"] == "given"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "X", "rules": [{"type": "rule", "attribute": "a", "operator": "gt", "value": 1,
                                  "case_insensitive": True}]}, "rules.0.case_insensitive"),
        ({"name": "X", "rules": [{"type": "rule", "attribute": "a", "operator": "percentage",
                                  "value": 100.5}]}, "rules.0.value"),
    ],
)  # fmt: skip
async def test_rules2_mistakes_over_rest_are_400_invalid_rule(rest, body, field):
    response = await rest.post(body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("INVALID_RULE", field)
    assert (await rest.get()).json()["total"] == 0


async def test_a_bad_salt_over_rest_is_400(rest):
    response = await rest.post({"name": "X", "salt": ""})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "salt"


async def test_conflicts_are_409(rest):
    assert (await rest.post({"name": "One", "key": "one"})).status_code == 201
    taken = await rest.post({"name": "Two", "key": "one"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "KEY_TAKEN"
    stale = await rest.put("one", {"name": "Uno", "expected_version": 7})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "VERSION_CONFLICT"


async def test_tokens_and_roles_as_on_graphql(rest, client, project, other_project):
    assert (await client.get(f"/projects/{project.key}/segments")).status_code == 401
    viewer_write = await rest.post({"name": "Nope"}, token=project.viewer)
    assert viewer_write.status_code == 403 and viewer_write.json()["error"]["code"] == "FORBIDDEN"
    assert (await rest.get()).json()["total"] == 0
    # Another project's key sees this project as if it did not exist.
    assert (await rest.get(token=other_project.viewer)).status_code == 404
    assert (await rest.post({"name": "X"}, token=other_project.editor)).status_code == 404


async def test_openapi_document_is_valid_and_public(client):
    from openapi_spec_validator import validate

    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/projects/{projectId}/segments",
        "/projects/{projectId}/segments/{segmentId}",
        "/projects/{projectId}/segments/{segmentId}/usage",
        "/projects/{projectId}/segments/{segmentId}/targets",
    }


async def test_rest_reads_numbers_exactly_like_graphql(rest):
    body = (
        '{"name": "Big", "rules": [{"type": "rule", "attribute": "n", "operator": "gt",'
        ' "value": 18446744073709551616}]}'
    )
    response = await rest.client.post(
        f"/projects/{rest.project}/segments",
        content=body,
        headers={"Content-Type": "application/json", **auth(rest.editor)},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "INVALID_RULE"
    assert (await rest.get()).json()["total"] == 0


async def test_a_reference_reads_and_writes_in_the_seed_reserved_type_form(rest):
    assert (await rest.post({"name": "Pro", "key": "pro"})).status_code == 201
    body = {
        "name": "Not pro",
        "key": "not-pro",
        "rules": [{"type": "segment", "segment_id": "pro", "negate": True}],
    }
    created = await rest.post(body)
    assert created.status_code == 201, created.json()
    assert created.json()["rules"] == [{"type": "segment", "segment_id": "pro", "negate": True}]
    # Stored by id: renaming the referenced segment shows the new key.
    assert (await rest.put("pro", {"key": "pro-plan"})).status_code == 200
    listed = (await rest.get(search="not-pro")).json()["data"]
    assert listed[0]["rules"] == [{"type": "segment", "segment_id": "pro-plan", "negate": True}]
    usage = (await rest.get("/pro-plan/usage")).json()
    assert usage["used_in_segments"] == [{"id": "not-pro", "name": "Not pro"}]
    refused = await rest.delete("pro-plan")
    assert refused.status_code == 400
    assert refused.json()["used_in_segments"] == [{"id": "not-pro", "name": "Not pro"}]
    missing = await rest.put("not-pro", {"rules": [{"type": "segment", "segment_id": "nope"}]})
    assert missing.status_code == 404
    assert missing.json()["error"]["field"] == "rules.0.segment_id"
    cycle = await rest.put("pro-plan", {"rules": [{"type": "segment", "segment_id": "not-pro"}]})
    assert cycle.status_code == 400
    assert cycle.json()["error"]["code"] == "SEGMENT_CYCLE"


async def test_put_of_targets_on_a_big_segment_is_400_pointing_at_update_segment_targets(
    rest, gql, project
):
    from tests.mutations.test_big_segments import new_big

    await new_big(gql, project.key, name="Customers")
    refused = await rest.put("customers", {"included": ["u1"]})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", "included")
    assert "updateSegmentTargets" in error["message"]
    # The seed's round trip of a GET body (empty lists) is no change of targets.
    body = (await rest.get("/customers")).json()
    assert (body["included"], body["excluded"]) == ([], [])
    kept = await rest.put("customers", {"name": "Customers 2", "included": [], "excluded": []})
    assert kept.status_code == 200, kept.json()
