"""Reading segments: the keyset-paginated `segments` connection, search and filters,
`segment(projectKey, key)`, `node`, and tenant isolation (DESIGN §3, §4, §8)."""

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from db.pool import connect
from tests.conftest import GraphQLClient

ORDERS = [
    (field, direction)
    for field in ("NAME", "KEY", "CREATED_AT", "UPDATED_AT")
    for direction in ("ASC", "DESC")
]

PAGE = """
query($p: String!, $first: Int, $after: String, $last: Int, $before: String,
      $search: String, $order: SegmentOrder, $filter: SegmentFilter) {
  segments(projectKey: $p, first: $first, after: $after, last: $last, before: $before,
           search: $search, orderBy: $order, filter: $filter) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id key name deleted } }
  }
}
"""

CREATE_SEGMENT = """
mutation($input: CreateSegmentInput!) {
  createSegment(input: $input) { segment { id key } userErrors { code message } }
}
"""

DELETE_SEGMENT = """
mutation($input: DeleteSegmentInput!) {
  deleteSegment(input: $input) { deletedSegmentId userErrors { code message } }
}
"""


@dataclass
class Row:
    id: int
    key: str
    name: str
    created_at: datetime
    updated_at: datetime
    deleted: bool

    def sort_value(self, field: str):
        return getattr(self, field.lower())


