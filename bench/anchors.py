"""`python -m bench --anchors`: PostGraphile 4 on the same seeded database, beside the list.

PostGraphile compiles a GraphQL query into one SQL statement that builds the JSON inside
PostgreSQL; it is what many teams would run instead of writing a server, so the list page is
measured against it (../shared/anchors/postgraphile/, copied into bench/postgraphile/).

With `node` and `npm` on PATH, PostGraphile 4 is installed once by npm into a cache folder
(`$XDG_CACHE_HOME/segments-bench/postgraphile`, default `~/.cache/...`), the `pgl` view is
created in the bench database (its own schema; the project's tables are untouched), and
`postgraphile` is started with one process, no GraphiQL and no query log. Its answer must
carry the same 50 keys in the same order as the list scenario's. Without Node the anchor is
skipped with one line saying so.
"""

import asyncio
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from bench.scenarios import PAGE, Scenario
from bench.seed import Seeded

NAME = "postgraphile"
FILES = Path(__file__).with_name("postgraphile")
VIEW = FILES / "pgl_view.sql"
QUERY = FILES / "d_query.graphql"
PACKAGE = "postgraphile@4"
INSTALL_TIMEOUT_S = 600


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "segments-bench" / "postgraphile"


def install(log: Callable[[str], None]) -> tuple[Path | None, str | None]:
    """(the postgraphile executable, None), or (None, why the anchor is skipped)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None, "node and npm are not on PATH: the PostGraphile anchor is skipped"
    folder = cache_dir()
    executable = folder / "node_modules" / ".bin" / "postgraphile"
    if executable.exists():
        return executable, None
    folder.mkdir(parents=True, exist_ok=True)
    log(f"installing {PACKAGE} with npm into {folder}")
    try:
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(folder),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                PACKAGE,
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"npm install {PACKAGE} took over {INSTALL_TIMEOUT_S} s: anchor skipped"
    if done.returncode != 0 or not executable.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return None, f"npm install {PACKAGE} failed ({done.returncode}): {' | '.join(tail)}"
    return executable, None


async def _create_view(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(VIEW.read_text())
    finally:
        await conn.close()


def prepare(dsn: str) -> None:
    """The `pgl` schema and its view in the bench database (idempotent)."""
    asyncio.run(_create_view(dsn))


def command(executable: Path, dsn: str, host: str, port: int) -> list[str]:
    """PostGraphile as ../shared/anchors/postgraphile/README.md runs it, read-only."""
    return [
        str(executable),
        "--connection",
        dsn,
        "--schema",
        "public,pgl",
        "--host",
        host,
        "--port",
        str(port),
        "--disable-query-log",
        "--simple-collections",
        "both",
        "--dynamic-json",
        "--no-setof-functions-contain-nulls",
        "--disable-default-mutations",
    ]


def keys(document: Any) -> list[str]:
    return [node["key"] for node in document["data"]["allSegments"]["nodes"]]


def scenario(seeded: Seeded) -> Scenario:
    """The list scenario in PostGraphile's schema (BigInt variables travel as strings)."""
    expect = min(PAGE, seeded.live_segments)
    body = orjson.dumps(
        {"query": QUERY.read_text(), "variables": {"projectId": str(seeded.project_id)}}
    )

    def check(document: Any) -> str | None:
        found = len(keys(document))
        return None if found == expect else f"{found} segments instead of {expect}"

    return Scenario(
        NAME,
        NAME,
        "POST",
        "/graphql",
        body,
        check,
        "PostGraphile 4, same page (one SQL statement)",
        authenticated=False,  # PostGraphile refuses a bearer token it has no JWT secret for
    )
