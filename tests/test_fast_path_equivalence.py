"""The fast path never changes an answer: queries generated from the live schema, decorated
with named fragments (some spread twice), aliases, variables, @skip/@include and __typename,
answer byte for byte as graphql-core answers them on the same data, errors included."""

import asyncio
from typing import Any

import httpx
import pytest
from graphql import (
    ArgumentNode,
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NamedTypeNode,
    NameNode,
    ObjectFieldNode,
    ObjectValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableDefinitionNode,
    VariableNode,
    get_named_type,
    parse_type,
    print_ast,
    value_from_ast_untyped,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import queries

from api.app import create_app
from api.graphql_http import _dumps
from api.settings import Settings
from db import api_keys
from db.pool import connect
from schema.build import build_schema, export_sdl
from schema.context import Context
from tests.conftest import make_project
from tests.test_fuzz import scalars

SEED = [
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
                    ],
                }
            },
        ],
    ),
    (
        "data",
        "Data Team",
        "AND",
        [
            {"condition": {"attribute": "email", "operator": "ENDS_WITH", "value": "@x.io"}},
        ],
    ),
    ("tags", "Tagged", "NOT", []),
    ("gone", "Gone", "AND", []),
]


class Seeded:
    def __init__(self) -> None:
        self.ids: list[str] = []


