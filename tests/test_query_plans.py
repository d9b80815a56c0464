"""At 100,000 segments in a project, the statements behind `segments` use indexes and never
scan the whole segments table (DESIGN §2, §4): the first page in every order, a deep
keyset page, and search.

The SQL is the app's own: the db functions run on a connection that records each statement
with its arguments, and every recorded statement is EXPLAINed with those arguments.
"""

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from db import segments as db_segments
from db.pool import connect
from db.segments import ORDER_COLUMNS, SegmentFilter
from schema.pagination import decode_cursor, encode_cursor, page_request, text_value, time_value

SEGMENTS = 100_000
ORDERS = [(field, desc) for field in ORDER_COLUMNS for desc in (False, True)]


@pytest.fixture
async def big(database_url: str, project) -> Any:
    """A connection to a database whose project holds 100,000 segments, vacuumed, plus a few
    rows of another project so the project filter is not trivially true."""
    conn = await connect(database_url)
    other = await conn.fetchval(
        "INSERT INTO projects (key, name) VALUES ('other', 'Other') RETURNING id"
    )
    await conn.execute(
        """
        INSERT INTO segments (project_id, key, name, tags, created_at, updated_at, deleted_at, salt)
        SELECT $1,
               'seg_' || i,
               'Audience ' || md5(i::text),
               ARRAY['tag' || (i % 40)],
               timestamptz '2026-01-01' + (i::bigint * 7919 % $2) * interval '1 second',
               timestamptz '2026-01-01' + (i::bigint * 104729 % $2) * interval '1 millisecond',
               CASE WHEN i % 100 = 0 THEN timestamptz '2026-06-01' END,
               'seg_' || i
        FROM generate_series(1, $2) AS i
        """,
        project.id,
        SEGMENTS,
    )
    await conn.execute(
        """
        INSERT INTO segments (project_id, key, name, salt)
        SELECT $1, 'other_' || i, 'Other ' || i, 'other_' || i FROM generate_series(1, 500) AS i
        """,
        other,
    )
    # VACUUM too, as autovacuum does after a bulk insert: index-only scans need the
    # visibility map it sets.
    await conn.execute("VACUUM ANALYZE segments")
    yield conn
    await conn.close()


