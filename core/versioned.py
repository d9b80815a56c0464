"""A bounded cache for what is derived from a stored segment and changes only when it does."""

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerVersion(Generic[T]):
    """Values keyed by (segment id, version, updated_at): every write bumps the version, so a
    key never goes stale; updated_at keeps databases that share ids (tests) apart."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._values: dict[Hashable, T] = {}

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        found = self._values.get(key)
        if found is None:
            if len(self._values) >= self.size:
                self._values.clear()
            found = self._values[key] = build()
        return found
