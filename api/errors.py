"""Errors both faces answer alike: a busy pool, a lost database, a timeout, a read-only key."""

import asyncpg

from core.access import Forbidden
from db.pool import PoolBusy

# What a lost or stopped database raises from asyncpg (an idle pooled connection the server
# dropped surfaces as InternalClientError on first use); answered with 503, not a stack trace.
DATABASE_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
)


class RequestError(Exception):
    """A request that cannot be executed: answered with `status` and one coded error."""

    def __init__(self, status: int, message: str, code: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


# A busy pool is worth a retry after about this long.
RETRY_AFTER = {"retry-after": "1"}
BUSY_MESSAGE = "The server is busy; retry shortly."


def typed_error(error: BaseException | None) -> tuple[str, str] | None:
    """Errors a client caused or can retry, as (message, code): refusals of the core and
    database errors; the driver's own text never reaches the client."""
    if isinstance(
        error, (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
    ):
        return (
            "A text value contains a character that cannot be stored (such as NUL).",
            "BAD_USER_INPUT",
        )
    if isinstance(error, Forbidden):
        return str(error), "FORBIDDEN"
    if isinstance(error, PoolBusy):
        return BUSY_MESSAGE, "SERVER_BUSY"
    if isinstance(error, asyncpg.QueryCanceledError):
        return (
            "The query took longer than the statement timeout; narrow it and retry.",
            "QUERY_TIMEOUT",
        )
    if isinstance(error, DATABASE_DOWN):
        return "The database is unavailable; retry shortly.", "SERVICE_UNAVAILABLE"
    return None
