"""Query guards, malformed requests and error masking: bad input gets a clear 4xx, never a 5xx."""

import logging

import pytest

from schema.segments import Segment


def nested(depth: int) -> str:
    """A valid query `depth` fields deep (ConditionGroup.rules nests without end)."""
    inner = "__typename"
    for _ in range(depth - 3):
        inner = f"... on ConditionGroup {{ rules {{ {inner} }} }}"
    return f'{{ segments(projectKey: "acme") {{ nodes {{ rules {{ {inner} }} }} }} }}'


async def test_query_at_the_depth_limit_runs(gql):
    await gql(nested(10))


async def test_query_past_the_depth_limit_is_refused_before_execution(gql):
    response = await gql.raw(nested(11))
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "deep" in body["errors"][0]["message"]


async def test_introspection_is_not_limited_by_depth(gql):
    from graphql import get_introspection_query

    data = await gql(get_introspection_query())
    assert data["__schema"]["queryType"]["name"] == "Query"


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


async def test_fifteen_aliases_are_allowed(gql):
    assert len(await gql(aliased(15))) == 15


async def test_sixteen_aliases_are_refused(gql):
    errors = await gql.errors(aliased(16))
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def tagged(count: int) -> str:
    """A query of 19 + `count` tokens (graphql-core's count, which the limit is measured by)."""
    tags = " ".join('"t"' for _ in range(count))
    return f'{{ segments(projectKey: "acme" filter: {{tags: [{tags}]}}) {{ totalCount }} }}'


