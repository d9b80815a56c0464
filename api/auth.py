"""Resolves `Authorization: Bearer <token>` to a Principal, with a short in-process cache.

A cached token is trusted for `cache_seconds` only while this process listens for key
changes (sql/0003 notifies on every revocation): a revoked token is dropped as soon as the
notification arrives. When the listening connection is down, nothing is cached.

A lookup that is in flight when a revocation commits may have read the key as valid; it
must not be cached after the notification dropped it. Every notification (and every
(re)connection of the listener, which may have missed some) bumps a generation, and a
lookup's answer is stored only if the generation is still the one it started under.
"""

import asyncio
import contextlib
import logging
import time

import asyncpg

from api.errors import BUSY_MESSAGE, DATABASE_DOWN, RETRY_AFTER, RequestError
from db import api_keys
from db.api_keys import Principal
from db.pool import Database, PoolBusy

log = logging.getLogger("segments.auth")

_MAX_CACHED = 10_000
_RELISTEN_SECONDS = 2.0


class Authenticator:
    def __init__(self, db: Database, cache_seconds: float, dsn: str | None = None) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self.dsn = dsn
        # token hash -> (principal, expiry); only valid tokens are cached.
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._generation = 0
        self._listener: asyncpg.Connection | None = None
        self._relisten: asyncio.Task[None] | None = None

    @property
    def caching(self) -> bool:
        return self.cache_seconds > 0 and self._listener is not None

    async def start(self) -> None:
        if self.cache_seconds > 0 and self.dsn:
            self._relisten = asyncio.create_task(self._keep_listening())

    async def stop(self) -> None:
        if self._relisten is not None:
            self._relisten.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisten
        if self._listener is not None:
            await self._listener.close()
            self._listener = None

    async def _keep_listening(self) -> None:
        assert self.dsn is not None
        while True:
            if self._listener is None or self._listener.is_closed():
                self._listener = None
                try:
                    listener = await api_keys.listen_for_changes(
                        self.dsn, self._forget, self._lost, timeout=self.db.acquire_timeout
                    )
                    # Lookups that began while nobody listened may predate a revocation.
                    self._generation += 1
                    self._listener = listener
                except Exception:  # noqa: BLE001 - whatever the cause, retry; caching stays off
                    log.warning("cannot listen for API key changes; token cache off until then")
            await asyncio.sleep(_RELISTEN_SECONDS)

    def _forget(self, token_hash: str) -> None:
        self._generation += 1
        self._cache.pop(token_hash, None)

    def _lost(self) -> None:
        self._generation += 1
        self._listener = None
        self._cache.clear()

    async def principal(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 200:
            return None
        digest = api_keys.hash_token(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now and self.caching:
            return cached[0]
        generation = self._generation
        async with self.db.connection() as conn:
            found = await api_keys.principal_for_token(conn, token)
        if found is None:
            self._cache.pop(digest, None)
        elif self.caching and generation == self._generation:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[digest] = (found, now + self.cache_seconds)
        return found

    async def require(self, authorization: str | None) -> Principal:
        """The caller, or the RequestError to answer: 401 for no valid token, 503 when the
        lookup cannot run (busy pool, lost database). Both faces authenticate here."""
        try:
            principal = await self.principal(authorization)
        except (PoolBusy, asyncpg.QueryCanceledError):
            log.warning("token lookup found no free connection")
            raise RequestError(503, BUSY_MESSAGE, "SERVER_BUSY", RETRY_AFTER) from None
        except DATABASE_DOWN:
            log.warning("database unavailable", exc_info=True)
            raise RequestError(
                503, "The database is unavailable; retry shortly.", "SERVICE_UNAVAILABLE"
            ) from None
        if principal is None:
            raise RequestError(
                401,
                "Send a valid API token: Authorization: Bearer <token>.",
                "UNAUTHENTICATED",
                {"www-authenticate": "Bearer"},
            )
        return principal
