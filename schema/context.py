"""What every resolver gets as `info.context`: the caller, the database and per-request loaders."""

import asyncio
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from strawberry.types import Info

from core.access import project_id_for
from db.api_keys import Principal
from db.loaders import Loaders, SharedLoader
from db.pool import Database

if TYPE_CHECKING:
    from api.settings import Settings

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Context:
    db: Database
    settings: "Settings"
    principal: Principal
    request_id: str = ""
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(
            self.db,
            self.principal.project_id,
            # One budget for all member work of this request, counted from now.
            member_budget_s=self.settings.statement_timeout_ms / 1000,
        )

    def fresh(self) -> "Context":
        """A context for the same request with nothing loaded yet (the fast path's fallback
        runs on one), still within the request's one member-work budget."""
        again = replace(self)
        again.loaders.member_deadline = self.loaders.member_deadline
        return again

    def project_id_for(self, project_key: str) -> int:
        """The caller's project id when it is the one named, else 0, which no row carries:
        reads of another project come back empty, exactly like one that does not exist."""
        return project_id_for(self.principal, project_key) or 0


AppInfo = Info[Context, None]


class Mapped(Generic[T, R]):
    """`convert` applied to a DataLoader's future once it resolves; awaitable.

    Loader-backed fields return this rather than being `async def`: a coroutine per object
    needs a Task per object to batch, this needs nothing until it is awaited. The compiled
    executor, which never cancels what it awaits, awaits the shared future itself; awaited
    as an awaitable (graphql-core, which cancels the siblings of a failed field) it awaits a
    shield of it, so one cancelled field cannot cancel the value for every other field.
    """

    __slots__ = ("convert", "future")

    def __init__(self, future: asyncio.Future[T], convert: Callable[[T], R]) -> None:
        self.future = future
        self.convert = convert

    def __await__(self) -> Generator[Any, None, R]:
        value = yield from asyncio.shield(self.future).__await__()
        return self.convert(value)


def mapped(loader: SharedLoader, key: Any, convert: Callable[[Any], R]) -> Mapped[Any, R]:
    """What `loader` loads for `key`, converted: the value of a loader-backed field."""
    return Mapped(loader.shared(key), convert)
