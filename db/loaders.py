"""Per-request DataLoaders: each batch is one `= ANY($n)` statement scoped to the caller's project."""

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from db import audit, flags, projects, segments
from db.pool import Database

Row = Mapping[str, Any]


def _by_id(rows: Sequence[Row], keys: Sequence[int], field: str = "id") -> list[Row | None]:
    found = {row[field]: row for row in rows}
    return [found.get(key) for key in keys]


class Loaders:
    """Created once per request; a key is fetched at most once per request."""

    def __init__(self, db: Database, project_id: int) -> None:
        self.db = db
        self.project_id = project_id
        self.project: DataLoader[int, Row | None] = DataLoader(self._projects)
        self.audit_event: DataLoader[int, Row | None] = DataLoader(self._audit_events)
        self.segment: DataLoader[int, Row | None] = DataLoader(self._segments)
        self.usage: DataLoader[int, list[Row]] = DataLoader(self._usage)
        self.flag: DataLoader[int, Row | None] = DataLoader(self._flags)
        self.environment: DataLoader[int, Row | None] = DataLoader(self._environments)
        self.project_environments: DataLoader[int, list[Row]] = DataLoader(
            self._project_environments
        )
        self.targeting_rules: DataLoader[tuple[int, str], list[Row]] = DataLoader(
            self._targeting_rules
        )

    async def _run(self, query: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        async with self.db.connection() as conn:
            return await query(conn, self.project_id, *args)

    async def _projects(self, ids: list[int]) -> list[Row | None]:
        # Only the caller's own project is ever visible.
        wanted = [pid for pid in ids if pid == self.project_id]
        async with self.db.connection() as conn:
            rows = await projects.projects_by_id(conn, wanted) if wanted else []
        return _by_id(rows, ids)

    async def _audit_events(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(audit.events_by_id, ids), ids)

    async def _segments(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(segments.segments_by_id, ids), ids)

    async def _flags(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(flags.flags_by_id, ids), ids)

    async def _environments(self, ids: list[int]) -> list[Row | None]:
        return _by_id(await self._run(projects.environments_by_id, ids), ids)

    async def _project_environments(self, project_ids: list[int]) -> list[list[Row]]:
        # Only the caller's own project is ever visible.
        wanted = [pid for pid in project_ids if pid == self.project_id]
        async with self.db.connection() as conn:
            rows = await projects.environments_of_projects(conn, wanted) if wanted else []
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

    async def _targeting_rules(self, keys: list[tuple[int, str]]) -> list[list[Row]]:
        rows = await self._run(flags.rules_of_flags, keys)
        grouped: dict[tuple[int, str], list[Row]] = defaultdict(list)
        for row in rows:
            grouped[(row["flag_id"], row["environment_key"])].append(row)
        return [grouped[key] for key in keys]