async def seed(database_url: str, project_id: int, count: int = 65) -> list[Row]:
    """`count` segments whose names, creation and update times repeat (so ties must break
    by id), whose key order differs from id order, and every ninth of them deleted."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    values = [
        (
            project_id,
            f"k{(i * 37) % count:03d}",
            f"n{(i * 7) % 20:02d}",
            base + timedelta(seconds=(i * 11) % 25),
            base + timedelta(minutes=(i * 3) % 40),
            base + timedelta(days=1) if i % 9 == 4 else None,
        )
        for i in range(count)
    ]
    conn = await connect(database_url)
    try:
        rows = await conn.fetchmany(
            """
            INSERT INTO segments (project_id, key, name, created_at, updated_at, deleted_at, salt)
            VALUES ($1, $2, $3, $4, $5, $6, $2)
            RETURNING id, key, name, created_at, updated_at, deleted_at IS NOT NULL AS deleted
            """,
            values,
        )
    finally:
        await conn.close()
    return [Row(**dict(r)) for r in rows]


def expected_order(rows: list[Row], field: str, direction: str) -> list[str]:
    ordered = sorted(rows, key=lambda r: (r.sort_value(field), r.id), reverse=direction == "DESC")
    return [r.key for r in ordered]


async def page(gql: GraphQLClient, project_key: str, **args) -> dict:
    data = await gql(PAGE, {"p": project_key, **args})
    return data["segments"]


def keys(connection: dict) -> list[str]:
    return [edge["node"]["key"] for edge in connection["edges"]]


def assert_cursors_consistent(connection: dict) -> None:
    edges = connection["edges"]
    info = connection["pageInfo"]
    assert info["startCursor"] == (edges[0]["cursor"] if edges else None)
    assert info["endCursor"] == (edges[-1]["cursor"] if edges else None)


async def walk_forward(
    gql, project_key: str, order: dict, size: int, expected: list[str], **args
) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        conn = await page(gql, project_key, first=size, after=after, order=order, **args)
        assert conn["totalCount"] == len(expected)
        assert_cursors_consistent(conn)
        got = keys(conn)
        assert got == expected[len(seen) : len(seen) + size]
        assert conn["pageInfo"]["hasPreviousPage"] is (len(seen) > 0)
        seen += got
        assert conn["pageInfo"]["hasNextPage"] is (len(seen) < len(expected))
        if not conn["pageInfo"]["hasNextPage"]:
            return seen
        after = conn["pageInfo"]["endCursor"]


async def walk_backward(
    gql, project_key: str, order: dict, size: int, expected: list[str], **args
) -> list[str]:
    seen: list[str] = []
    before = None
    while True:
        conn = await page(gql, project_key, last=size, before=before, order=order, **args)
        assert conn["totalCount"] == len(expected)
        assert_cursors_consistent(conn)
        got = keys(conn)
        end = len(expected) - len(seen)
        assert got == expected[max(0, end - size) : end]
        assert conn["pageInfo"]["hasNextPage"] is (len(seen) > 0)
        seen = got + seen
        assert conn["pageInfo"]["hasPreviousPage"] is (len(seen) < len(expected))
        if not conn["pageInfo"]["hasPreviousPage"]:
            return seen
        before = conn["pageInfo"]["startCursor"]


@pytest.mark.parametrize(("field", "direction"), ORDERS, ids=[f"{f}-{d}" for f, d in ORDERS])
async def test_forward_and_backward_walks_return_every_live_segment_once_in_order(
    gql, project, database_url, field, direction
):
    rows = await seed(database_url, project.id)
    expected = expected_order([r for r in rows if not r.deleted], field, direction)
    order = {"field": field, "direction": direction}

    forward = await walk_forward(gql, project.key, order, 7, expected)
    backward = await walk_backward(gql, project.key, order, 7, expected)

    assert forward == expected
    assert backward == forward
    assert len(set(forward)) == len(forward) == 58

    # With includeDeleted the same walks also cover the deleted segments, in place.
    everything = expected_order(rows, field, direction)
    flt = {"includeDeleted": True}
    assert await walk_forward(gql, project.key, order, 20, everything, filter=flt) == everything
    assert await walk_backward(gql, project.key, order, 20, everything, filter=flt) == everything


async def test_default_order_is_name_ascending_with_ties_by_id(gql, project, database_url):
    rows = await seed(database_url, project.id)
    live = [r for r in rows if not r.deleted]
    conn = await page(gql, project.key, first=100)
    assert keys(conn) == expected_order(live, "NAME", "ASC")


async def test_a_cursor_stays_valid_while_rows_are_inserted_and_deleted_around_it(
    gql, project, database_url
):
    rows = await seed(database_url, project.id)
    order = {"field": "NAME", "direction": "ASC"}
    first = await page(gql, project.key, first=10, order=order)
    cursor = first["pageInfo"]["endCursor"]
    expected_next = expected_order([r for r in rows if not r.deleted], "NAME", "ASC")[10:20]

    # New segments that sort before the cursor, and deletion of rows already read,
    # including the very row the cursor points at.
    for name in ("a first", "a second", "n00"):
        created = await gql(CREATE_SEGMENT, {"input": {"projectKey": project.key, "name": name}})
        assert created["createSegment"]["userErrors"] == []
    for edge in (first["edges"][0], first["edges"][-1]):
        deleted = await gql(DELETE_SEGMENT, {"input": {"id": edge["node"]["id"]}})
        assert deleted["deleteSegment"]["userErrors"] == []

    following = await page(gql, project.key, first=10, after=cursor, order=order)

    assert keys(following) == expected_next
    assert following["pageInfo"]["hasPreviousPage"] is True
    assert following["totalCount"] == 58 + 3 - 2

    # And walking back from the next page's start reaches the rows inserted before it.
    back = await page(
        gql, project.key, last=100, before=following["pageInfo"]["startCursor"], order=order
    )
    assert [edge["node"]["name"] for edge in back["edges"][:2]] == ["a first", "a second"]
    assert back["pageInfo"]["hasPreviousPage"] is False
    assert back["pageInfo"]["hasNextPage"] is True
    assert len(back["edges"]) == 8 + 3


async def test_a_segment_inserted_right_after_the_cursor_starts_the_next_page(
    gql, project, database_url
):
    rows = await seed(database_url, project.id)
    order = {"field": "KEY", "direction": "ASC"}
    expected = expected_order([r for r in rows if not r.deleted], "KEY", "ASC")
    first = await page(gql, project.key, first=5, order=order)
    assert keys(first) == expected[:5]

    late = expected[4] + "a"
    created = await gql(
        CREATE_SEGMENT, {"input": {"projectKey": project.key, "name": "Late", "key": late}}
    )
    assert created["createSegment"]["userErrors"] == []

    following = await page(
        gql, project.key, first=3, after=first["pageInfo"]["endCursor"], order=order
    )
    assert keys(following) == [late, *expected[5:7]]


async def test_after_and_before_together_bound_the_window(gql, project, database_url):
    rows = await seed(database_url, project.id)
    order = {"field": "UPDATED_AT", "direction": "DESC"}
    expected = expected_order([r for r in rows if not r.deleted], "UPDATED_AT", "DESC")
    everything = await page(gql, project.key, first=100, order=order)
    cursors = [edge["cursor"] for edge in everything["edges"]]
    after, before = cursors[5], cursors[15]

    window = await page(gql, project.key, first=100, after=after, before=before, order=order)
    assert keys(window) == expected[6:15]
    assert window["pageInfo"]["hasPreviousPage"] is True
    assert window["pageInfo"]["hasNextPage"] is True

    head = await page(gql, project.key, first=3, after=after, before=before, order=order)
    assert keys(head) == expected[6:9]
    tail = await page(gql, project.key, last=3, after=after, before=before, order=order)
    assert keys(tail) == expected[12:15]
    assert tail["pageInfo"]["hasPreviousPage"] is True


async def test_first_defaults_to_50(gql, project, database_url):
    await seed(database_url, project.id)
    conn = await page(gql, project.key)
    assert len(conn["edges"]) == 50
    assert conn["pageInfo"]["hasNextPage"] is True
    assert conn["totalCount"] == 58


async def test_first_and_last_of_100_are_allowed(gql, project, database_url):
    await seed(database_url, project.id)
    assert len((await page(gql, project.key, first=100))["edges"]) == 58
    assert len((await page(gql, project.key, last=100))["edges"]) == 58


async def test_first_zero_returns_no_edges_but_an_exact_page_info(gql, project, database_url):
    await seed(database_url, project.id)
    conn = await page(gql, project.key, first=0)
    assert conn["edges"] == []
    assert conn["pageInfo"]["hasNextPage"] is True
    assert conn["pageInfo"]["hasPreviousPage"] is False
    assert conn["totalCount"] == 58


async def test_page_size_out_of_bounds_is_bad_user_input(gql, project):
    for args in ({"first": 101}, {"first": -1}, {"last": 101}, {"last": -1}, {"first": 1000000}):
        errors = await gql.errors(PAGE, {"p": project.key, **args})
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", args


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


MALFORMED_CURSORS = [
    "not a cursor",
    "%%%",
    b64('["NAME"]'),
    b64('{"a": 1}'),
    b64('["NAME", 5, 1]'),
    b64('["NAME", "n01", "1"]'),
    b64('["CREATED_AT", "yesterday", 1]'),
    b64('["NAME", "n01", 9223372036854775808]'),  # id beyond bigint
    b64('["NAME", "n\\u0000", 1]'),  # NUL, which PostgreSQL text cannot hold
]


async def test_a_malformed_cursor_is_bad_user_input(gql, project, database_url):
    await seed(database_url, project.id, 3)
    for cursor in MALFORMED_CURSORS:
        for order in ({"field": "NAME"}, {"field": "CREATED_AT"}):
            errors = await gql.errors(PAGE, {"p": project.key, "after": cursor, "order": order})
            assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", (cursor, errors)
            errors = await gql.errors(
                PAGE, {"p": project.key, "last": 2, "before": cursor, "order": order}
            )
            assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", (cursor, errors)


async def test_a_cursor_of_another_order_is_bad_user_input(gql, project, database_url):
    await seed(database_url, project.id, 5)
    by_name = await page(gql, project.key, first=2)
    errors = await gql.errors(
        PAGE,
        {
            "p": project.key,
            "first": 2,
            "after": by_name["pageInfo"]["endCursor"],
            "order": {"field": "CREATED_AT"},
        },
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_cursors_are_opaque(gql, project, database_url):
    await seed(database_url, project.id, 5)
    conn = await page(gql, project.key, first=5)
    for edge in conn["edges"]:
        assert edge["node"]["name"] not in edge["cursor"]
        assert edge["node"]["key"] not in edge["cursor"]


async def create(gql, project_key: str, name: str, key: str | None = None, **fields) -> str:
    data = await gql(
        CREATE_SEGMENT, {"input": {"projectKey": project_key, "name": name, "key": key, **fields}}
    )
    assert data["createSegment"]["userErrors"] == []
    return data["createSegment"]["segment"]["id"]


@pytest.fixture
async def searchable(gql, project) -> dict[str, str]:
    """key -> id of segments whose names and keys make search cases."""
    segments = {
        "beta_testers": ("Beta Testers", ["eu", "paid"]),
        "early": ("Early Adopters", ["us"]),
        "qa_team": ("Internal staff", ["eu"]),
        "bait": ("Bait", []),
        "full": ("100% rollout", ["paid", "trial"]),
        "BIG-Accounts": ("Key accounts", ["TRIAL"]),
        "gone_beta": ("Gone Beta", ["eu"]),
        "bs": ("Back\\slash", []),
        "uber": ("Über Nutzer", []),
    }
    ids = {}
    for key, (name, tags) in segments.items():
        ids[key] = await create(gql, project.key, name, key, tags=tags)
    deleted = await gql(DELETE_SEGMENT, {"input": {"id": ids["gone_beta"]}})
    assert deleted["deleteSegment"]["userErrors"] == []
    return ids


SEARCHES = [
    ("beta", ["beta_testers"]),
    ("BETA", ["beta_testers"]),
    ("TeStEr", ["beta_testers"]),
    ("qa", ["qa_team"]),  # key only
    ("staff", ["qa_team"]),  # name only
    ("accounts", ["BIG-Accounts"]),  # both
    ("big-acc", ["BIG-Accounts"]),
    ("a_t", ["beta_testers", "qa_team"]),  # "_" is literal, not a wildcard (no "Bait")
    ("%", ["full"]),  # "%" is literal
    ("0% r", ["full"]),
    ("\\", ["bs"]),  # backslash is literal, not an escape
    ("k\\s", ["bs"]),
    ("über", ["uber"]),
    ("üBER", ["uber"]),
    ("zzz", []),
    ("", ["bait", "beta_testers", "BIG-Accounts", "bs", "early", "full", "qa_team", "uber"]),
]


async def test_search_matches_name_or_key_case_insensitively(gql, project, searchable):
    for search, expected in SEARCHES:
        conn = await page(gql, project.key, search=search, order={"field": "KEY"})
        assert sorted(keys(conn), key=str.lower) == sorted(expected, key=str.lower), search
        assert conn["totalCount"] == len(expected), search


async def test_search_sees_deleted_segments_only_with_include_deleted(gql, project, searchable):
    conn = await page(
        gql, project.key, search="beta", order={"field": "KEY"}, filter={"includeDeleted": True}
    )
    assert keys(conn) == ["beta_testers", "gone_beta"]
    assert [e["node"]["deleted"] for e in conn["edges"]] == [False, True]
    assert conn["totalCount"] == 2


TAG_FILTERS = [
    (["eu"], ["beta_testers", "qa_team"]),
    (["eu", "trial"], ["beta_testers", "full", "qa_team"]),
    (["paid"], ["beta_testers", "full"]),
    (["TRIAL"], ["BIG-Accounts"]),  # tags compare exactly
    (["nope"], []),
]


async def test_tags_filter_keeps_segments_carrying_any_of_the_tags(gql, project, searchable):
    for tags, expected in TAG_FILTERS:
        conn = await page(gql, project.key, order={"field": "NAME"}, filter={"tags": tags})
        assert sorted(keys(conn)) == sorted(expected), tags
        assert conn["totalCount"] == len(expected), tags


async def test_search_and_tags_combine(gql, project, searchable):
    conn = await page(
        gql, project.key, search="a", filter={"tags": ["paid"]}, order={"field": "KEY"}
    )
    assert keys(conn) == ["beta_testers"]
    conn = await page(
        gql,
        project.key,
        search="a",
        filter={"tags": ["eu"], "includeDeleted": True},
        order={"field": "KEY"},
    )
    assert keys(conn) == ["beta_testers", "gone_beta", "qa_team"]


async def test_search_pages_with_cursors(gql, project, searchable):
    order = {"field": "NAME", "direction": "DESC"}
    matching = await page(gql, project.key, search="a", order=order, first=100)
    names = [e["node"]["name"] for e in matching["edges"]]
    assert names == [
        "Key accounts",
        "Internal staff",
        "Early Adopters",
        "Beta Testers",
        "Bait",
        "Back\\slash",
    ]
    first = await page(gql, project.key, search="a", order=order, first=2)
    rest = await page(
        gql, project.key, search="a", order=order, first=2, after=first["pageInfo"]["endCursor"]
    )
    last = await page(
        gql, project.key, search="a", order=order, first=2, after=rest["pageInfo"]["endCursor"]
    )
    assert [e["node"]["name"] for e in first["edges"] + rest["edges"] + last["edges"]] == names
    assert last["pageInfo"]["hasNextPage"] is False
    assert rest["pageInfo"]["hasNextPage"] is True
    assert rest["pageInfo"]["hasPreviousPage"] is True


LOOKUP = """
query($p: String!, $key: String!, $id: ID!) {
  segment(projectKey: $p, key: $key) { id key deleted }
  node(id: $id) { id ... on Segment { key } }
}
"""


async def test_deleted_segment_is_hidden_from_segment_and_node(gql, project):
    seg = await create(gql, project.key, "Doomed", "doomed")
    before = await gql(LOOKUP, {"p": project.key, "key": "doomed", "id": seg})
    assert before == {
        "segment": {"id": seg, "key": "doomed", "deleted": False},
        "node": {"id": seg, "key": "doomed"},
    }

    deleted = await gql(DELETE_SEGMENT, {"input": {"id": seg}})
    assert deleted["deleteSegment"]["userErrors"] == []

    assert await gql(LOOKUP, {"p": project.key, "key": "doomed", "id": seg}) == {
        "segment": None,
        "node": None,
    }
    assert keys(await page(gql, project.key)) == []
    assert (await page(gql, project.key))["totalCount"] == 0
    listed = await page(gql, project.key, filter={"includeDeleted": True})
    assert [(e["node"]["id"], e["node"]["deleted"]) for e in listed["edges"]] == [(seg, True)]
    assert listed["totalCount"] == 1


async def test_segment_by_key_finds_the_live_segment_that_reused_a_deleted_key(gql, project):
    old = await create(gql, project.key, "Old", "shared")
    assert (await gql(DELETE_SEGMENT, {"input": {"id": old}}))["deleteSegment"]["userErrors"] == []
    new = await create(gql, project.key, "New", "shared")

    data = await gql(LOOKUP, {"p": project.key, "key": "shared", "id": old})
    assert data["segment"]["id"] == new
    assert data["node"] is None
    both = await page(gql, project.key, filter={"includeDeleted": True}, order={"field": "NAME"})
    assert [(e["node"]["name"], e["node"]["deleted"]) for e in both["edges"]] == [
        ("New", False),
        ("Old", True),
    ]


async def test_include_deleted_false_is_the_default(gql, project, searchable):
    explicit = await page(
        gql, project.key, filter={"includeDeleted": False}, order={"field": "KEY"}
    )
    default = await page(gql, project.key, filter={}, order={"field": "KEY"})
    assert keys(explicit) == keys(default)
    assert "gone_beta" not in keys(default)


NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Segment { key }
    ... on Flag { key }
    ... on Environment { key }
    ... on Project { key }
  }
}
"""


