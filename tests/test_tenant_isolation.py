"""A token sees only its own project: every root field, tried across the tenant boundary.

The cases are keyed by the schema's own root fields, so a new query or mutation without a
case here fails `test_every_root_field_has_an_isolation_case`.
"""

import pytest

from schema.build import build_schema
from tests.mutations.helpers import admin_token

CREATE_SEGMENT = """mutation($i: CreateSegmentInput!) { createSegment(input: $i) { segment { id key } userErrors { code } } }"""


async def _seed(gql, project) -> dict:
    """One of everything in `project`, made with its own editor token."""
    token = project.editor
    seg = await gql(
        CREATE_SEGMENT,
        {"i": {"projectKey": project.key, "name": "Secret", "key": "secret"}},
        token=token,
    )
    gone = await gql(
        CREATE_SEGMENT, {"i": {"projectKey": project.key, "name": "Old", "key": "old"}}, token=token
    )
    flag = await gql(
        'mutation($p: String!) { createFlag(input: {projectKey: $p, key: "flag", name: "Flag"}) { flag { id } } }',
        {"p": project.key},
        token=token,
    )
    segment_id = seg["createSegment"]["segment"]["id"]
    flag_id = flag["createFlag"]["flag"]["id"]
    await gql(
        'mutation($f: ID!, $s: ID!) { setTargetingRules(input: {flagId: $f, environmentKey: "production",'
        ' rules: [{segmentId: $s, variationKey: "on"}]}) { userErrors { code } } }',
        {"f": flag_id, "s": segment_id},
        token=token,
    )
    old_id = gone["createSegment"]["segment"]["id"]
    await gql(
        "mutation($id: ID!) { deleteSegment(input: {id: $id}) { userErrors { code } } }",
        {"id": old_id},
        token=token,
    )
    await gql(
        "mutation($p: String!) { upsertProfiles(input: {projectKey: $p, profiles: "
        '[{targetingKey: "secret-user", attributes: {plan: "pro"}}]}) { userErrors { code } } }',
        {"p": project.key},
        token=token,
    )
    proposed = await gql(
        'mutation($id: ID!) { proposeSegmentChange(input: {update: {id: $id, name: "Secret 2"}}) '
        "{ changeRequest { id } userErrors { code } } }",
        {"id": segment_id},
        token=token,
    )
    ids = await gql(
        "query($p: String!) { project(key: $p) { id environments { id } } auditLog(projectKey: $p) { nodes { id } } "
        'profile(projectKey: $p, targetingKey: "secret-user") { id } }',
        {"p": project.key},
        token=token,
    )
    return {
        "segment": segment_id,
        "deleted_segment": old_id,
        "flag": flag_id,
        "project": ids["project"]["id"],
        "environment": ids["project"]["environments"][0]["id"],
        "audit": ids["auditLog"]["nodes"][0]["id"],
        "profile": ids["profile"]["id"],
        "change_request": proposed["proposeSegmentChange"]["changeRequest"]["id"],
    }


# Each case: (query, variables built from the victim's key "k" and ids, check of the data).
def _null(field):
    return lambda data: data[field] is None


def _empty(field):
    return lambda data: data[field]["totalCount"] == 0 and data[field]["nodes"] == []


def _not_found(field):
    return lambda data: [e["code"] for e in data[field]["userErrors"]] == ["NOT_FOUND"]


QUERY_CASES = {
    "node": [
        ("query($id: ID!) { node(id: $id) { id } }", {"id": key}, _null("node"))
        for key in (
            "segment",
            "flag",
            "project",
            "environment",
            "audit",
            "profile",
            "change_request",
        )
    ],
    "project": [("query($k: String!) { project(key: $k) { id } }", {}, _null("project"))],
    "segment": [
        (
            'query($k: String!) { segment(projectKey: $k, key: "secret") { id } }',
            {},
            _null("segment"),
        )
    ],
    "segments": [
        (
            "query($k: String!) { segments(projectKey: $k, filter: {includeDeleted: true}) { totalCount nodes { id } } }",
            {},
            _empty("segments"),
        ),
    ],
    "flag": [
        ('query($k: String!) { flag(projectKey: $k, key: "flag") { id } }', {}, _null("flag"))
    ],
    "flags": [
        (
            "query($k: String!) { flags(projectKey: $k) { totalCount nodes { id } } }",
            {},
            _empty("flags"),
        )
    ],
    "auditLog": [
        (
            "query($k: String!) { auditLog(projectKey: $k) { totalCount nodes { id } } }",
            {},
            _empty("auditLog"),
        )
    ],
    "changeRequests": [
        (
            "query($k: String!) { changeRequests(projectKey: $k) { totalCount nodes { id } } }",
            {},
            _empty("changeRequests"),
        )
    ],
    "evaluateSegment": [],  # returns an error instead of data: see its own test below
    "evaluateTargeting": [],  # likewise
    "profile": [
        (
            'query($k: String!) { profile(projectKey: $k, targetingKey: "secret-user") { id } }',
            {},
            _null("profile"),
        )
    ],
    "profiles": [
        (
            "query($k: String!) { profiles(projectKey: $k) { totalCount nodes { id } } }",
            {},
            _empty("profiles"),
        )
    ],
    "attributes": [
        (
            "query($k: String!) { attributes(projectKey: $k) { totalCount nodes { path } } }",
            {},
            _empty("attributes"),
        )
    ],
    "attribute": [
        (
            'query($k: String!) { attribute(projectKey: $k, path: "plan") { path } }',
            {},
            _null("attribute"),
        )
    ],
    "segmentOverlap": [
        (
            'query($k: String!) { segmentOverlap(projectKey: $k, a: "secret", b: "secret") { both } }',
            {},
            _null("segmentOverlap"),
        )
    ],
    "segmentChangeImpact": [
        (
            "query($id: ID!) { segmentChangeImpact(input: {id: $id, force: true}) { impact { entering } userErrors { code } } }",
            {"id": "segment"},
            lambda data: (
                data["segmentChangeImpact"]["impact"] is None
                and [e["code"] for e in data["segmentChangeImpact"]["userErrors"]] == ["NOT_FOUND"]
            ),
        )
    ],
    "previewSegment": [
        (
            "query($k: String!) { previewSegment(input: {projectKey: $k, force: true}) { memberCount sample { id } userErrors { code } } }",
            {},
            lambda data: (
                data["previewSegment"]
                == {"memberCount": None, "sample": [], "userErrors": [{"code": "NOT_FOUND"}]}
            ),
        ),
    ],
}

