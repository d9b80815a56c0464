"""Per-request DataLoaders: each batch is one `= ANY($n)` statement scoped to the caller's project."""

import asyncio
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from functools import cached_property
from typing import Any

import asyncpg
import orjson
from strawberry.dataloader import DataLoader, LoaderTask, get_current_batch

from db import attributes, audit, change_requests, flags, members, profiles, projects, segments
from db.members import Definition, Difference, ImpactCounts
from db.pool import Database, Row
from db.replicas import REPLICA_LOST
from rules.models import MAX_REFERENCE_COMPILE_DEPTH, referenced_ids

# A page of members: (definition, targetingKey to start after or None, page size); a
# Difference pages who enters or leaves with a change.
MemberPageKey = tuple[Definition | Difference, str | None, int]
# A change of definition: (before, after); after None for a delete.
ImpactKey = tuple[Definition, Definition | None]


class SharedLoader(DataLoader):
    """A DataLoader whose values survive a cancelled caller.

    A key's future is shared by every field that loads the key in the request, and
    graphql-core cancels the pending awaitables of a field that failed (gather_with_cancel):
    awaited directly, that cancels the future for every other field too, and the request
    ends in CancelledError instead of an answer. Each caller gets a shield of the future.
    """

    def load(self, key: Any) -> Awaitable[Any]:
        return asyncio.shield(super().load(key))

    def shared(self, key: Any) -> Any:
        """The key's shared future itself, unshielded: for Mapped (schema/context.py),
        which shields it only where an awaiter may be cancelled. Shielding every load
        costs a future and callbacks per field: measured, a quarter of the list page's CPU.

        DataLoader.load, minus the done callback per key (it cancels a batch whose every
        future was cancelled; nothing cancels these): a page of 50 segments registers 50
        keys, and each callback costs a trip through the event loop when the batch lands."""
        future = self.cache_map.get(key)
        if future is not None and not future.cancelled():
            return future
        future = self.loop.create_future()
        self.cache_map.set(key, future)
        get_current_batch(self).tasks.append(LoaderTask(key, future))
        return future


def _by_id(rows: Sequence[Row], keys: Sequence[int], field: str = "id") -> list[Row | None]:
    found = {row[field]: row for row in rows}
    return [found.get(key) for key in keys]


