"""Read your writes across replicas: the x-segments-lsn header, on both faces.

A response to a request that wrote carries the primary's WAL position after its commit; a
request that sends it back reads a replica only once that replica has replayed it (waiting
a bounded time, else the primary), so a client always sees its own writes.
"""

from starlette.requests import Request
from starlette.responses import Response

from api.errors import RequestError
from db.pool import Database
from db.replicas import format_lsn, parse_lsn

LSN_HEADER = "x-segments-lsn"


def request_database(db: Database, request: Request, *, writes: bool) -> Database:
    """The database as this request may read it: all on the primary for a request that
    `writes`, else after the position its header names. A malformed header is a 400."""
    raw = request.headers.get(LSN_HEADER)
    after = None
    if raw is not None:
        after = parse_lsn(raw)
        if after is None:
            raise RequestError(
                400,
                f"{LSN_HEADER} must be a WAL position like 0/16B3748, as a response sent it.",
                "BAD_REQUEST",
            )
    return db.for_request(after, primary=writes)


def tell_position(response: Response, db: Database) -> Response:
    """Add the header when the request wrote and replicas may serve the client's next reads."""
    if db.written_lsn is not None:
        response.headers[LSN_HEADER] = format_lsn(db.written_lsn)
    return response