MUTATION_CASES = {
    "createSegment": [
        (
            'mutation($k: String!) { createSegment(input: {projectKey: $k, name: "X"}) { segment { id } userErrors { code } } }',
            {},
            _not_found("createSegment"),
        ),
    ],
    "updateSegment": [
        (
            'mutation($id: ID!) { updateSegment(input: {id: $id, name: "Hacked"}) { segment { id } userErrors { code } } }',
            {"id": "segment"},
            _not_found("updateSegment"),
        ),
    ],
    "deleteSegment": [
        (
            "mutation($id: ID!) { deleteSegment(input: {id: $id}) { deletedSegmentId userErrors { code } } }",
            {"id": "segment"},
            _not_found("deleteSegment"),
        ),
    ],
    "updateSegmentTargets": [
        (
            'mutation($id: ID!) { updateSegmentTargets(input: {segmentId: $id, addIncluded: ["me"]}) { segment { id } addedCount userErrors { code } } }',
            {"id": "segment"},
            _not_found("updateSegmentTargets"),
        ),
    ],
    "restoreSegment": [
        (
            "mutation($id: ID!) { restoreSegment(input: {id: $id}) { segment { id } userErrors { code } } }",
            {"id": "deleted_segment"},
            _not_found("restoreSegment"),
        ),
    ],
    "revertSegment": [
        (
            "mutation($id: ID!) { revertSegment(input: {id: $id, toVersion: 1}) { segment { id } userErrors { code } } }",
            {"id": "segment"},
            _not_found("revertSegment"),
        ),
    ],
    # Run with an admin key of the caller's project (ADMIN_FIELDS).
    "updateProjectSettings": [
        (
            "mutation($k: String!) { updateProjectSettings(input: {projectKey: $k, requireApproval: true}) { project { id } userErrors { code } } }",
            {},
            _not_found("updateProjectSettings"),
        ),
    ],
    "proposeSegmentChange": [
        (
            'mutation($id: ID!) { proposeSegmentChange(input: {update: {id: $id, name: "Hacked"}}) { changeRequest { id } userErrors { code } } }',
            {"id": "segment"},
            _not_found("proposeSegmentChange"),
        ),
        (
            "mutation($id: ID!) { proposeSegmentChange(input: {delete: {id: $id}}) { changeRequest { id } userErrors { code } } }",
            {"id": "segment"},
            _not_found("proposeSegmentChange"),
        ),
    ],
    "reviewChangeRequest": [
        (
            "mutation($id: ID!) { reviewChangeRequest(input: {id: $id, decision: REJECT}) { changeRequest { id } userErrors { code } } }",
            {"id": "change_request"},
            _not_found("reviewChangeRequest"),
        ),
    ],
    "applyChangeRequest": [
        (
            "mutation($id: ID!) { applyChangeRequest(input: {id: $id}) { changeRequest { id } userErrors { code } } }",
            {"id": "change_request"},
            _not_found("applyChangeRequest"),
        ),
    ],
    "withdrawChangeRequest": [
        (
            "mutation($id: ID!) { withdrawChangeRequest(input: {id: $id}) { changeRequest { id } userErrors { code } } }",
            {"id": "change_request"},
            _not_found("withdrawChangeRequest"),
        ),
    ],
    "createEnvironment": [
        (
            'mutation($k: String!) { createEnvironment(input: {projectKey: $k, key: "qa", name: "QA"}) { environment { id } userErrors { code } } }',
            {},
            _not_found("createEnvironment"),
        ),
    ],
    "createFlag": [
        (
            'mutation($k: String!) { createFlag(input: {projectKey: $k, key: "x", name: "X"}) { flag { id } userErrors { code } } }',
            {},
            _not_found("createFlag"),
        ),
    ],
    "setTargetingRules": [
        (
            'mutation($id: ID!) { setTargetingRules(input: {flagId: $id, environmentKey: "production", rules: []}) { flag { id } userErrors { code } } }',
            {"id": "flag"},
            _not_found("setTargetingRules"),
        ),
    ],
    "archiveFlag": [
        (
            "mutation($id: ID!) { archiveFlag(input: {flagId: $id}) { flag { id } userErrors { code } } }",
            {"id": "flag"},
            _not_found("archiveFlag"),
        ),
    ],
    "defineAttribute": [
        (
            'mutation($k: String!) { defineAttribute(input: {projectKey: $k, path: "plan", type: STRING}) { attribute { path } userErrors { code } } }',
            {},
            _not_found("defineAttribute"),
        )
    ],
    "removeAttributeDefinition": [
        (
            'mutation($k: String!) { removeAttributeDefinition(input: {projectKey: $k, path: "plan"}) { attribute { path } userErrors { code } } }',
            {},
            _not_found("removeAttributeDefinition"),
        )
    ],
    "upsertProfiles": [
        (
            'mutation($k: String!) { upsertProfiles(input: {projectKey: $k, profiles: [{targetingKey: "secret-user", attributes: {}}]}) { upsertedCount userErrors { code } } }',
            {},
            _not_found("upsertProfiles"),
        ),
    ],
    "deleteProfiles": [
        (
            'mutation($k: String!) { deleteProfiles(input: {projectKey: $k, targetingKeys: ["secret-user"]}) { deletedCount userErrors { code } } }',
            {},
            _not_found("deleteProfiles"),
        ),
    ],
}


