"""`segments targets import` and `segments targets export`, run as a user would: a separate
process per command, files on disk, results read back over GraphQL (DESIGN §13)."""

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
import time

from db.pool import connect
from tests.mutations.test_big_segments import all_targets, new_big, update_targets
from tests.test_cli import ROOT, SEGMENTS, run

SUMMARY = re.compile(
    r"(imported|replaced) (included|excluded) of (\S+): (\d+) keys read, (\d+) added, "
    r"(\d+) removed; now (\d+) included, (\d+) excluded, generation (\d+), in \d+\.\d s"
)
COUNTS = """
query($id: ID!) { node(id: $id) { ... on Segment { includedCount excludedCount generation version } } }
"""


def summary(stdout: str) -> tuple[str, ...]:
    match = SUMMARY.search(stdout)
    assert match, stdout
    return match.groups()


def import_file(database_url: str, project_key: str, file: object, *args: str):
    return run(
        "targets",
        "import",
        "--project",
        project_key,
        "--segment",
        "customers",
        *args,
        str(file),
        database_url=database_url,
    )


async def test_import_adds_keys_and_prints_a_summary(database_url, project, gql, tmp_path):
    big = await new_big(gql, project.key)
    await update_targets(gql, big["id"], addIncluded=["already"])
    file = tmp_path / "keys.txt"
    file.write_text("u2\nu1\n\nalready\nwith space \r\n")
    result = import_file(database_url, project.key, file)
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == (
        "imported",
        "included",
        "customers",
        "4",
        "3",
        "0",
        "4",
        "0",
        "0",
    )
    assert result.stderr == ""  # no progress bar without a terminal
    assert await all_targets(gql, big["id"], "INCLUDED") == ["already", "u1", "u2", "with space "]
    counts = (await gql(COUNTS, {"id": big["id"]}))["node"]
    assert counts == {"includedCount": 4, "excludedCount": 0, "generation": 0, "version": 1}


async def test_import_csv_into_excluded(database_url, project, gql, tmp_path):
    big = await new_big(gql, project.key)
    file = tmp_path / "keys.csv"
    file.write_text('name,targetingKey\nAda,"a,1"\nBob,b2\n')
    result = import_file(database_url, project.key, file, "--kind", "excluded")
    assert result.returncode == 0, result.stderr
    assert await all_targets(gql, big["id"], "EXCLUDED") == ["a,1", "b2"]


async def test_bad_lines_import_nothing_and_are_named(database_url, project, gql, tmp_path):
    big = await new_big(gql, project.key)
    file = tmp_path / "keys.txt"
    file.write_text("ok\n" + "x" * 257 + "\nfine\nnul\x00here\n")
    result = import_file(database_url, project.key, file)
    assert result.returncode == 1
    assert re.findall(r"^line (\d+): ", result.stderr, re.MULTILINE) == ["2", "4"]
    assert "nothing imported" in result.stderr
    assert await all_targets(gql, big["id"], "INCLUDED") == []


async def test_replace_swaps_the_whole_list_and_counts_a_generation(
    database_url, project, gql, tmp_path
):
    big = await new_big(gql, project.key)
    await update_targets(gql, big["id"], addIncluded=["old1", "old2", "keep"], addExcluded=["x"])
    file = tmp_path / "keys.txt"
    file.write_text("keep\nnew1\n")
    result = import_file(database_url, project.key, file, "--replace")
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)[0] == "replaced"
    assert await all_targets(gql, big["id"], "INCLUDED") == ["keep", "new1"]
    assert await all_targets(gql, big["id"], "EXCLUDED") == ["x"]
    counts = (await gql(COUNTS, {"id": big["id"]}))["node"]
    assert counts == {"includedCount": 2, "excludedCount": 1, "generation": 1, "version": 1}