async def test_node_round_trips_segment_flag_environment_and_project(gql, project):
    segment = await create(gql, project.key, "Beta", "beta")
    flag = await gql(
        "mutation($i: CreateFlagInput!) { createFlag(input: $i) { flag { id } userErrors { code } } }",
        {"i": {"projectKey": project.key, "key": "checkout", "name": "Checkout"}},
    )
    proj = await gql(
        "query($p: String!) { project(key: $p) { id key environments { id key } } }",
        {"p": project.key},
    )
    objects = [
        (segment, "Segment", "beta"),
        (flag["createFlag"]["flag"]["id"], "Flag", "checkout"),
        (proj["project"]["id"], "Project", project.key),
        *[(env["id"], "Environment", env["key"]) for env in proj["project"]["environments"]],
    ]
    assert [env["key"] for env in proj["project"]["environments"]] == ["production", "staging"]
    for global_id, type_name, key in objects:
        data = await gql(NODE, {"id": global_id})
        assert data["node"] == {"__typename": type_name, "id": global_id, "key": key}


async def test_node_of_an_unknown_id_is_null(gql, project):
    for bad_id in (
        "",
        "nonsense",
        b64("Segment:9999"),
        b64("Flag:0"),
        b64("Blah:1"),
        b64("Segment:99999999999999999999"),
    ):
        assert await gql(NODE, {"id": bad_id}) == {"node": None}, bad_id