class Recorder:
    """Records (sql, args) of every statement a connection runs."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.statements: list[tuple[str, tuple]] = []

    def __call__(self, record: Any) -> None:
        self.statements.append((record.query, record.args))

    async def run(self, call: Any) -> list[tuple[str, tuple]]:
        self.statements.clear()
        self.conn.add_query_logger(self)
        try:
            await call
        finally:
            self.conn.remove_query_logger(self)
        # Query loggers are called soon after the statement: let them run.
        for _ in range(3):
            await asyncio.sleep(0)
        return list(self.statements)


def plan_nodes(plan: dict) -> list[dict]:
    nodes = [plan]
    for child in plan.get("Plans", []):
        nodes += plan_nodes(child)
    return nodes


async def explain(conn: asyncpg.Connection, sql: str, args: tuple) -> list[dict]:
    raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    plan = json.loads(raw) if isinstance(raw, str) else raw
    return plan_nodes(plan[0]["Plan"])


def summary(nodes: list[dict]) -> list[str]:
    return [
        f"{n['Node Type']}"
        + (f" on {n['Relation Name']}" if "Relation Name" in n else "")
        + (f" using {n['Index Name']}" if "Index Name" in n else "")
        for n in nodes
    ]


def assert_uses_segment_indexes(nodes: list[dict], sql: str) -> set[str]:
    seq_scans = [
        n for n in nodes if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "segments"
    ]
    assert not seq_scans, f"sequential scan of segments in\n{sql}\n{summary(nodes)}"
    indexes = {n["Index Name"] for n in nodes if n.get("Index Name", "").startswith("segments")}
    assert indexes, f"no index of segments used in\n{sql}\n{summary(nodes)}"
    return indexes


PLANS_SEEN: dict[str, list[str]] = {}


async def assert_statements_use_indexes(conn, recorder: Recorder, label: str, call: Any) -> None:
    statements = await recorder.run(call)
    assert statements, label
    for i, (sql, args) in enumerate(statements):
        nodes = await explain(conn, sql, args)
        assert_uses_segment_indexes(nodes, sql)
        PLANS_SEEN[f"{label} #{i}"] = summary(nodes)


def cursor_for(field: str, row: asyncpg.Record) -> tuple[Any, int]:
    """A cursor as a client would send it back, decoded as the app decodes it."""
    column = ORDER_COLUMNS[field]
    parse = text_value if field in ("NAME", "KEY") else time_value
    return decode_cursor(encode_cursor(field, row[column], row["id"]), field, parse)


async def test_first_page_deep_page_and_search_use_indexes_at_100k_segments(big, project):
    conn = big
    recorder = Recorder(conn)
    live = SegmentFilter()

    # The first page's totalCount counts the project's live segments from an index.
    await assert_statements_use_indexes(
        conn, recorder, "totalCount", db_segments.segment_listing(project.id, live).count(conn)
    )

    for field, desc in ORDERS:
        column = ORDER_COLUMNS[field]
        label = f"{field} {'DESC' if desc else 'ASC'}"
        first = page_request(
            first=50, after=None, last=None, before=None, column=column, descending=desc
        )
        await assert_statements_use_indexes(
            conn,
            recorder,
            f"first page {label}",
            db_segments.segment_listing(project.id, live).page(conn, first),
        )

        # A deep page: after the 50,000th live row in this order, and its hasPreviousPage.
        direction = "DESC" if desc else "ASC"
        row = await conn.fetchrow(
            f"""
            SELECT id, {column} FROM segments
            WHERE project_id = $1 AND deleted_at IS NULL
            ORDER BY {column} {direction}, id {direction}
            OFFSET 50000 LIMIT 1
            """,
            project.id,
        )
        deep = page_request(
            first=50,
            after=cursor_for(field, row),
            last=None,
            before=None,
            column=column,
            descending=desc,
        )
        await assert_statements_use_indexes(
            conn,
            recorder,
            f"deep page {label}",
            db_segments.segment_listing(project.id, live).page(conn, deep),
        )
        await assert_statements_use_indexes(
            conn,
            recorder,
            f"deep page hasPreviousPage {label}",
            db_segments.segment_listing(project.id, live).outside(conn, deep, True),
        )
        # And backwards from the same place (last/before).
        back = page_request(
            first=None,
            after=None,
            last=50,
            before=cursor_for(field, row),
            column=column,
            descending=desc,
        )
        await assert_statements_use_indexes(
            conn,
            recorder,
            f"deep page backwards {label}",
            db_segments.segment_listing(project.id, live).page(conn, back),
        )

    # Search for a substring of one segment's md5 name, and of keys.
    term = (await conn.fetchval("SELECT substr(md5('4242'), 3, 8)")).upper()
    for search in (term, "seg_4242"):
        flt = SegmentFilter(search=search)
        for field, desc in (("NAME", False), ("KEY", True), ("CREATED_AT", False)):
            page = page_request(
                first=50,
                after=None,
                last=None,
                before=None,
                column=ORDER_COLUMNS[field],
                descending=desc,
            )
            await assert_statements_use_indexes(
                conn,
                recorder,
                f"search {search!r} by {field}",
                db_segments.segment_listing(project.id, flt).page(conn, page),
            )
        await assert_statements_use_indexes(
            conn,
            recorder,
            f"search {search!r} totalCount",
            db_segments.segment_listing(project.id, flt).count(conn),
        )
        found = await db_segments.segment_listing(project.id, flt).page(conn, page)
        assert found, f"search {search!r} found nothing"

    tags = SegmentFilter(tags=["tag7", "tag11"])
    first = page_request(first=50, after=None, last=None, before=None, column="name")
    await assert_statements_use_indexes(
        conn,
        recorder,
        "tags filter",
        db_segments.segment_listing(project.id, tags).page(conn, first),
    )
    await assert_statements_use_indexes(
        conn,
        recorder,
        "tags filter totalCount",
        db_segments.segment_listing(project.id, tags).count(conn),
    )

    for label, plan in PLANS_SEEN.items():
        print(f"{label}: {plan}")
