"""The compiled query executor answers exactly like graphql-core's executor."""

import pytest

from db import api_keys
from db.pool import connect
from schema.context import Context

SEGMENT_FIELDS = """
  id key name description tags logicalOp force included excluded version
  createdAt updatedAt deletedAt deleted
  rules { __typename ...Rule ... on ConditionGroup { logicalOp rules { ...Rule ... on ConditionGroup { logicalOp } } } }
  project { id key name environments { id key name } }
  usage { usageCount usedInFlags { ruleCount flag { id key name description archived } environment { id key name } } }
"""

CORPUS = [
    # list with every field, fragments, aliases and __typename
    (
        "query List($p: String!) { segments(projectKey: $p, first: 5) { __typename totalCount"
        " pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
        " edges { cursor node { ...Seg } } nodes { k: key } } }"
        " fragment Rule on Condition { attribute operator value }"
        f" fragment Seg on Segment {{ {SEGMENT_FIELDS} }}",
        {},
    ),
    (
        "query($p: String!) { segments(projectKey: $p, search: \"ta\", orderBy: {field: KEY, direction: DESC},"
        " filter: {includeDeleted: true}) { edges { node { key deleted history(first: 2) { totalCount"
        " nodes { action actor entityType entityId changes { field before after } } } } } } }",
        {},
    ),
    (
        "query($p: String!) { segments(projectKey: $p, last: 2, filter: {inUse: true}) { nodes { key usage { usageCount } } } }",
        {},
    ),
    (
        "query($p: String!, $k: String!) { segment(projectKey: $p, key: $k) { key ... on Node { id } } }",
        {"k": "beta"},
    ),
    (
        "query($p: String!) { flags(projectKey: $p) { totalCount nodes { key archived"
        " production: targetingRules(environmentKey: \"production\") { id orderIndex kind variationKey rolloutKey logicalOp"
        " segment { key usage { usageCount } } rules { ... on Condition { attribute operator value } } } } } }",
        {},
    ),
    (
        "query($p: String!) { project(key: $p) { id key name environments { key } } auditLog(projectKey: $p, first: 3) {"
        " edges { cursor node { id action changes { field } createdAt } } pageInfo { hasNextPage } } }",
        {},
    ),
    (
        "query($p: String!) { evaluateSegment(projectKey: $p, key: \"beta\", context: {targetingKey: \"u\", plan: \"pro\", n: 3})"
        " { matched reason conditions { attribute operator matched actual } } }",
        {},
    ),
    ("query($p: String!) { segments(projectKey: $p, first: 0) { nodes { key } pageInfo { hasNextPage } } }", {}),
    ("query { other: segments(projectKey: \"nope\") { totalCount nodes { key } } project(key: \"nope\") { key } }", {}),
]

MUTATION = """
mutation($i: CreateSegmentInput!) { createSegment(input: $i) { segment { id } userErrors { code } } }
"""


@pytest.fixture
async def seeded(gql, project):
    ids = {}
    for key, name, op, rules in [
        ("beta", "Beta Testers", "OR", [
            {"condition": {"attribute": "plan", "operator": "IN", "value": ["pro", "team"]}},
            {"group": {"logicalOp": "NOT", "rules": [
                {"condition": {"attribute": "n", "operator": "GT", "value": 5}},
                {"group": {"logicalOp": "AND", "rules": []}},
            ]}},
        ]),
        ("data", "Data Team", "AND", [{"condition": {"attribute": "email", "operator": "ENDS_WITH", "value": "@x.io"}}]),
        ("tags", "Tagged", "NOT", []),
        ("gone", "Gone", "AND", []),
    ]:
        data = await gql(MUTATION, {"i": {"projectKey": project.key, "key": key, "name": name, "logicalOp": op,
                                          "rules": rules, "tags": ["t1"], "included": ["a"], "description": "d"}})
        ids[key] = data["createSegment"]["segment"]["id"]
    flag = await gql('mutation($p: String!) { createFlag(input: {projectKey: $p, key: "f", name: "F"}) { flag { id } } }',
                     {"p": project.key})
    await gql(
        """mutation($f: ID!, $s: ID!, $t: ID!) { setTargetingRules(input: {flagId: $f, environmentKey: "production", rules: [
            {segmentId: $s, variationKey: "on"}, {segmentId: $t, rolloutKey: "r"},
            {logicalOp: OR, rules: [{condition: {attribute: "x", operator: EXISTS}}], variationKey: "off"}]}) { userErrors { code } } }""",
        {"f": flag["createFlag"]["flag"]["id"], "s": ids["beta"], "t": ids["data"]},
    )
    await gql('mutation($id: ID!) { deleteSegment(input: {id: $id}) { userErrors { code } } }', {"id": ids["gone"]})
    return ids


async def test_compiled_and_graphql_core_executors_agree_on_a_corpus(app, project, seeded):
    endpoint = app.state.graphql
    executor = endpoint.executor
    conn = await connect(endpoint.settings.database_url)
    try:
        principal = await api_keys.principal_for_token(conn, project.viewer)
    finally:
        await conn.close()
    for query, variables in CORPUS:
        variables = {"p": project.key, **variables}
        prepared = executor.prepare(query)
        assert prepared.document is not None, prepared.errors

        def context():
            return Context(db=app.state.db, settings=endpoint.settings, principal=principal)

        before = executor.fast_runs
        fast = await executor.execute(prepared, variables=variables, operation_name=None, context=context())
        assert executor.fast_runs == before + 1, f"fell back to graphql-core for {query}"
        standard = await executor.execute_standard(
            prepared.document, variables=variables, operation_name=None, context=context()
        )
        assert standard.errors is None, standard.errors
        assert fast.data == standard.data, query


async def test_errors_come_from_graphql_core_unchanged(gql, project, app):
    executor = app.state.graphql.executor
    before = executor.fallbacks
    errors = await gql.errors(
        'query($p: String!) { evaluateSegment(projectKey: $p, key: "none", context: {}) { matched } }',
        {"p": project.key},
    )
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert errors[0]["path"] == ["evaluateSegment"]
    assert executor.fallbacks == before + 1