async def test_segment_project_is_the_owning_project(gql, project):
    await create(gql, project.key, "Beta", "beta")
    data = await gql(
        'query($p: String!) { segment(projectKey: $p, key: "beta") { project { id key name } } }',
        {"p": project.key},
    )
    assert data["segment"]["project"]["key"] == project.key
    assert data["segment"]["project"]["name"] == "Acme"


async def test_another_projects_segments_are_invisible(gql, client, project, other_project):
    theirs = GraphQLClient(client, other_project.editor)
    their_segment = await create(theirs, other_project.key, "Secret", "shared")
    mine = await create(gql, project.key, "Mine", "shared")
    their_project = (
        await theirs(
            "query($p: String!) { project(key: $p) { id environments { id } } }",
            {"p": other_project.key},
        )
    )["project"]

    assert await gql(LOOKUP, {"p": other_project.key, "key": "shared", "id": their_segment}) == {
        "segment": None,
        "node": None,
    }
    listed = await page(gql, other_project.key, filter={"includeDeleted": True})
    assert listed["edges"] == [] and listed["totalCount"] == 0
    assert listed["pageInfo"]["hasNextPage"] is False
    for foreign in [their_project["id"], *[e["id"] for e in their_project["environments"]]]:
        assert await gql(NODE, {"id": foreign}) == {"node": None}
    assert (
        await gql("query($p: String!) { project(key: $p) { id } }", {"p": other_project.key})
    ) == {"project": None}
    # Our own segment of the same key is unaffected, and theirs never leaks into our list.
    own = await gql(LOOKUP, {"p": project.key, "key": "shared", "id": mine})
    assert own["segment"]["id"] == mine
    assert [e["node"]["id"] for e in (await page(gql, project.key, search="shared"))["edges"]] == [
        mine
    ]