class Loaders:
    """Created once per request; a key is fetched at most once per request."""

    def __init__(self, db: Database, project_id: int, member_budget_s: float | None = None) -> None:
        self.db = db
        self.project_id = project_id
        # Member counts and pages may stream candidates through the Python evaluator, which
        # no statement timeout bounds. All member work of the request (counts, pages,
        # previews, however many segments) shares one budget that starts now: a query asking
        # for a hundred slow counts holds its connection for one budget, not a hundred.
        self.member_deadline = (
            None if member_budget_s is None else time.monotonic() + member_budget_s
        )

    # Each loader is made on first use: most requests touch two or three of them.
    @cached_property
    def project(self) -> DataLoader[int, Row | None]:
        return SharedLoader(self._projects)

    @cached_property
    def audit_event(self) -> DataLoader[int, Row | None]:
        return SharedLoader(self._audit_events)

    @cached_property
    def segment(self) -> DataLoader[int, Row | None]:
        return SharedLoader(self._segments)

    @cached_property
    def change_request(self) -> DataLoader[int, Row | None]:
        return SharedLoader(self._change_requests)

    @cached_property
    def change_request_reviews(self) -> DataLoader[int, list[Row]]:
        return SharedLoader(self._change_request_reviews)

    @cached_property
    def usage(self) -> DataLoader[int, list[Row]]:
        return SharedLoader(self._usage)

    @cached_property
    def indirect_usage(self) -> DataLoader[int, list[Row]]:
        return SharedLoader(self._indirect_usage)

    @cached_property
    def referencing_segments(self) -> DataLoader[int, list[Row]]:
        return SharedLoader(self._referencing_segments)

    @cached_property
    def closure(self) -> DataLoader[tuple[int, ...], dict[int, Row]]:
        """The rows of every segment reachable from the key's segment ids through references
        (the ids included): one statement for the whole batch."""
        return SharedLoader(self._closures)

    @cached_property
    def flag(self) -> DataLoader[int, Row | None]:
        return SharedLoader(self._flags)

    @cached_property
    def environment(self) -> DataLoader[int, Row | None]:
        return SharedLoader(self._environments)

    @cached_property
    def project_settings(self) -> DataLoader[int, dict[str, Any]]:
        return SharedLoader(self._project_settings)

    @cached_property
    def project_environments(self) -> DataLoader[int, list[Row]]:
        return SharedLoader(self._project_environments)

    @cached_property
    def targeting_rules(self) -> DataLoader[tuple[int, str], list[Row]]:
        return SharedLoader(self._targeting_rules)

    @cached_property
    def profile(self) -> DataLoader[int, Row | None]:
        return SharedLoader(self._profiles)

    @cached_property
    def attribute_segments(self) -> DataLoader[str, int]:
        """How many live segments name each attribute path: one statement per page."""
        return SharedLoader(self._attribute_segments)

    @cached_property
    def attribute_top_values(self) -> DataLoader[tuple[str, int], list[Row]]:
        """The most frequent values of (path, at most n): one scan of the profiles per batch."""
        return SharedLoader(self._attribute_top_values)

    # Member counts and pages are cached per definition, not batched: one request asking
    # for a segment's memberCount and totalCount counts once, and a count that timed out
    # fails again at once instead of running a second time.
    @cached_property
    def member_count(self) -> DataLoader[Definition, int]:
        return SharedLoader(self._member_counts, cache_key_fn=_definition_key)

    @cached_property
    def member_page(self) -> DataLoader[MemberPageKey, list[Row]]:
        return SharedLoader(
            self._member_pages,
            cache_key_fn=lambda key: (_definition_key(key[0]), key[1], key[2]),
        )

    @cached_property
    def member_overlap(self) -> DataLoader[tuple[Definition, Definition], members.Overlap]:
        return SharedLoader(
            self._member_overlaps,
            cache_key_fn=lambda key: (_definition_key(key[0]), _definition_key(key[1])),
        )

    @cached_property
    def known_attributes(self) -> DataLoader[int, dict[str, set[str]]]:
        """The project's attribute paths with their JSON types, seen or declared: one
        statement per request, however many segments ask for warnings."""
        return SharedLoader(self._known_attributes)

    @cached_property
    def profile_total(self) -> DataLoader[int, int]:
        """The project's stored profiles (its counter), read where member counts are."""
        return SharedLoader(self._profile_totals)

    @cached_property
    def impact_counts(self) -> DataLoader[ImpactKey, ImpactCounts]:
        return SharedLoader(
            self._impact_counts,
            cache_key_fn=lambda key: (
                _definition_key(key[0]),
                None if key[1] is None else _definition_key(key[1]),
            ),
        )

    def _run(self, query: Callable[..., Awaitable[Any]], *args: Any) -> Awaitable[Any]:
        return self.db.run(query, self.project_id, *args)

    async def _projects(self, ids: list[int]) -> list[Row | None]:
        # Only the caller's own project is ever visible.
        wanted = [pid for pid in ids if pid == self.project_id]
        rows = await self.db.run(projects.projects_by_id, wanted) if wanted else []
        return _by_id(rows, ids)

    async def _audit_events(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(audit.events_by_id, ids), ids)

    async def _segments(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(segments.segments_by_id, ids), ids)

    async def _change_requests(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(change_requests.requests_by_id, ids), ids)

    async def _change_request_reviews(self, ids: list[int]) -> list[list[Row]]:
        rows = await self._run(change_requests.reviews_of, ids)
        return _grouped(rows, ids, "change_request_id")

    async def _flags(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(flags.flags_by_id, ids), ids)

    async def _environments(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(projects.environments_by_id, ids), ids)

    async def _project_settings(self, project_ids: list[int]) -> list[dict[str, Any]]:
        # Only the caller's own project is ever visible (others read as the defaults).
        wanted = [pid for pid in project_ids if pid == self.project_id]
        found = await self.db.run(projects.settings_of_projects, wanted) if wanted else []
        by_id = dict(zip(wanted, found, strict=True))
        return [by_id.get(pid, projects.DEFAULT_SETTINGS) for pid in project_ids]

    async def _project_environments(self, project_ids: list[int]) -> list[list[Row]]:
        # Only the caller's own project is ever visible.
        wanted = [pid for pid in project_ids if pid == self.project_id]
        rows = await self.db.run(projects.environments_of_projects, wanted) if wanted else []
        grouped: dict[int, list[Row]] = defaultdict(list)
        for row in rows:
            grouped[row["project_id"]].append(row)
            self.environment.prime(row["id"], row)
        return [grouped[pid] for pid in project_ids]

    async def _usage(self, segment_ids: list[int]) -> list[list[Row]]:
        rows = await self._run(segments.usage_of_segments, segment_ids)
        grouped: dict[int, list[Row]] = defaultdict(list)
        for row in rows:
            grouped[row["segment_id"]].append(row)
        return [grouped[sid] for sid in segment_ids]

    async def _indirect_usage(self, segment_ids: list[int]) -> list[list[Row]]:
        rows = await self._run(segments.indirect_usage_of_segments, segment_ids)
        return _grouped(rows, segment_ids, "segment_id")

    async def _referencing_segments(self, segment_ids: list[int]) -> list[list[Row]]:
        rows = await self._run(segments.referencing_segments, segment_ids)
        for row in rows:
            self.segment.prime(row["id"], row)
        return _grouped(rows, segment_ids, "referenced_id")

    async def _closures(self, keys: list[tuple[int, ...]]) -> list[dict[int, Row]]:
        wanted = sorted({segment_id for key in keys for segment_id in key})
        rows = {row["id"]: row for row in await self._run(segments.reference_closure, wanted)}
        return [_reachable(rows, key) for key in keys]

    async def _attribute_segments(self, paths: list[str]) -> list[int]:
        rows = await self._run(attributes.segments_naming, paths)
        found = {row["path"]: row["segments"] for row in rows}
        return [found.get(path, 0) for path in paths]

    async def _attribute_top_values(self, keys: list[tuple[str, int]]) -> list[list[Row]]:
        paths = sorted({path for path, _ in keys})
        limit = max(n for _, n in keys)
        rows = await self._run(attributes.top_values, paths, limit)
        by_path: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            by_path[row["path"]].append(row)
        return [by_path[path][:n] for path, n in keys]

    async def _profiles(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(profiles.profiles_by_id, ids), ids)

    async def _member_counts(self, definitions: list[Definition]) -> list[int | BaseException]:
        async def counts(conn: asyncpg.Connection) -> list[int | BaseException]:
            return [
                await self._bounded(conn, members.count_members(conn, self.project_id, definition))
                for definition in definitions
            ]

        return await self.db.member_run(self.member_deadline, counts)

    async def _impact_counts(self, keys: list[ImpactKey]) -> list[ImpactCounts | BaseException]:
        async def counts(conn: asyncpg.Connection) -> list[ImpactCounts | BaseException]:
            return [
                await self._bounded(conn, members.count_impact(conn, self.project_id, *key))
                for key in keys
            ]

        return await self.db.member_run(self.member_deadline, counts)

    async def _member_pages(self, keys: list[MemberPageKey]) -> list[list[Row] | BaseException]:
        async def pages(conn: asyncpg.Connection) -> list[list[Row] | BaseException]:
            return [
                await self._bounded(
                    conn, members.member_page(conn, self.project_id, definition, after_key, limit)
                )
                for definition, after_key, limit in keys
            ]

        return await self.db.member_run(self.member_deadline, pages)

    async def _member_overlaps(
        self, keys: list[tuple[Definition, Definition]]
    ) -> list[members.Overlap | BaseException]:
        async def overlaps(conn: asyncpg.Connection) -> list[members.Overlap | BaseException]:
            return [
                await self._bounded(conn, members.count_overlap(conn, self.project_id, a, b))
                for a, b in keys
            ]

        return await self.db.member_run(self.member_deadline, overlaps)

    async def _known_attributes(self, project_ids: list[int]) -> list[dict[str, set[str]]]:
        # Only the caller's own project is ever visible.
        known = await self._run(attributes.known_types)
        return [known if pid == self.project_id else {} for pid in project_ids]

    async def _profile_totals(self, project_ids: list[int]) -> list[int]:
        # Only the caller's own project is ever visible (others hold no profiles).
        async def totals(conn: asyncpg.Connection) -> int:
            return await profiles.profile_total(conn, self.project_id)

        total = await self.db.member_run(self.member_deadline, totals)
        return [total if pid == self.project_id else 0 for pid in project_ids]

    async def _bounded(self, conn: asyncpg.Connection, work: Coroutine[Any, Any, Any]) -> Any:
        """The result, or the exception for the loader to fail this one key with: work still
        running at the request's member deadline is cancelled (and `conn` reset before
        reuse), and work asked for after it never starts; both are reported like a
        statement timeout. A lost replica fails the whole batch, which is then run again on
        the primary (Database.member_run)."""
        remaining = (
            None if self.member_deadline is None else self.member_deadline - time.monotonic()
        )
        if remaining is not None and remaining <= 0:
            work.close()
            return _out_of_budget()
        try:
            async with asyncio.timeout(remaining):
                return await work
        except TimeoutError:
            self.db.interrupted(conn)
            return _out_of_budget()
        except REPLICA_LOST:
            raise
        except Exception as error:  # noqa: BLE001 - handed to the caller through its future
            return error

    async def _targeting_rules(self, keys: list[tuple[int, str]]) -> list[list[Row]]:
        rows = await self._run(flags.rules_of_flags, keys)
        grouped: dict[tuple[int, str], list[Row]] = defaultdict(list)
        for row in rows:
            grouped[(row["flag_id"], row["environment_key"])].append(row)
        return [grouped[key] for key in keys]