READER = """
query($p: String!) {
  segment(projectKey: $p, key: "customers") { includedCount generation }
  onlyOld: evaluateSegment(projectKey: $p, key: "customers", context: {targetingKey: "old-000123"}) { matched }
  onlyNew: evaluateSegment(projectKey: $p, key: "customers", context: {targetingKey: "new-199998"}) { matched }
  both: evaluateSegment(projectKey: $p, key: "customers", context: {targetingKey: "both"}) { matched }
}"""
# The transactions of other client connections of this database that have written: the
# import's, while it runs (the same one before and after a read: the read fell inside it).
IMPORT_OPEN = """
SELECT array_agg(pid::text || ':' || backend_xid::text ORDER BY pid)
FROM pg_stat_activity
WHERE datname = current_database()
  AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
  AND backend_xid IS NOT NULL
"""


def _states(data: dict, old: int, new: int) -> list[str]:
    """What each answer of one READER request says the list is: 'old', 'new' or a problem."""
    count, generation = data["segment"]["includedCount"], data["segment"]["generation"]
    by_count = {(old, 0): "old", (new, 1): "new"}.get((count, generation), f"count {count}")
    return [
        by_count,
        "old" if data["onlyOld"]["matched"] else "new",
        "new" if data["onlyNew"]["matched"] else "old",
        # A key of both lists: never missing, whatever the moment (no empty, no half list).
        "both" if data["both"]["matched"] else "missing 'both'",
    ]


async def test_a_replace_stays_fast_when_the_lists_statistics_are_stale(
    database_url, project, gql, tmp_path
):
    """A list that grew since segment_targets was last analyzed looks like a row or so to
    the planner; the replace's anti-joins must not compare every pair of keys then (20,000
    by 20,000 took 27 s that way; hashed, a fraction of a second)."""
    big = await new_big(gql, project.key)
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("".join(f"old-{i:06d}\n" for i in range(20_000)))
    new.write_text("".join(f"new-{i:06d}\n" for i in range(20_000)))
    assert import_file(database_url, project.key, old).returncode == 0
    conn = await connect(database_url)
    try:  # what the planner believes of a table analyzed while it was nearly empty
        await conn.execute(
            """
            UPDATE pg_class SET reltuples = 1, relpages = 1
            WHERE relname IN ('segment_targets', 'segment_targets_pkey')
            """
        )
    finally:
        await conn.close()
    started = time.monotonic()
    result = import_file(database_url, project.key, new, "--replace")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout)[3:6] == ("20000", "20000", "20000")
    assert elapsed < 5, f"the replace took {elapsed:.1f} s"
    listed = (await gql(COUNTS, {"id": big["id"]}))["node"]
    assert listed["includedCount"] == 20_000


async def test_readers_over_http_see_the_old_list_or_the_new_one_while_a_replace_runs(
    database_url, project, gql, tmp_path
):
    big = await new_big(gql, project.key)
    old = ["both", *(f"old-{i:06d}" for i in range(4_999))]
    await update_targets(gql, big["id"], addIncluded=old)
    new = [f"new-{i:06d}" for i in range(199_999)] + ["both"]
    file = tmp_path / "keys.txt"
    file.write_text("\n".join(new) + "\n")
    process = await asyncio.create_subprocess_exec(
        *SEGMENTS,
        "targets",
        "import",
        "--project",
        project.key,
        "--segment",
        "customers",
        "--replace",
        str(file),
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            "DATABASE_URL": database_url,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watcher = await connect(database_url)
    timeline: list[list[str]] = []
    inside = 0  # reads that began and ended while the import's transaction was open
    try:
        while process.returncode is None:
            open_before = await watcher.fetchval(IMPORT_OPEN)
            states = _states(await gql(READER, {"p": project.key}), len(old), len(new))
            if open_before and await watcher.fetchval(IMPORT_OPEN) == open_before:
                inside += 1
                assert states[:3] == ["old"] * 3, states  # nothing shows before the commit
            timeline.append(states)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 0.005)
    finally:
        await watcher.close()
    _stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    timeline.append(_states(await gql(READER, {"p": project.key}), len(old), len(new)))
    assert all(states[3] == "both" for states in timeline), timeline
    # Each answer is old or new, and once one answer showed the new list no later one shows
    # the old: at most one request (the one the commit fell in) mixes the two.
    answers = [states[:3] for states in timeline]
    assert {state for states in answers for state in states} <= {"old", "new"}, answers
    first_new = next(at for at, states in enumerate(answers) if "new" in states)
    transition = [states for states in answers if len(set(states)) > 1]
    assert all(states == ["new"] * 3 for states in answers[first_new + 1 :]), answers[
        first_new - 1 : first_new + 5
    ]
    assert len(transition) <= 1, transition
    assert timeline[0][:3] == ["old"] * 3 and timeline[-1][:3] == ["new"] * 3
    assert inside >= 1, "no read fell inside the replace's transaction"


