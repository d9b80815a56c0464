"""Request bodies both faces read alike: JSON only, counted as they arrive against the body
limit, numbers read exactly (rules.values.loads_json)."""

from typing import Any

import orjson
from starlette.requests import Request

from api.errors import RequestError
from rules.values import loads_json

JSON = "application/json"


async def read_json_body(request: Request, max_bytes: int) -> Any:
    """The parsed body, or a RequestError: 415 for another media type, 413 beyond
    `max_bytes` (a lying Content-Length cannot pass), 400 for text that is not JSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON:
        raise RequestError(415, f"Send the body as {JSON}.", "UNSUPPORTED_MEDIA_TYPE")
    too_large = RequestError(
        413, f"The request body exceeds {max_bytes} bytes.", "PAYLOAD_TOO_LARGE"
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    try:
        return loads_json(body)
    except orjson.JSONDecodeError:
        raise RequestError(400, "The request body is not valid JSON.", "BAD_REQUEST") from None