def _grouped(rows: Sequence[Row], keys: Sequence[int], field: str) -> list[list[Row]]:
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row[field]].append(row)
    return [grouped[key] for key in keys]


def _reachable(rows: dict[int, Row], start: tuple[int, ...]) -> dict[int, Row]:
    """The rows reachable from `start` (following the stored rules' references), out of a
    closure loaded for several starts together; as deep as the closure statement goes."""
    found: dict[int, Row] = {}
    level = [segment_id for segment_id in start if segment_id in rows]
    for _ in range(MAX_REFERENCE_COMPILE_DEPTH):
        next_level = []
        for segment_id in level:
            if segment_id not in found:
                found[segment_id] = rows[segment_id]
                next_level += [r for r in referenced_ids(rows[segment_id]["rules"]) if r in rows]
        level = next_level
    return found


def _out_of_budget() -> asyncpg.QueryCanceledError:
    return asyncpg.QueryCanceledError(
        "canceling member query: the request's member work outlived the statement timeout"
    )


def _definition_key(definition: Definition | Difference) -> bytes:
    if isinstance(definition, Difference):
        return b"+" + _definition_key(definition.plus) + b"-" + _definition_key(definition.minus)
    return orjson.dumps(
        [
            definition.logical_op,
            definition.rules,
            definition.force,
            definition.included,
            definition.excluded,
            # What the referenced segments are now: a reference changed since is another key.
            sorted(definition.references.items()),
            definition.salt,
            definition.big_segment_id,
        ],
        option=orjson.OPT_SORT_KEYS,
    )
