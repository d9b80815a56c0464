"""A long profile import does not hold up the API's profile writes of its project, and the
project's counter and limit stay exact (sql/0005)."""

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from db import profiles
from db.pool import connect
from tests.test_cli import ROOT, SEGMENTS

UPSERT = "mutation($i: UpsertProfilesInput!) { upsertProfiles(input: $i) { upsertedCount userErrors { code } } }"


@pytest.fixture
async def conns(database_url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    first, second = await connect(database_url), await connect(database_url)
    yield first, second
    await first.close()
    await second.close()


async def exact_count(conn: asyncpg.Connection, project_id: int) -> int:
    counter = await profiles.stored_profile_count(conn, project_id)
    assert counter == await profiles.count_all_profiles(conn, project_id)
    return counter


class PausedImport:
    """copy_profiles in its own transaction, stopped after its first chunk has been written
    until `resume()`; `stored` is the counter the import's limit check reads at its end."""

    def __init__(self, conn: asyncpg.Connection, project_id: int, keys: list[str]) -> None:
        self.written = asyncio.Event()
        self.go = asyncio.Event()
        self.stored: int | None = None

        async def rows():
            for index, key in enumerate(keys):
                if index == profiles.COPY_CHUNK_SIZE + 1:  # the first chunk went in just before
                    self.written.set()
                    await self.go.wait()
                yield key, {"n": index}

        async def run() -> None:
            async with conn.transaction():
                await profiles.copy_profiles(conn, project_id, rows())
                self.stored = await profiles.stored_profile_count(conn, project_id)

        self.task = asyncio.ensure_future(run())

    async def resume(self) -> None:
        self.go.set()
        await asyncio.wait_for(self.task, timeout=30)


async def test_an_import_in_progress_does_not_hold_up_upserts_and_deletes_of_its_project(
    conns, project
):
    importer, api = conns
    await profiles.upsert_profiles(api, project.id, [("old", {})])
    running = PausedImport(importer, project.id, [f"imp-{i:05d}" for i in range(15_000)])
    await asyncio.wait_for(running.written.wait(), timeout=30)

    # Before: both waited for the import's commit behind the counter row it held.
    async with api.transaction():
        await asyncio.wait_for(
            profiles.upsert_profiles(api, project.id, [("api-1", {}), ("api-2", {})]), timeout=2
        )
        assert (
            await profiles.stored_profile_count(api, project.id) == 3
        )  # the import's rows are not committed
    async with api.transaction():
        assert (
            await asyncio.wait_for(profiles.delete_profiles(api, project.id, ["old"]), timeout=2)
            == 1
        )

    await running.resume()
    # The import's limit check counted everything committed meanwhile, and its own rows.
    assert running.stored == 15_000 + 2
    assert await exact_count(api, project.id) == 15_000 + 2


async def test_an_upsert_of_a_key_the_import_holds_waits_for_it_without_deadlock(conns, project):
    importer, api = conns
    running = PausedImport(importer, project.id, [f"imp-{i:05d}" for i in range(12_000)])
    await asyncio.wait_for(running.written.wait(), timeout=30)

    async def upsert_same_key() -> int:
        async with api.transaction():
            await profiles.upsert_profiles(
                api, project.id, [("imp-00001", {"api": True}), ("api-1", {})]
            )
            return await profiles.stored_profile_count(api, project.id)

    waiting = asyncio.ensure_future(upsert_same_key())
    await asyncio.sleep(0.3)
    assert not waiting.done()  # the import holds that profile until it commits
    await running.resume()  # and takes the counter at its end: no deadlock with the waiter
    assert await asyncio.wait_for(waiting, timeout=10) == 12_000 + 1
    assert await exact_count(api, project.id) == 12_000 + 1


async def test_a_failed_import_leaves_the_counter_and_later_writes_as_they_were(conns, project):
    importer, api = conns

    async def rows():
        for index in range(12_000):
            yield f"imp-{index}", {"n": index}
        raise RuntimeError("the file went away")

    with pytest.raises(RuntimeError):
        async with importer.transaction():
            await profiles.copy_profiles(importer, project.id, rows())
    # The deferred count went with the rollback: the same connection counts normally again.
    await profiles.upsert_profiles(importer, project.id, [("a", {})])
    assert await exact_count(api, project.id) == 1
    assert await profiles.copy_profiles(importer, project.id, [("b", {}), ("a", {"n": 1})]) == 2
    assert await exact_count(api, project.id) == 2


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def test_api_upserts_finish_fast_while_a_200k_line_import_runs(
    database_url, project, gql, tmp_path
):
    lines = 200_000
    file = tmp_path / "big.ndjson"
    with file.open("w") as out:
        for i in range(lines):
            out.write(
                f'{{"targetingKey": "imp-{i:06d}", "attributes": {{"plan": "pro", "n": {i}}}}}\n'
            )
    watcher = await connect(database_url)
    environ = {**os.environ, "DATABASE_URL": database_url}
    importer = subprocess.Popen(
        [*SEGMENTS, "profiles", "import", "--project", project.key, str(file)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait for the import's transaction (after its checking pass) to have written rows.
        deadline = time.monotonic() + 120
        while not await watcher.fetchval(
            """
            SELECT count(*) > 0 FROM pg_stat_activity
            WHERE datname = current_database() AND backend_xid IS NOT NULL AND query LIKE '%profiles_import%'
            """
        ):
            assert importer.poll() is None and time.monotonic() < deadline, importer.communicate()
            await asyncio.sleep(0.02)
        latencies: list[float] = []
        n = 0
        while importer.poll() is None:
            n += 1
            started = time.perf_counter()
            response = await gql.raw(
                UPSERT,
                {
                    "i": {
                        "projectKey": project.key,
                        "profiles": [
                            {"targetingKey": f"api-{n:04d}-{k}", "attributes": {"n": n}}
                            for k in range(10)
                        ],
                    }
                },
            )
            elapsed = time.perf_counter() - started
            body = response.json()
            assert "errors" not in body and body["data"]["upsertProfiles"]["upsertedCount"] == 10, (
                body
            )
            if importer.poll() is None:
                latencies.append(elapsed)
            await asyncio.sleep(0.05)
        out, err = importer.communicate()
        assert importer.returncode == 0, err
    finally:
        if importer.poll() is None:
            importer.kill()
            importer.communicate()
    try:
        print(
            f"upserts during import: {len(latencies)}, p50 {percentile(latencies, 0.5):.3f} s, "
            f"p99 {percentile(latencies, 0.99):.3f} s, max {max(latencies):.3f} s"
        )
        # Before: the first upsert waited for the whole import (seconds, or the statement timeout).
        assert len(latencies) >= 20, latencies
        assert percentile(latencies, 0.99) <= 1.0, sorted(latencies)[-5:]
        assert await exact_count(watcher, project.id) == lines + 10 * n
    finally:
        await watcher.close()


async def test_an_upsert_caught_in_a_deadlock_with_an_import_is_retried(conns, project, gql):
    importer, api = conns
    running = PausedImport(importer, project.id, [f"imp-{i:05d}" for i in range(15_000)])
    await asyncio.wait_for(running.written.wait(), timeout=30)
    # The upsert writes a key of the import's next chunk, then waits for one the import holds;
    # the import, resumed, waits for the first: PostgreSQL aborts the upsert's transaction.
    entries = [
        {"targetingKey": "imp-10005", "attributes": {"api": 1}},
        {"targetingKey": "imp-00001", "attributes": {"api": 2}},
    ]
    waiting = asyncio.ensure_future(
        gql.raw(UPSERT, {"i": {"projectKey": project.key, "profiles": entries}})
    )
    await asyncio.sleep(0.3)
    await running.resume()
    body = (await asyncio.wait_for(waiting, timeout=10)).json()
    assert body == {"data": {"upsertProfiles": {"upsertedCount": 2, "userErrors": []}}}
    assert await exact_count(api, project.id) == 15_000
    rows = await api.fetch(
        "SELECT targeting_key, attributes FROM profiles WHERE targeting_key IN ('imp-10005', 'imp-00001')"
    )
    assert {r["targeting_key"]: r["attributes"] for r in rows} == {
        "imp-10005": {"api": 1},
        "imp-00001": {"api": 2},
    }


async def test_two_imports_of_one_project_queue(conns, project, database_url):
    importer, api = conns
    running = PausedImport(importer, project.id, [f"imp-{i:05d}" for i in range(12_000)])
    await asyncio.wait_for(running.written.wait(), timeout=30)
    second = await connect(database_url)
    try:
        later = asyncio.ensure_future(
            profiles.copy_profiles(second, project.id, [("imp-00001", {}), ("new", {})])
        )
        await asyncio.sleep(0.3)
        assert not later.done()
        await running.resume()
        assert await asyncio.wait_for(later, timeout=10) == 2
    finally:
        await second.close()
    assert await exact_count(api, project.id) == 12_001