async def _seed(http: httpx.AsyncClient, project_key: str, token: str) -> Seeded:
    seeded = Seeded()

    async def send(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = await http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    for key, name, op, rules in SEED:
        data = await send(
            "mutation($i: CreateSegmentInput!) { createSegment(input: $i) { segment { id } userErrors { code } } }",
            {
                "i": {
                    "projectKey": project_key,
                    "key": key,
                    "name": name,
                    "logicalOp": op,
                    "rules": rules,
                    "tags": ["t1"],
                    "included": ["user-1"],
                    "description": "d",
                }
            },
        )
        seeded.ids.append(data["createSegment"]["segment"]["id"])
    flag = await send(
        'mutation($p: String!) { createFlag(input: {projectKey: $p, key: "f", name: "F"}) { flag { id } } }',
        {"p": project_key},
    )
    seeded.ids.append(flag["createFlag"]["flag"]["id"])
    await send(
        """mutation($f: ID!, $s: ID!, $t: ID!) { setTargetingRules(input: {flagId: $f,
            environmentKey: "production", rules: [{segmentId: $s, variationKey: "on"},
            {segmentId: $t, rolloutKey: "r"}]}) { userErrors { code } } }""",
        {"f": seeded.ids[-1], "s": seeded.ids[0], "t": seeded.ids[1]},
    )
    await send(
        "mutation($id: ID!) { deleteSegment(input: {id: $id}) { userErrors { code } } }",
        {"id": seeded.ids[3]},
    )
    await send(
        "mutation($i: UpsertProfilesInput!) { upsertProfiles(input: $i) { upsertedCount } }",
        {
            "i": {
                "projectKey": project_key,
                "profiles": [
                    {"targetingKey": "user-1", "attributes": {"plan": "pro", "n": 3}},
                    {"targetingKey": "user-2", "attributes": {"email": "a@x.io", "n": 9}},
                    {"targetingKey": "user-3", "attributes": {}},
                ],
            }
        },
    )
    return seeded


class Decorate:
    """Rewrites a generated query: real keys and ids in its arguments (so it finds data and
    sometimes errors), and the GraphQL features hypothesis-graphql does not generate."""

    def __init__(self, schema: Any, draw: Any, project_key: str, seeded: Seeded) -> None:
        self.schema = schema
        self.draw = draw
        self.variables: dict[str, Any] = {}
        self.definitions: list[VariableDefinitionNode] = []
        self.fragments: list[FragmentDefinitionNode] = []
        self.count = 0
        # Half the documents have no directives (the plain plan), half @skip/@include
        # (one plan per combination of their conditions).
        self.with_directives = draw(st.booleans())
        self.values: dict[str, list[Any]] = {
            "projectKey": [project_key] * 5 + ["nope"],
            "key": ["beta", "data", "tags", "gone", "f", "nope"],
            "flagKey": ["f", "f", "nope"],
            "targetingKey": ["user-1", "user-2", "nobody"],
            "environmentKey": ["production", "staging", "nope"],
            "search": ["ta", "", "e"],
            "first": [0, 1, 2, 5, 101, -1],
            "last": [0, 1, 3],
            "sampleSize": [0, 2, 101],
            "id": seeded.ids + ["bad"],
        }

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def document(self, document: DocumentNode) -> tuple[str, dict[str, Any]]:
        operation = document.definitions[0]
        assert isinstance(operation, OperationDefinitionNode)
        selection_set = self.selection_set(operation.selection_set, self.schema.query_type)
        operation = OperationDefinitionNode(
            operation=OperationType.QUERY,
            name=None,
            directives=(),
            variable_definitions=tuple(self.definitions),
            selection_set=selection_set,
        )
        return print_ast(DocumentNode(definitions=(operation, *self.fragments))), self.variables

    def selection_set(self, node: SelectionSetNode, parent: Any) -> SelectionSetNode:
        draw = self.draw
        selections: list[Any] = []
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                selections.append(self.field(selection, parent))
            elif isinstance(selection, InlineFragmentNode):
                inner = (
                    self.schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                selections.append(
                    InlineFragmentNode(
                        type_condition=selection.type_condition,
                        directives=self.directives(),
                        selection_set=self.selection_set(selection.selection_set, inner),
                    )
                )
        if draw(st.integers(0, 3)) == 0:
            selections.insert(
                draw(st.integers(0, len(selections))),
                FieldNode(
                    name=NameNode(value="__typename"),
                    arguments=(),
                    directives=self.directives(),
                ),
            )
        if selections and draw(st.integers(0, 2)) == 0:
            name = self.name("F")
            self.fragments.append(
                FragmentDefinitionNode(
                    name=NameNode(value=name),
                    type_condition=NamedTypeNode(name=NameNode(value=parent.name)),
                    directives=(),
                    selection_set=SelectionSetNode(selections=tuple(selections)),
                )
            )
            spread = FragmentSpreadNode(name=NameNode(value=name), directives=())
            selections = [spread, spread] if draw(st.booleans()) else [spread]
        return SelectionSetNode(selections=tuple(selections))

    def field(self, node: FieldNode, parent: Any) -> FieldNode:
        definition = parent.fields[node.name.value]
        arguments = tuple(
            ArgumentNode(
                name=a.name,
                value=self.argument(a.name.value, a.value, definition.args[a.name.value].type),
            )
            for a in node.arguments or ()
        )
        alias = node.alias
        if alias is None and self.draw(st.integers(0, 7)) == 0:
            alias = NameNode(value=self.name("a"))
        return FieldNode(
            alias=alias,
            name=node.name,
            arguments=arguments,
            directives=self.directives(),
            selection_set=(
                self.selection_set(node.selection_set, get_named_type(definition.type))
                if node.selection_set
                else None
            ),
        )

    def directives(self) -> tuple[DirectiveNode, ...]:
        which = self.draw(st.integers(0, 7)) if self.with_directives else 2
        if which > 1:
            return ()
        value: Any = BooleanValueNode(value=self.draw(st.booleans()))
        if self.draw(st.booleans()):
            name = self.name("d")
            self.variables[name] = value.value
            self.definitions.append(
                VariableDefinitionNode(
                    variable=VariableNode(name=NameNode(value=name)),
                    type=parse_type("Boolean!"),
                    directives=(),
                )
            )
            value = VariableNode(name=NameNode(value=name))
        directive = "skip" if which == 0 else "include"
        return (
            DirectiveNode(
                name=NameNode(value=directive),
                arguments=(ArgumentNode(name=NameNode(value="if"), value=value),),
            ),
        )

    def argument(self, name: str, value: Any, graphql_type: Any) -> Any:
        value = self.realistic(name, value)
        if self.draw(st.integers(0, 3)) == 0:  # as a variable of the argument's own type
            variable = self.name("v")
            self.variables[variable] = value_from_ast_untyped(value)
            self.definitions.append(
                VariableDefinitionNode(
                    variable=VariableNode(name=NameNode(value=variable)),
                    type=parse_type(str(graphql_type)),
                    directives=(),
                )
            )
            return VariableNode(name=NameNode(value=variable))
        return value

    def realistic(self, name: str, value: Any) -> Any:
        if isinstance(value, ObjectValueNode):
            return ObjectValueNode(
                fields=tuple(
                    ObjectFieldNode(name=f.name, value=self.realistic(f.name.value, f.value))
                    for f in value.fields
                )
            )
        if isinstance(value, ListValueNode):
            return ListValueNode(values=tuple(self.realistic(name, v) for v in value.values))
        choices = self.values.get(name)
        if (
            choices
            and isinstance(value, (StringValueNode, IntValueNode))
            and self.draw(st.integers(0, 4))
        ):
            chosen = self.draw(st.sampled_from(choices))
            if isinstance(value, IntValueNode) and isinstance(chosen, int):
                return IntValueNode(value=str(chosen))
            if isinstance(value, StringValueNode) and isinstance(chosen, str):
                return StringValueNode(value=chosen)
        return value


def run_equivalence(database_url: str, examples: int) -> None:
    loop = asyncio.new_event_loop()
    app = create_app(Settings(database_url=database_url, pool_min_size=1, pool_max_size=4))
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    try:
        project = loop.run_until_complete(make_project(database_url, "acme"))
        seeded = loop.run_until_complete(_seed(http, project.key, project.editor))
        endpoint = app.state.graphql
        executor = endpoint.executor

        async def principal() -> Any:
            conn = await connect(database_url)
            try:
                return await api_keys.principal_for_token(conn, project.viewer)
            finally:
                await conn.close()

        viewer = loop.run_until_complete(principal())

        def context() -> Context:
            return Context(db=app.state.db, settings=endpoint.settings, principal=viewer)

        schema = build_schema()._schema
        tally = {"fast": 0, "fallback": 0, "graphql-core": 0, "errors": 0, "examples": 0}

        async def both(query: str, variables: dict[str, Any]) -> tuple[bytes, bytes]:
            prepared = executor.prepare(query)
            assume(prepared.document is not None)  # past a guard (depth, aliases, size)
            fast_before, fallbacks_before = executor.fast_runs, executor.fallbacks
            fast = await executor.execute(
                prepared, variables=variables, operation_name=None, context=context()
            )
            tally["fast"] += executor.fast_runs - fast_before
            tally["fallback"] += executor.fallbacks - fallbacks_before
            tally["graphql-core"] += (
                executor.fast_runs == fast_before and executor.fallbacks == fallbacks_before
            )
            standard = await executor.execute_standard(
                prepared.document, variables=variables, operation_name=None, context=context()
            )
            tally["errors"] += bool(standard.errors)
            tally["examples"] += 1
            return _dumps(fast.formatted), _dumps(standard.formatted)

        generated = queries(
            export_sdl(), custom_scalars=scalars(), print_ast=lambda document: document
        )

        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        @given(document=generated, data=st.data())
        def check(document: DocumentNode, data: Any) -> None:
            query, variables = Decorate(schema, data.draw, project.key, seeded).document(document)
            try:
                fast, standard = loop.run_until_complete(both(query, variables))
            except (
                asyncio.CancelledError
            ) as error:  # a BaseException: hypothesis would not shrink it
                raise AssertionError(f"cancelled: {query} {variables}") from error
            assert fast == standard, (query, variables, fast, standard)

        check()
        print(f"fast path equivalence: {tally}")
        # The property is about the fast path: most examples must have taken it, and some
        # must have fallen back on errors.
        assert tally["examples"] >= examples * 0.8, tally
        assert tally["fast"] >= tally["examples"] * 0.3, tally
        assert tally["errors"] >= 10, tally
    finally:
        loop.run_until_complete(http.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()


def test_fast_path_answers_generated_queries_exactly_as_graphql_core(database_url):
    run_equivalence(database_url, examples=300)


@pytest.mark.slow
def test_fast_path_answers_generated_queries_exactly_as_graphql_core_at_length(
    database_url, request
):
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("long-running; select with -m slow")
    run_equivalence(database_url, examples=3000)
