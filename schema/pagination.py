"""Relay connections: opaque cursors, page-size bounds, and exact PageInfo over keyset pages."""

import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
import strawberry

from db.pagination import Listing, PageRequest
from db.pool import Database
from schema.errors import bad_user_input

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100

Lazy = Callable[[], Awaitable[bool]]
T = TypeVar("T")


@strawberry.type(description="Where a page lies in the whole list (Relay cursor connections).")
class PageInfo:
    start_cursor: str | None = strawberry.field(description="Cursor of the first edge of the page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last edge of the page.")
    _has_next: strawberry.Private[bool | Lazy]
    _has_previous: strawberry.Private[bool | Lazy]

    @strawberry.field(description="Whether rows follow the page (exact).")
    async def has_next_page(self) -> bool:
        return self._has_next if isinstance(self._has_next, bool) else await self._has_next()

    @strawberry.field(description="Whether rows precede the page (exact).")
    async def has_previous_page(self) -> bool:
        if isinstance(self._has_previous, bool):
            return self._has_previous
        return await self._has_previous()


def encode_cursor(kind: str, value: Any, row_id: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    return base64.urlsafe_b64encode(orjson.dumps([kind, value, row_id])).decode()


def text_value(value: Any) -> str:
    # PostgreSQL text cannot hold NUL; no stored value has one.
    if not isinstance(value, str) or "\x00" in value:
        raise TypeError
    return value


def time_value(value: Any) -> datetime:
    # Converted to UTC here, as the driver would on sending it: an offset that pushes the
    # instant past year 9999 or before year 1 (9999-12-31T23:59:59-14:00) raises
    # OverflowError now, as bad input, instead of in the driver as an internal error.
    moment = datetime.fromisoformat(text_value(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def id_value(value: Any) -> int:
    # Ids are bigint: anything outside would fail in the driver, not as bad input.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise TypeError
    return value


def decode_cursor(
    cursor: str, kind: str, parse: Callable[[Any], Any] = text_value
) -> tuple[Any, int]:
    """(sort value, id) from a cursor made for ordering `kind`; BAD_USER_INPUT otherwise."""
    try:
        got_kind, value, row_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if got_kind != kind:
            raise ValueError
        value, row_id = parse(value), id_value(row_id)
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError):
        raise bad_user_input("The cursor is not valid for this list and order.") from None
    return value, row_id


def page_request(
    *,
    first: int | None,
    after: tuple[Any, int] | None,
    last: int | None,
    before: tuple[Any, int] | None,
    column: str,
    descending: bool = False,
    tiebreak: str | None = "id",
) -> PageRequest:
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE_SIZE:
            raise bad_user_input(f"`{name}` must be between 0 and {MAX_PAGE_SIZE}.")
    if first is not None and last is not None:
        raise bad_user_input("Pass either `first` or `last`, not both.")
    from_end = last is not None
    limit = last if from_end else (first if first is not None else DEFAULT_PAGE_SIZE)
    return PageRequest(
        column=column,
        descending=descending,
        limit=limit,
        from_end=from_end,
        after=after,
        before=before,
        tiebreak=tiebreak,
    )


def window(
    page: PageRequest,
    rows: Sequence[Any],
    outside: Callable[[bool], Awaitable[bool]],
    cursor: Callable[[Any], str],
) -> tuple[list[Any], PageInfo]:
    """Trim the fetched rows (one extra was asked for) and work out PageInfo exactly; only
    the first and last rows' cursors are made here (edges make theirs when asked for).

    `outside(before)` tells whether a matching row lies before the `after` cursor
    (before=True) or after the `before` cursor; it runs only if a client asks.
    """
    more = len(rows) > page.limit
    rows = list(rows[: page.limit])
    if page.from_end:
        rows.reverse()

    def lazy(before: bool) -> bool | Lazy:
        # With no cursor on that side nothing lies outside: answer without a connection.
        if (page.after if before else page.before) is None:
            return False
        return lambda: outside(before)

    has_next: bool | Lazy
    has_previous: bool | Lazy
    if page.from_end:
        has_previous = True if more else lazy(True)
        has_next = lazy(False)
    else:
        has_next = True if more else lazy(False)
        has_previous = lazy(True)
    info = PageInfo(
        start_cursor=cursor(rows[0]) if rows else None,
        end_cursor=cursor(rows[-1]) if rows else None,
        _has_next=has_next,
        _has_previous=has_previous,
    )
    return rows, info


@strawberry.type(description="An item of a page, with its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque position of this edge.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list (Relay cursor connection).")
class Connection(Generic[T]):
    """The one connection shape: `class SegmentConnection(Connection[Segment])` names the
    schema types SegmentConnection and SegmentEdge.

    It holds the page's rows: each becomes its node once, when `nodes` or `edges` first asks,
    and gets its cursor only if `edges` is selected (a list screen selects `nodes`)."""

    @strawberry.field(description="The page, with cursors.")
    def edges(self) -> list[Edge[T]]:
        cursor = self._cursor
        return [
            Edge(cursor=cursor(row), node=node)
            for row, node in zip(self._rows, self.nodes(), strict=True)
        ]

    # A resolver, as edges is, so that the schema lists the fields in this order.
    @strawberry.field(description="Where the page lies in the whole list.")
    def page_info(self) -> PageInfo:
        return self._page_info

    _page_info: strawberry.Private[PageInfo]
    _count: strawberry.Private[Callable[[], Awaitable[int]]]
    _rows: strawberry.Private[Sequence[Any]]
    _node: strawberry.Private[Callable[[Any], Any]]
    _cursor: strawberry.Private[Callable[[Any], str]]
    _nodes: strawberry.Private[list[Any] | None] = None

    @strawberry.field(description="The page's items without cursors.")
    def nodes(self) -> list[T]:
        if self._nodes is None:
            self._nodes = [self._node(row) for row in self._rows]
        return self._nodes

    @strawberry.field(description="All items of the list (as filtered), across pages.")
    async def total_count(self) -> int:
        return await self._count()


C = TypeVar("C", bound=Connection[Any])


def connection(
    kind: type[C],
    page: PageRequest,
    rows: Sequence[Any],
    *,
    outside: Callable[[bool], Awaitable[bool]],
    count: Callable[[], Awaitable[int]],
    cursor: Callable[[Any], str],
    node: Callable[[Any], Any],
) -> C:
    """A connection of `kind` over fetched keyset rows: the page trimmed, PageInfo exact,
    nodes made and cursors encoded when asked for, totalCount counted only when asked for."""
    page_rows, page_info = window(page, rows, outside, cursor)
    return kind(_page_info=page_info, _count=count, _rows=page_rows, _node=node, _cursor=cursor)


async def listing_connection(
    kind: type[C],
    db: Database,
    listing: Listing,
    page: PageRequest,
    *,
    cursor: Callable[[Any], str],
    node: Callable[[Any], Any],
    count: Callable[[], Awaitable[int]] | None = None,
) -> C:
    """A connection of `kind` over a db listing: the page now, the count and the rows
    outside the window only if a client asks for totalCount or hasPrevious/NextPage.
    `count`, when the caller knows the total otherwise (a stored count)."""
    rows = await db.run(listing.page, page)
    return connection(
        kind,
        page,
        rows,
        outside=lambda before: db.run(listing.outside, page, before),
        count=count or (lambda: db.run(listing.count)),
        cursor=cursor,
        node=node,
    )
