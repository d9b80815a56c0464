"""The GraphiQL page and the files it loads, all served from this package: nothing comes
from another origin, so the page works offline and its Content-Security-Policy can allow
this origin only."""

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

PREFIX = "/static"
# Everything the page references; LICENSE files and notes ship in the package but are not
# served.
PAGE_FILES = (
    "graphiql.css",
    "graphiql.js",
    "vendor/react-18.3.1/react.production.min.js",
    "vendor/react-dom-18.3.1/react-dom.production.min.js",
    "vendor/graphiql-3.8.3/graphiql.min.js",
    "vendor/graphiql-3.8.3/graphiql.min.css",
)
# Fonts and icons of graphiql.min.css are data: URLs; neither can run code.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
# An asset's URL holds its content digest, so a changed file gets a new URL and a cached
# one never goes stale.
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    digest: str

    def url(self, name: str) -> str:
        return f"{PREFIX}/{self.digest}/{name}"


def _load(name: str) -> Asset:
    body = resources.files("api").joinpath("static", name).read_bytes()
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media_type.startswith("text/") or media_type.endswith("javascript"):
        media_type += "; charset=utf-8"
    return Asset(body, media_type, hashlib.sha256(body).hexdigest()[:16])


ASSETS = {name: _load(name) for name in PAGE_FILES}


def _render_page() -> str:
    template = resources.files("api").joinpath("static", "graphiql.html").read_text()
    return re.sub(r"\{\{([^}]+)\}\}", lambda m: ASSETS[m.group(1)].url(m.group(1)), template)


_PAGE = _render_page()
_COMMON_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def graphiql_page() -> Response:
    """The page itself: small, revalidated on every visit, so a new release is seen at once."""
    return HTMLResponse(
        _PAGE,
        headers={
            **_COMMON_HEADERS,
            "content-security-policy": CONTENT_SECURITY_POLICY,
            "cache-control": "no-cache",
        },
    )


async def asset_route(request: Request) -> Response:
    """GET /static/{digest}/{name}: a page file, if the digest is the current one."""
    name = request.path_params["name"]
    asset = ASSETS.get(name)
    if asset is None or request.path_params["digest"] != asset.digest:
        return Response("Not found.", 404, {**_COMMON_HEADERS}, "text/plain")
    return Response(
        asset.body,
        headers={**_COMMON_HEADERS, "cache-control": IMMUTABLE, "etag": f'"{asset.digest}"'},
        media_type=asset.media_type,
    )
