"""The compiled query executor answers exactly like graphql-core's executor."""

import asyncio
import logging

import httpx
import pytest

from api.app import create_app
from api.graphql_http import _dumps
from api.settings import Settings
from db import api_keys
from db.pool import connect
from schema.context import Context
from schema.segments import Segment
from tests.conftest import GraphQLClient

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
        'query($p: String!) { segments(projectKey: $p, search: "ta", orderBy: {field: KEY, direction: DESC},'
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
        ' production: targetingRules(environmentKey: "production") { id orderIndex kind variationKey rolloutKey logicalOp'
        " segment { key usage { usageCount } } rules { ... on Condition { attribute operator value } } } } } }",
        {},
    ),
    (
        "query($p: String!) { project(key: $p) { id key name environments { key } } auditLog(projectKey: $p, first: 3) {"
        " edges { cursor node { id action changes { field } createdAt } } pageInfo { hasNextPage } } }",
        {},
    ),
    (
        'query($p: String!) { evaluateSegment(projectKey: $p, key: "beta", context: {targetingKey: "u", plan: "pro", n: 3})'
        " { matched reason conditions { attribute operator matched actual } } }",
        {},
    ),
    *[
        (
            'query($p: String!, $e: String!) { evaluateTargeting(projectKey: $p, flagKey: "f", environmentKey: $e,'
            ' context: {targetingKey: "u", plan: "free", n: 9, x: 1}) { variationKey rolloutKey'
            " matchedRule { id orderIndex kind segment { key usage { usageCount } } rules { __typename } }"
            " ruleResults { orderIndex matched evaluation { matched reason conditions { attribute operator matched actual } } } } }",
            {"e": environment},
        )
        for environment in ("production", "staging")
    ],
    (
        "query($p: String!) { segments(projectKey: $p, first: 0) { nodes { key } pageInfo { hasNextPage } } }",
        {},
    ),
    *[
        (
            "query($p: String!, $x: Boolean!) { segments(projectKey: $p) { totalCount @include(if: $x)"
            " nodes @skip(if: $x) { key } edges { node { ...S @include(if: true) ...T @skip(if: $x)"
            " ... on Segment @include(if: $x) { name } } } } }"
            " fragment S on Segment { key } fragment T on Segment { key description }",
            {"x": x},
        )
        for x in (True, False)
    ],
    (
        'query { other: segments(projectKey: "nope") { totalCount nodes { key } } project(key: "nope") { key } }',
        {},
    ),
]

MUTATION = """
mutation($i: CreateSegmentInput!) { createSegment(input: $i) { segment { id } userErrors { code } } }
"""


@pytest.fixture
async def seeded(gql, project):
    ids = {}
    for key, name, op, rules in [
        (
            "beta",
            "Beta Testers",
            "OR",
            [
                {"condition": {"attribute": "plan", "operator": "IN", "value": ["pro", "team"]}},
                {
                    "group": {
                        "logicalOp": "NOT",
                        "rules": [
                            {"condition": {"attribute": "n", "operator": "GT", "value": 5}},
                            {"group": {"logicalOp": "AND", "rules": []}},
                        ],
                    }
                },
            ],
        ),
        (
            "data",
            "Data Team",
            "AND",
            [{"condition": {"attribute": "email", "operator": "ENDS_WITH", "value": "@x.io"}}],
        ),
        ("tags", "Tagged", "NOT", []),
        ("gone", "Gone", "AND", []),
    ]:
        data = await gql(
            MUTATION,
            {
                "i": {
                    "projectKey": project.key,
                    "key": key,
                    "name": name,
                    "logicalOp": op,
                    "rules": rules,
                    "tags": ["t1"],
                    "included": ["a"],
                    "description": "d",
                }
            },
        )
        ids[key] = data["createSegment"]["segment"]["id"]
    flag = await gql(
        'mutation($p: String!) { createFlag(input: {projectKey: $p, key: "f", name: "F"}) { flag { id } } }',
        {"p": project.key},
    )
    await gql(
        """mutation($f: ID!, $s: ID!, $t: ID!) { setTargetingRules(input: {flagId: $f, environmentKey: "production", rules: [
            {segmentId: $s, variationKey: "on"}, {segmentId: $t, rolloutKey: "r"},
            {logicalOp: OR, rules: [{condition: {attribute: "x", operator: EXISTS}}], variationKey: "off"}]}) { userErrors { code } } }""",
        {"f": flag["createFlag"]["flag"]["id"], "s": ids["beta"], "t": ids["data"]},
    )
    await gql(
        "mutation($id: ID!) { deleteSegment(input: {id: $id}) { userErrors { code } } }",
        {"id": ids["gone"]},
    )
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
        fast = await executor.execute(
            prepared, variables=variables, operation_name=None, context=context()
        )
        assert executor.fast_runs == before + 1, f"fell back to graphql-core for {query}"
        standard = await executor.execute_standard(
            prepared.document, variables=variables, operation_name=None, context=context()
        )
        assert standard.errors is None, standard.errors
        # Byte for byte, as the client reads it (the fast path leaves UTC datetimes for
        # orjson to write, so its data holds datetimes where graphql-core's holds text).
        assert _dumps(fast.formatted) == _dumps(standard.formatted), query


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