# Mutations only an admin key may call.
ADMIN_FIELDS = {"updateProjectSettings"}


def test_every_root_field_has_an_isolation_case():
    schema = build_schema()._schema
    assert set(schema.query_type.fields) <= set(QUERY_CASES), "add a case for the new query field"
    assert set(schema.mutation_type.fields) <= set(MUTATION_CASES), (
        "add a case for the new mutation"
    )


CASES = [
    pytest.param(field, *case, id=f"{field}-{i}")
    for table in (QUERY_CASES, MUTATION_CASES)
    for field, cases in table.items()
    for i, case in enumerate(cases)
]


@pytest.mark.parametrize("field,query,variables,check", CASES)
async def test_another_projects_objects_do_not_exist_for_this_token(
    gql, database_url, project, other_project, field, query, variables, check
):
    victim = await _seed(gql, other_project)
    before = await _snapshot(gql, other_project)
    resolved = {name: victim[value] for name, value in variables.items()}
    if "$k" in query:
        resolved["k"] = other_project.key
    token = project.editor
    if field in ADMIN_FIELDS:
        token = await admin_token(database_url, project)
    data = await gql(query, resolved, token=token)
    assert check(data), data
    assert await _snapshot(gql, other_project) == before, "the other project changed"


async def test_evaluating_another_projects_segment_is_not_found(gql, project, other_project):
    await _seed(gql, other_project)
    errors = await gql.errors(
        'query($k: String!) { evaluateSegment(projectKey: $k, key: "secret", context: {}) { matched } }',
        {"k": other_project.key},
        token=project.editor,
    )
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_evaluating_another_projects_flag_targeting_is_not_found(gql, project, other_project):
    await _seed(gql, other_project)
    errors = await gql.errors(
        'query($k: String!) { evaluateTargeting(projectKey: $k, flagKey: "flag",'
        ' environmentKey: "production", context: {}) { variationKey } }',
        {"k": other_project.key},
        token=project.editor,
    )
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_attaching_another_projects_segment_is_not_found(gql, project, other_project):
    victim = await _seed(gql, other_project)
    flag = await gql(
        'mutation($p: String!) { createFlag(input: {projectKey: $p, key: "mine", name: "Mine"}) { flag { id } } }',
        {"p": project.key},
    )
    data = await gql(
        'mutation($f: ID!, $s: ID!) { setTargetingRules(input: {flagId: $f, environmentKey: "production",'
        ' rules: [{segmentId: $s, variationKey: "on"}]}) { userErrors { code field } } }',
        {"f": flag["createFlag"]["flag"]["id"], "s": victim["segment"]},
    )
    assert data["setTargetingRules"]["userErrors"] == [
        {"code": "NOT_FOUND", "field": ["input", "rules", "0", "segmentId"]}
    ]


async def _snapshot(gql, project) -> dict:
    return await gql(
        """query($p: String!) {
          segments(projectKey: $p, filter: {includeDeleted: true}) { nodes { id key name version deleted } }
          flags(projectKey: $p) { nodes { id archived targetingRules(environmentKey: "production") { id } } }
          project(key: $p) { environments { key } }
          auditLog(projectKey: $p) { totalCount }
          profiles(projectKey: $p) { totalCount nodes { id targetingKey attributes updatedAt } }
          changeRequests(projectKey: $p) { nodes { id state updatedAt reviews { reviewer } } }
        }""",
        {"p": project.key},
        token=project.viewer,
    )