async def test_a_document_of_2000_tokens_runs_and_one_over_is_refused(gql):
    await gql(tagged(1981))
    errors = await gql.errors(tagged(1982))
    assert errors[0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_a_body_over_1_mib_is_refused_with_413(client, project):
    query = "{ __typename }" + " " * (1024 * 1024)
    response = await client.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {project.editor}"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("first", [101, -1])
async def test_page_size_out_of_bounds_is_bad_user_input(gql, project, first):
    errors = await gql.errors(
        "query($p: String!, $n: Int) { segments(projectKey: $p, first: $n) { totalCount } }",
        {"p": project.key, "n": first},
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


MALFORMED = [
    ("not json", {"content-type": "application/json"}, b"{not json", 400),
    ("json array", {"content-type": "application/json"}, b"[1, 2]", 400),
    ("no query", {"content-type": "application/json"}, b'{"variables": {}}', 400),
    ("query not a string", {"content-type": "application/json"}, b'{"query": 42}', 400),
    (
        "variables not an object",
        {"content-type": "application/json"},
        b'{"query": "{ __typename }", "variables": [1]}',
        400,
    ),
    ("wrong content type", {"content-type": "text/plain"}, b'{"query": "{ __typename }"}', 415),
    ("no content type", {}, b'{"query": "{ __typename }"}', 415),
    ("binary garbage", {"content-type": "application/json"}, bytes(range(256)), 400),
]


@pytest.mark.parametrize("name,headers,body,status", MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_malformed_requests_get_a_graphql_shaped_4xx(
    client, project, name, headers, body, status
):
    response = await client.post(
        "/graphql", content=body, headers={**headers, "Authorization": f"Bearer {project.editor}"}
    )
    assert response.status_code == status
    assert response.json()["errors"][0]["message"]


async def test_wrong_variable_types_are_bad_user_input(gql):
    response = await gql.raw(
        "query($p: String!) { segments(projectKey: $p) { totalCount } }", {"p": 12}
    )
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_syntax_errors_are_parse_failures(gql):
    errors = await gql.errors("{ segments(")
    assert errors[0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_mutations_over_get_are_refused_with_405(client, project):
    response = await client.get(
        "/graphql",
        params={"query": 'mutation { archiveFlag(input: {flagId: "x"}) { flag { id } } }'},
        headers={"Authorization": f"Bearer {project.editor}", "Accept": "application/json"},
    )
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


async def test_queries_over_get_work(client, project):
    response = await client.get(
        "/graphql",
        params={"query": "{ __typename }"},
        headers={"Authorization": f"Bearer {project.editor}", "Accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_an_unexpected_failure_is_masked_and_logged_with_the_request_id(
    gql, project, monkeypatch, caplog
):
    def explode(cls, row):
        raise RuntimeError("secret detail: SELECT password FROM users")

    await gql(
        'mutation($p: String!) { createSegment(input: {projectKey: $p, name: "A"}) { segment { id } } }',
        {"p": project.key},
    )
    monkeypatch.setattr(Segment, "from_row", classmethod(explode))
    with caplog.at_level(logging.ERROR, logger="segments.http"):
        response = await gql.raw(
            "query($p: String!) { segments(projectKey: $p) { nodes { id } } }", {"p": project.key}
        )
    body = response.json()
    assert response.status_code == 200
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in response.text and "SELECT" not in response.text
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert "secret detail" in caplog.text  # the operator still sees what happened


@pytest.mark.parametrize(
    "query",
    [
        'query($v: String!) { segments(projectKey: "acme", search: $v) { totalCount } }',
        'query($v: String!) { segment(projectKey: "acme", key: $v) { id } }',
    ],
)
async def test_a_nul_character_in_a_query_argument_is_bad_user_input(gql, project, query):
    errors = await gql.errors(query, {"v": "a\x00b"})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "mutation,field",
    [
        (
            'mutation($v: String!) { m: createSegment(input: {projectKey: "acme", name: $v}) { userErrors { field code } } }',
            ["input", "name"],
        ),
        (
            'mutation($v: String!) { m: createSegment(input: {projectKey: "acme", name: "A", tags: [$v]}) { userErrors { field code } } }',
            ["input", "tags", "0"],
        ),
        (
            'mutation($v: JSON!) { m: createSegment(input: {projectKey: "acme", name: "A", rules: [{condition: '
            '{attribute: "a", operator: EQ, value: $v}}]}) { userErrors { field code } } }',
            ["input", "rules", "0", "condition", "value"],
        ),
        (
            'mutation($v: String!) { m: createFlag(input: {projectKey: "acme", key: "f", name: $v}) { userErrors { field code } } }',
            ["input", "name"],
        ),
    ],
)
async def test_a_nul_character_in_mutation_input_is_a_user_error_and_writes_nothing(
    gql, project, mutation, field
):
    data = await gql(mutation, {"v": "a\x00b"})
    assert [e["field"] for e in data["m"]["userErrors"]] == [field]
    data = await gql(
        '{ segments(projectKey: "acme") { totalCount } flags(projectKey: "acme") { totalCount } }'
    )
    assert data == {"segments": {"totalCount": 0}, "flags": {"totalCount": 0}}


async def test_an_integer_beyond_64_bits_in_a_rule_is_invalid_rule(gql, project):
    data = await gql(
        'mutation { createSegment(input: {projectKey: "acme", name: "Big", rules: [{condition: '
        '{attribute: "a", operator: EQ, value: 123456789012345678901234567890}}]}) { userErrors { field code } } }'
    )
    assert data["createSegment"]["userErrors"] == [
        {"field": ["input", "rules", "0", "condition", "value"], "code": "INVALID_RULE"}
    ]


async def test_evaluate_refuses_huge_and_deep_context_values_as_bad_user_input(gql, project):
    # Contexts are bounded like profile attributes (depth 10, 64-bit integers), so nothing
    # the evaluator hands back in `actual` is too deep or too big to write out.
    await gql(
        'mutation { createSegment(input: {projectKey: "acme", name: "P", rules: [{condition: '
        '{attribute: "plan", operator: EQ, value: "pro"}}]}) { userErrors { code } } }'
    )
    deep: object = "x"
    for _ in range(300):
        deep = [deep]
    errors = await gql.errors(
        'query($c: JSON!) { evaluateSegment(projectKey: "acme", key: "p", context: $c) { conditions { actual } } }',
        {"c": {"plan": deep}},
    )
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
    errors = await gql.errors(
        '{ evaluateSegment(projectKey: "acme", key: "p", context: {plan: 123456789012345678901234567890}) '
        "{ conditions { actual } } }"
    )
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]


async def test_a_statement_over_the_timeout_is_a_typed_error(app, gql, project, monkeypatch):

    async def slow(conn, *args):
        await conn.execute("SET LOCAL statement_timeout = 50")
        return await conn.fetch("SELECT pg_sleep(1)")

    monkeypatch.setattr(
        "db.pagination.Listing.page", lambda self, conn, page: _in_transaction(conn, slow)
    )
    errors = await gql.errors('{ segments(projectKey: "acme") { nodes { id } } }')
    assert errors[0]["extensions"]["code"] == "QUERY_TIMEOUT"
    assert "canceling" not in errors[0]["message"]


async def _in_transaction(conn, work):
    async with conn.transaction():
        return await work(conn)
