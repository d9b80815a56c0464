"""Memory stays bounded whatever clients send: the parse cache is bounded in bytes and keeps no
failures, and comments neither count as tokens nor stay in memory as tokens."""

import time

import httpx
import orjson
import pytest
from graphql import GraphQLError, Lexer, Source, TokenKind
from hypothesis import given, settings
from hypothesis import strategies as st

from schema.build import build_schema
from schema.execution import Executor, QueryLimits, blank_comments
from tests.conftest import make_project
from tests.serve import live_server

MAX_BODY = 1024 * 1024


def _lexed(text: str) -> tuple[list[tuple], str | None]:
    """Every token but comments (kind, start, end, line, column, value), and the syntax
    error the lexer stops at, if any."""
    lexer = Lexer(Source(text))
    tokens = []
    try:
        while True:
            token = lexer.advance()
            tokens.append(
                (token.kind, token.start, token.end, token.line, token.column, token.value)
            )
            if token.kind is TokenKind.EOF:
                return tokens, None
    except GraphQLError as error:
        return tokens, f"{error.message} at {error.locations}"


PIECES = st.sampled_from(
    [
        " ",
        "\n",
        "\r\n",
        "\r",
        "\t",
        ",",
        "\ufeff",
        "\v",
        "#",
        "# c",
        '"',
        '"""',
        "\\",
        '\\"',
        '\\"""',
        "{",
        "}",
        "a",
        "x1",
        "$v",
        "...",
        "@skip",
        "(",
        ")",
        ":",
        "12",
        "-3.5e1",
        "é",
        "😀",
        "\ud800",
        "\x01",
        '"s #"',
        '"""b # """',
        '#"',
        '# """',
    ]
)


@settings(max_examples=500, deadline=None)
@given(text=st.lists(PIECES | st.text(max_size=3), max_size=40).map("".join))
def test_blanking_comments_keeps_every_token_location_and_error(text):
    blanked = blank_comments(text, max_tokens=2000)
    assert len(blanked) == len(text)
    assert _lexed(blanked) == _lexed(text)
    assert "#" not in blanked or _lexed(text)[1] is not None or '"' in text


def test_comments_do_not_count_as_tokens_and_are_not_kept():
    executor = Executor(build_schema(), QueryLimits(max_tokens=2000))
    tags = " ".join('"t"' for _ in range(1981))  # 2000 tokens in all (as in test_guards)
    query = f'{{ segments(projectKey: "acme" filter: {{tags: [{tags}]}}) {{ totalCount }} }}\n'
    query += "#\n" * 400_000
    started = time.perf_counter()
    prepared = executor.prepare(query)
    assert prepared.errors == [] and prepared.document is not None
    assert time.perf_counter() - started < 2  # about 0.2 s; the lexer alone took a second
    token, comments = prepared.document.loc.start_token, 0
    while token is not None:
        comments += token.kind is TokenKind.COMMENT
        token = token.next
    assert comments == 0
    # Still counted: the tokens themselves.
    assert executor.prepare(query.replace('"t"', '"t" "u"', 1)).parse_failed


def test_failures_are_not_cached_and_the_cache_is_bounded_in_bytes():
    executor = Executor(
        build_schema(), QueryLimits(), cache_entries=50, cache_bytes=8 * 1024 * 1024
    )
    for i in range(40):
        assert executor.prepare(f"{{ nope{i} }}" + " " * 100_000).errors
        assert executor.prepare("{ __typename" + " " * 100_000).parse_failed
    assert len(executor._prepared) == 0 and executor.cached_bytes == 0
    for i in range(200):
        assert not executor.prepare(f"{{ __typename }} #{i}" + " " * 200_000).errors
        assert executor.cached_bytes <= 8 * 1024 * 1024
    assert 0 < len(executor._prepared) <= 50
    small = [executor.prepare(f"{{ a{i}: __typename }}") for i in range(100)]
    assert len(executor._prepared) == 50
    assert executor.prepare("{ a99: __typename }") is small[-1]  # still cached, same object


def flood(count: int) -> list[str]:
    """`count` distinct queries just under the body limit (in JSON): valid and failing ones,
    padded with comments, with white space, or with both."""
    queries = []
    for i in range(count):
        kind = i % 4
        head = [
            f"{{ __typename }} # {i}\n",
            f"{{ __typename a{i}: __typename }}",
            f"{{ nope{i} }}\n",  # fails validation
            f"{{ __typename {i} }}",  # fails parsing, at the end of the padding below
        ][kind]
        room = MAX_BODY - 200 - len(head)
        # "\n" takes 2 bytes in JSON.
        padding = ("#" + "x" * 60 + "\n") * (room // 63) if kind % 2 == 0 else " " * room
        queries.append(head + padding if kind != 3 else padding + head)
    return queries


def _body(query: str) -> bytes:
    body = orjson.dumps({"query": query})
    assert len(body) <= MAX_BODY
    return body


async def _rss_growth(database_url: str, count: int) -> tuple[float, float]:
    project = await make_project(database_url, "acme")
    auth = {"Authorization": f"Bearer {project.editor}", "Content-Type": "application/json"}
    with live_server(database_url) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            for query in flood(40):  # the allocator's working set for 1 MB requests
                await http.post("/graphql", content=_body("# warm-up\n" + query), headers=auth)
            before = server.rss_mb()
            for query in flood(count):
                response = await http.post("/graphql", content=_body(query), headers=auth)
                assert response.status_code == 200, response.text[:200]
            after = server.rss_mb()
    print(f"RSS after {count} distinct ~1 MiB queries: {before:.0f} MB -> {after:.0f} MB")
    return before, after


async def test_a_flood_of_distinct_1_mib_queries_keeps_memory_bounded(database_url):
    before, after = await _rss_growth(database_url, 160)
    assert after - before < 64, f"RSS {before:.0f} MB -> {after:.0f} MB"


@pytest.mark.slow
async def test_two_thousand_distinct_1_mib_queries_keep_memory_bounded(database_url, request):
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("about 8 minutes; select with -m slow")
    before, after = await _rss_growth(database_url, 2000)
    assert after - before < 64, f"RSS {before:.0f} MB -> {after:.0f} MB"
