"""Resolves `Authorization: Bearer <token>` to a Principal, with a short in-process cache."""

import time

from db import api_keys
from db.api_keys import Principal
from db.pool import Database


class Authenticator:
    def __init__(self, db: Database, cache_seconds: float) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        # token hash -> (principal, expiry); only valid tokens are cached.
        self._cache: dict[str, tuple[Principal, float]] = {}

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
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self.db.connection() as conn:
            found = await api_keys.principal_for_token(conn, token)
        if found is None:
            self._cache.pop(digest, None)
            return None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (found, now + self.cache_seconds)
        return found

    def forget(self) -> None:
        """Drop every cached token, e.g. after a revocation in this process."""
        self._cache.clear()