async def test_errors_are_listed_in_document_order_whichever_field_fails_first(gql, project):
    """The first field fails after two loads, the second after one: graphql-core would list
    the second first. Clients comparing responses (snapshots, caches) get one order."""
    from tests.mutations.helpers import new_segment, propose

    segment = await new_segment(gql, project.key, name="Slow", key="slow")
    request = (await propose(gql, update={"id": segment["id"], "name": "Slower"}))["changeRequest"]
    query = """query($p: String!, $request: ID!) {
      first: node(id: $request) {
        ... on ChangeRequest { segment { changeRequests(first: -1) { totalCount } } }
      }
      second: segment(projectKey: $p, key: "slow") { changeRequests(first: 101) { totalCount } }
    }"""
    for _ in range(3):
        response = await gql.raw(query, {"p": project.key, "request": request["id"]})
        body = response.json()
        assert body["data"] == {"first": None, "second": None}
        assert [error["path"] for error in body["errors"]] == [
            ["first", "segment", "changeRequests"],
            ["second", "changeRequests"],
        ]


async def _viewer_context(app, project):
    endpoint = app.state.graphql
    conn = await connect(endpoint.settings.database_url)
    try:
        principal = await api_keys.principal_for_token(conn, project.viewer)
    finally:
        await conn.close()
    return lambda: Context(db=app.state.db, settings=endpoint.settings, principal=principal)


async def test_an_abandoned_attempt_finishes_its_work_and_cancels_nothing(app, project, seeded):
    executor = app.state.graphql.executor
    context = await _viewer_context(app, project)
    # `segment` fails at once (a NUL in its key) while the list's statements still run.
    prepared = executor.prepare(
        "query($p: String!, $k: String!) { s: segment(projectKey: $p, key: $k) { id }"
        " segments(projectKey: $p, first: 50) { totalCount nodes { key usage { usageCount } } } }"
    )
    loop = asyncio.get_running_loop()
    created: list[asyncio.Task] = []
    previous = loop.get_task_factory()

    def record(loop, coro, **kwargs):
        task = asyncio.Task(coro, loop=loop, **kwargs)
        created.append(task)
        return task

    loop.set_task_factory(record)
    fallbacks = executor.fallbacks
    try:
        result = await executor.execute(
            prepared,
            variables={"p": project.key, "k": "a\x00b"},
            operation_name=None,
            context=context(),
        )
    finally:
        loop.set_task_factory(previous)
    assert executor.fallbacks == fallbacks + 1
    assert [e.path for e in result.errors] == [["s"]]
    assert len(result.data["segments"]["nodes"]) == 3
    assert created and all(task.done() for task in created)
    assert not [task for task in created if task.cancelled()]


async def test_fallbacks_not_raised_on_purpose_are_logged_once_per_query_shape(
    gql, project, caplog, monkeypatch
):
    await gql(
        'mutation($p: String!) { createSegment(input: {projectKey: $p, name: "A"}) { segment { id } } }',
        {"p": project.key},
    )
    caplog.set_level(logging.INFO, logger="segments.execution")
    introspection = "{ __schema { queryType { name } } }"
    on_purpose = 'query($p: String!) { evaluateSegment(projectKey: $p, key: "none", context: {}) { matched } }'
    for _ in range(3):
        await gql(introspection)
        await gql.errors(on_purpose, {"p": project.key})
    monkeypatch.setattr(Segment, "from_row", classmethod(_explode))
    unexpected = "query($p: String!) { segments(projectKey: $p) { nodes { id } } }"
    for _ in range(3):
        await gql.errors(unexpected, {"p": project.key})
    lines = [r.getMessage() for r in caplog.records if r.name == "segments.execution"]
    assert len(lines) == 2, lines
    assert "not compiled" in lines[0] and "introspection" in lines[0]
    assert "fell back" in lines[1] and "RuntimeError" in lines[1]


def _explode(cls, row):
    raise RuntimeError("boom")


async def test_the_fast_path_can_be_switched_off(database_url, project, monkeypatch):
    monkeypatch.setenv("SEGMENTS_FAST_PATH", "0")
    settings = Settings(database_url=database_url)
    assert settings.fast_path is False
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            data = await GraphQLClient(http, project.editor)(
                "query($p: String!) { segments(projectKey: $p) { totalCount } }", {"p": project.key}
            )
        executor = application.state.graphql.executor
        assert data == {"segments": {"totalCount": 0}}
        assert executor.fast_runs == 0 and executor.fallbacks == 0


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "graphql-core"])
async def test_a_failed_field_does_not_cancel_a_value_another_field_shares(
    app, gql, project, seeded, fast_path
):
    # Both segments load the same project; graphql-core cancels what the failed `a` still
    # awaits. That used to cancel the shared loader future, and the request with it.
    app.state.graphql.executor.fast_path = fast_path
    response = await gql.raw(
        'query($p: String!) { a: segment(projectKey: $p, key: "beta") { project { key } history(first: 101) { totalCount } }'
        ' b: segment(projectKey: $p, key: "beta") { project { key } } }',
        {"p": project.key},
    )
    body = response.json()
    assert body["data"] == {"a": None, "b": {"project": {"key": project.key}}}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["a", "history"], "BAD_USER_INPUT")
    ]
