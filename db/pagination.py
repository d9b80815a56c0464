"""Keyset pagination: the one place that turns a page request into ORDER BY / WHERE / LIMIT."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class PageRequest:
    """A window over rows ordered by (column, id).

    `after`/`before` are (sort value, id) pairs taken from cursors; `limit` rows are wanted
    from the start of the window, or from its end when `from_end` (Relay's `last`).
    `tiebreak` is the column that breaks ties of `column`; None when `column` is unique in
    the list (then a cursor's id is ignored).
    """

    column: str
    descending: bool
    limit: int
    from_end: bool = False
    after: tuple[Any, int] | None = None
    before: tuple[Any, int] | None = None
    tiebreak: str | None = "id"


def escape_like(text: str) -> str:
    """`text` with LIKE's wildcards escaped, to match literally inside a pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """[low, high) holding exactly the strings that start with `prefix` in code point order
    (a "C" collation), so a prefix search is a range of a btree index; high None: no end."""
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000  # surrogates are no characters of a stored string
        if point <= 0x10FFFF:
            return prefix, "".join(chars) + chr(point)
    return prefix, None


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere."""
    return f"%{escape_like(text)}%"


class SqlBuilder:
    """Collects WHERE conditions and numbered parameters for one statement."""

    def __init__(self, *params: Any) -> None:
        self.params: list[Any] = list(params)
        self.conditions: list[str] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def where(self, condition: str) -> None:
        self.conditions.append(condition)

    @property
    def where_sql(self) -> str:
        return " AND ".join(self.conditions) if self.conditions else "true"


def _bound(sql: SqlBuilder, alias: str, page: PageRequest, op: str, bound: tuple[Any, int]) -> str:
    """The keyset condition `(column, tiebreak) op bound`."""
    col = f"{alias}.{page.column}"
    if page.tiebreak is None:
        return f"{col} {op} {sql.param(bound[0])}"
    tie = f"{alias}.{page.tiebreak}"
    return f"({col}, {tie}) {op} ({sql.param(bound[0])}, {sql.param(bound[1])})"


def _order(alias: str, page: PageRequest, direction: str) -> str:
    col = f"{alias}.{page.column} {direction}"
    return col if page.tiebreak is None else f"{col}, {alias}.{page.tiebreak} {direction}"


def keyset(sql: SqlBuilder, alias: str, page: PageRequest) -> str:
    """Add the cursor bounds to `sql` and return the ORDER BY ... LIMIT tail.

    Rows come back in the direction they are read; `from_end` pages must be reversed
    by the caller. One row more than `limit` is fetched to tell whether more exist.
    """
    for bound, is_after in ((page.after, True), (page.before, False)):
        if bound is None:
            continue
        # "after" means later in the requested order, which is smaller when descending.
        op = ">" if is_after != page.descending else "<"
        sql.where(_bound(sql, alias, page, op, bound))
    backwards = page.descending != page.from_end
    direction = "DESC" if backwards else "ASC"
    return f"ORDER BY {_order(alias, page, direction)} LIMIT {sql.param(page.limit + 1)}"


async def exists_outside(
    conn: asyncpg.Connection,
    table: str,
    sql: SqlBuilder,
    page: PageRequest,
    before: bool,
) -> bool:
    """Whether a row matching `sql` lies before the `after` cursor (before=True) or after
    the `before` cursor, i.e. outside the window; `table` is "name alias"."""
    bound = page.after if before else page.before
    if bound is None:
        return False
    alias = table.split()[-1]
    op = "<=" if before != page.descending else ">="
    sql.where(_bound(sql, alias, page, op, bound))
    # Walk the keyset index away from the cursor: the first row found answers. Not
    # EXISTS (...), which drops ORDER BY/LIMIT and lets the planner pick a sequential scan
    # that reads the whole table when the matching rows sit at its end.
    direction = "DESC" if op == "<=" else "ASC"
    found = await conn.fetchval(
        f"""
        SELECT 1
        FROM {table}
        WHERE {sql.where_sql}
        ORDER BY {_order(alias, page, direction)}
        LIMIT 1
        """,
        *sql.params,
    )
    return found is not None


@dataclass(frozen=True)
class Listing:
    """One list of a table as filtered, and the three statements every connection over it
    needs: a keyset page, the count, and whether rows lie outside a page's window.

    `filtered` makes a fresh builder holding the list's WHERE conditions (its parameters
    start with the project id); `table` is "name alias".
    """

    table: str
    columns: str
    filtered: Callable[[], SqlBuilder]

    @property
    def alias(self) -> str:
        return self.table.split()[-1]

    async def page(self, conn: asyncpg.Connection, page: PageRequest) -> list[asyncpg.Record]:
        """One page in the requested order (rows of a `from_end` page come reversed)."""
        sql = self.filtered()
        tail = keyset(sql, self.alias, page)
        return await conn.fetch(
            f"SELECT {self.columns} FROM {self.table} WHERE {sql.where_sql} {tail}", *sql.params
        )

    async def count(self, conn: asyncpg.Connection) -> int:
        sql = self.filtered()
        count: int = await conn.fetchval(
            f"SELECT count(*) FROM {self.table} WHERE {sql.where_sql}", *sql.params
        )
        return count

    async def outside(self, conn: asyncpg.Connection, page: PageRequest, before: bool) -> bool:
        return await exists_outside(conn, self.table, self.filtered(), page, before)