async def test_import_refuses_a_standard_segment_and_an_unknown_one(
    database_url, project, gql, tmp_path
):
    file = tmp_path / "keys.txt"
    file.write_text("u1\n")
    result = import_file(database_url, project.key, file)
    assert result.returncode == 1
    assert "No live segment 'customers'" in result.stderr
    await gql(
        'mutation($p: String!) { createSegment(input: {projectKey: $p, name: "Customers"}) { segment { id } } }',
        {"p": project.key},
    )
    result = import_file(database_url, project.key, file)
    assert result.returncode == 1
    assert "standard segment" in result.stderr


async def test_import_over_the_limit_imports_nothing(database_url, project, gql, tmp_path):
    big = await new_big(gql, project.key)
    await update_targets(gql, big["id"], addIncluded=["a", "b"])
    file = tmp_path / "keys.txt"
    file.write_text("c\nd\n")
    result = run(
        "targets",
        "import",
        "--project",
        project.key,
        "--segment",
        "customers",
        str(file),
        database_url=database_url,
        env={"SEGMENTS_MAX_BIG_SEGMENT_TARGETS": "3"},
    )
    assert result.returncode == 1
    assert "at most 3 targets" in result.stderr
    assert await all_targets(gql, big["id"], "INCLUDED") == ["a", "b"]


async def test_export_writes_one_key_per_line(database_url, project, gql):
    big = await new_big(gql, project.key)
    await update_targets(gql, big["id"], addIncluded=["b", "a", "c"], addExcluded=["z"])
    result = run(
        "targets",
        "export",
        "--project",
        project.key,
        "--segment",
        "customers",
        database_url=database_url,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "a\nb\nc\n"
    result = run(
        "targets",
        "export",
        "--project",
        project.key,
        "--segment",
        "customers",
        "--kind",
        "excluded",
        database_url=database_url,
    )
    assert result.stdout == "z\n"


def test_import_shows_a_progress_bar_on_a_terminal(database_url, project, tmp_path):
    asyncio.run(_big_without_app(database_url, project.id))
    file = tmp_path / "keys.txt"
    file.write_text("u1\nu2\n")
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        process = subprocess.run(
            [
                *SEGMENTS,
                "targets",
                "import",
                "--project",
                project.key,
                "--segment",
                "customers",
                str(file),
            ],
            cwd=ROOT,
            env={**environ, "DATABASE_URL": database_url},
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=120,
            check=False,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert process.returncode == 0
    assert b"importing" in shown and b"100%" in shown  # one pass over the file, in bytes
    assert summary(process.stdout)[3:5] == ("2", "2")


async def _big_without_app(database_url: str, project_id: int) -> None:
    conn = await connect(database_url)
    try:
        await conn.execute(
            """
            INSERT INTO segments (project_id, key, name, salt, unbounded)
            VALUES ($1, 'customers', 'Customers', 'customers', true)
            """,
            project_id,
        )
    finally:
        await conn.close()