async def test_a_cursor_from_another_project_reveals_nothing(
    gql, client, project, other_project, database_url
):
    theirs = GraphQLClient(client, other_project.editor)
    await seed(database_url, other_project.id, 10)
    their_page = await page(theirs, other_project.key, first=3)
    mine = await page(gql, project.key, first=3, after=their_page["pageInfo"]["endCursor"])
    assert mine["edges"] == []
    assert mine["totalCount"] == 0


def _raw_id(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def test_each_object_has_one_global_id(gql, project):
    import base64

    segment = await create(gql, project.key, "Only", "only")
    db_id = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode().split(":")[1]
    assert (await gql(NODE, {"id": segment}))["node"]["key"] == "only"
    other_spellings = [
        _raw_id(f"Segment:0{db_id}"),
        _raw_id(f"Segment: {db_id}"),
        _raw_id(f"Segment:{db_id} "),
        _raw_id(f"Segment:+{db_id}"),
        _raw_id("Segment:" + "".join(chr(0x0660 + int(d)) for d in db_id)),  # Arabic-Indic
        _raw_id(f"Segment:{int(db_id):_}") if int(db_id) >= 1000 else _raw_id(f"Segment:{db_id}_"),
        segment + "=" * (-len(segment) % 4 or 4),
        base64.b64encode(f"Segment:{db_id}".encode()).decode(),
    ]
    for spelling in other_spellings:
        if spelling == segment:
            continue
        assert (await gql(NODE, {"id": spelling}))["node"] is None, spelling
