"""The size of a query is measured with its fragments expanded, in time linear in the document."""

import asyncio
import time

import httpx
from graphql import get_introspection_query, parse
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.scenarios import LIST, ONE
from schema.build import build_schema
from schema.execution import Executor, QueryLimits, selection_size
from schema.fast_path import compile_plan
from tests.conftest import make_project
from tests.serve import live_server


def doubling_fragments(n: int) -> str:
    """Fragment i spreads fragment i + 1 twice: 2^n fields once expanded, in under 1.3 KB."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n)]
    return "{ ...F0 } " + " ".join(fragments) + f" fragment F{n} on Query {{ __typename }}"


def _size(query: str) -> tuple[int, int]:
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
    operation = next(d for d in document.definitions if d.kind == "operation_definition")
    return selection_size(operation.selection_set, fragments)


def _naive_size(query: str) -> tuple[int, int]:
    """The definition: expand every spread in place (exponential, for small documents)."""
    document = parse(query)
    fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}

    def measure(selection_set) -> tuple[int, int]:
        depth = fields = 0
        for selection in selection_set.selections:
            if selection.kind == "field":
                d, f = measure(selection.selection_set) if selection.selection_set else (0, 0)
                fields += 1 + f
                if not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + d)
            else:
                inner = (
                    fragments[selection.name.value].selection_set
                    if selection.kind == "fragment_spread"
                    else selection.selection_set
                )
                d, f = measure(inner)
                depth, fields = max(depth, d), fields + f
        return depth, fields

    operation = next(d for d in document.definitions if d.kind == "operation_definition")
    return measure(operation.selection_set)


@st.composite
def fragment_dags(draw) -> str:
    """Documents whose fragments spread later fragments any number of times, over fields
    that nest (Segment.rules.rules...), so sizes and depths both vary."""
    count = draw(st.integers(1, 7))
    bodies = []
    for i in range(count):
        parts = draw(st.lists(st.sampled_from(["__typename", "logicalOp", "rules"]), max_size=3))
        spreads = draw(st.lists(st.integers(i + 1, count), max_size=3)) if i + 1 < count else []
        body = (
            " ".join("rules { __typename }" if p == "rules" else p for p in parts)
            + " "
            + " ".join(
                f"rules {{ ...F{j} }}" if draw(st.booleans()) else f"...F{j}"
                for j in spreads
                if j < count
            )
        )
        bodies.append(f"fragment F{i} on ConditionGroup {{ __typename {body} }}")
    return '{ segment(projectKey: "p", key: "k") { rules { ...F0 } } } ' + " ".join(bodies)


@settings(max_examples=300, deadline=None)
@given(query=fragment_dags())
def test_expanded_size_is_what_expanding_every_spread_gives(query):
    assert _size(query) == _naive_size(query)


def test_admin_and_introspection_queries_fit_well_within_the_field_limit():
    limit = QueryLimits().max_fields
    # GraphiQL, graphql-codegen and graphql-inspector send graphql-js' introspection query
    # with some of these options; every option on selects the most.
    full = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        one_of=True,
    )
    sizes = {
        name: _size(q)[1] for name, q in [("introspection", full), ("list", LIST), ("one", ONE)]
    }
    assert all(size * 4 < limit for size in sizes.values()), sizes


def _fastest(work, tries: int = 3) -> float:
    """The best of a few runs: other suites share the machine's two cores."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def test_doubling_fragments_are_refused_in_linear_time():
    schema = build_schema()
    timings = {}
    for n in (20, 30, 60):
        # A new executor each time: nothing cached.
        prepared = Executor(schema, QueryLimits()).prepare(doubling_fragments(n))
        assert prepared.document is None
        assert prepared.errors[0].extensions == {"code": "BAD_USER_INPUT"}
        query = doubling_fragments(n)
        timings[n] = _fastest(lambda: Executor(schema, QueryLimits()).prepare(query))  # noqa: B023
    # Exponential work would take minutes at 30 and forever at 60. The bound is loose enough
    # for a loaded machine; the ratio shows the growth is (about) linear in n.
    assert max(timings.values()) < 0.25, timings
    assert timings[60] < 6 * timings[20] + 0.01, timings


def test_the_fast_path_collects_each_fragment_once():
    executor = Executor(build_schema(), QueryLimits(max_fields=2**40))
    # 22: the old collection took about 6 s here (and doubles with each fragment).
    prepared = executor.prepare(doubling_fragments(22))
    assert prepared.document is not None
    assert compile_plan(executor.schema, prepared.document, None) is not None
    assert _fastest(lambda: compile_plan(executor.schema, prepared.document, None)) < 0.05


async def test_a_fragment_bomb_is_a_bad_user_input_request_error(gql, client, project):
    await gql("{ __typename }")  # the token is cached: what follows times the guard
    for accept, status in [("application/json", 200), ("application/graphql-response+json", 400)]:
        started = time.perf_counter()
        response = await client.post(
            "/graphql",
            json={"query": doubling_fragments(30)},
            headers={"Authorization": f"Bearer {project.editor}", "Accept": accept},
        )
        elapsed = time.perf_counter() - started
        body = response.json()
        assert response.status_code == status
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "1073741824 fields" in body["errors"][0]["message"]
        assert elapsed < 0.25, elapsed  # exponential work would take minutes


async def test_introspection_with_every_option_still_runs(gql):
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        one_of=True,
    )
    data = await gql(query)
    assert data["__schema"]["queryType"]["name"] == "Query"


async def test_health_answers_promptly_while_fragment_bombs_arrive(database_url):
    project = await make_project(database_url, "acme")
    with live_server(database_url) as server:
        # A stalled worker waits seconds (a bomb of 22 fragments took 7 s before the guard)
        # and fails every round; a round may also lose the CPU to other suites on a shared
        # machine, so one of three rounds must stay under 250 ms (alone here: about 75 ms).
        rounds = []
        for _ in range(3):
            rounds.append(await _health_waits(server.url, project.editor))
            if max(rounds[-1]) < 0.25:
                break
    best = min(max(waits) for waits in rounds)
    print(f"/health/live under fragment bombs: max wait {best * 1000:.1f} ms")
    assert all(len(waits) >= 10 for waits in rounds)
    assert best < 0.25, f"/health/live waited {best * 1000:.0f} ms"


async def _health_waits(url: str, token: str) -> list[float]:
    """Seconds each /health/live took while a client sent fragment bombs for 1.5 s."""
    auth = {"Authorization": f"Bearer {token}"}
    waits: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await http.post("/graphql", json={"query": "{ __typename }"}, headers=auth)
        done = asyncio.Event()

        async def poll() -> None:
            while not done.is_set():
                started = time.perf_counter()
                assert (await http.get("/health/live")).status_code == 200
                waits.append(time.perf_counter() - started)
                await asyncio.sleep(0.002)

        async def attack() -> None:
            until = time.monotonic() + 1.5
            while time.monotonic() < until:
                response = await http.post(
                    "/graphql", json={"query": doubling_fragments(30)}, headers=auth
                )
                assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

        poller = asyncio.create_task(poll())
        try:
            await attack()
        finally:
            done.set()
            await poller
    return waits
