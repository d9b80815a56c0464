"""The `segments` command line, run as a user would: a separate process per command."""

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from db.migrate import migration_files
from db.pool import connect
from tests.conftest import refused_soon, with_database

ROOT = Path(__file__).resolve().parent.parent
SEGMENTS = [sys.executable, "-m", "api.cli"]


def run(
    *args: str,
    database_url: str | None,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    input: str | None = None,
    command: list[str] = SEGMENTS,
):
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url:
        environ["DATABASE_URL"] = database_url
    environ.update(env or {})
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        input=input,
    )


async def test_migrate_twice_is_a_no_op_the_second_time(database_url):
    first = run("migrate", database_url=database_url)
    second = run("migrate", database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout


async def test_two_processes_migrating_an_empty_database_together_both_succeed(server_url):
    name = "segments_concurrent_migrate"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(server_url, name)
        procs = [
            subprocess.Popen(
                [*SEGMENTS, "migrate"],
                cwd=ROOT,
                env={**os.environ, "DATABASE_URL": url},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
        assert [r[2] for r in results] == [0, 0], results
        conn = await asyncpg.connect(url)
        try:
            versions = await conn.fetch("SELECT version FROM schema_migrations")
        finally:
            await conn.close()
        assert [r["version"] for r in versions] == [name for name, _ in migration_files()]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_project_and_api_key_create_give_a_working_token(database_url, client):
    created = run("project", "create", "shop", "--name", "Shop", database_url=database_url)
    assert created.returncode == 0, created.stderr
    key = run(
        "api-key", "create", "--project", "shop", "--role", "viewer", database_url=database_url
    )
    assert key.returncode == 0, key.stderr
    token = key.stdout.strip().splitlines()[-1]

    response = await client.post(
        "/graphql",
        json={"query": '{ project(key: "shop") { name environments { key } } }'},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json() == {
        "data": {
            "project": {"name": "Shop", "environments": [{"key": "production"}, {"key": "staging"}]}
        }
    }
    conn = await connect(database_url)
    try:
        stored = await conn.fetchval("SELECT token_hash FROM api_keys WHERE name = 'viewer key'")
    finally:
        await conn.close()
    assert token not in stored  # only the hash is kept


async def test_api_key_list_and_revoke_stop_a_token_at_once(database_url, client):
    assert run("project", "create", "shop", database_url=database_url).returncode == 0
    token = (
        run(
            "api-key",
            "create",
            "--project",
            "shop",
            "--role",
            "editor",
            "--name",
            "ci",
            database_url=database_url,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    listed = run("api-key", "list", "--project", "shop", database_url=database_url)
    assert token not in listed.stdout
    key_id, role, state, name = listed.stdout.strip().splitlines()[-1].split("\t")
    assert (role, state, name) == ("editor", "active", "ci")
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    ).status_code == 200

    revoked = run("api-key", "revoke", key_id, "--project", "shop", database_url=database_url)
    assert revoked.returncode == 0, revoked.stderr
    assert await refused_soon(client, token)
    again = run("api-key", "revoke", key_id, "--project", "shop", database_url=database_url)
    assert again.returncode == 1


async def test_project_create_refuses_a_taken_key(database_url):
    assert run("project", "create", "shop", database_url=database_url).returncode == 0
    again = run("project", "create", "shop", database_url=database_url)
    assert again.returncode == 1
    assert "exists" in again.stderr


@pytest.mark.parametrize("key", ["", "bad key!", "k" * 101])
async def test_project_create_refuses_a_malformed_key(database_url, key):
    result = run("project", "create", key, database_url=database_url)
    assert result.returncode == 1
    assert "key" in result.stderr


async def test_api_key_create_for_unknown_project_fails(database_url):
    result = run(
        "api-key", "create", "--project", "nope", "--role", "editor", database_url=database_url
    )
    assert result.returncode == 1
    assert "no project" in result.stderr


def test_export_schema_prints_the_committed_schema_graphql():
    result = run("export-schema", database_url=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "schema.graphql").read_text(), (
        "schema.graphql drifted: regenerate it with `segments export-schema > schema.graphql`"
    )


async def test_seed_demo_fills_a_demo_project_once(database_url):
    first = run("seed-demo", database_url=database_url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1].startswith("seg_")
    second = run("seed-demo", database_url=database_url)
    assert "exists already" in second.stdout
    conn = await connect(database_url)
    try:
        names = {r["name"] for r in await conn.fetch("SELECT name FROM segments")}
        used = await conn.fetchval("SELECT count(DISTINCT segment_id) FROM targeting_rules")
    finally:
        await conn.close()
    assert {"EU Premium Users", "Beta Testers", "Non-Legacy Users"} <= names
    assert len(names) == 9
    assert used >= 3


def test_without_database_url_commands_use_the_embedded_postgres_and_name_its_folder(tmp_path):
    data = tmp_path / "data"
    env = {"SEGMENTS_DATA_DIR": str(data)}
    created = run("migrate", database_url=None, env=env)
    assert created.returncode == 0, created.stderr
    first = run("project", "create", "local", database_url=None, env=env)
    assert first.returncode == 0, first.stderr
    # The data survives: a second process finds the project.
    again = run("project", "create", "local", database_url=None, env=env)
    assert again.returncode == 1
    assert (data / "pg" / "PG_VERSION").exists()
    # Every command names the folder, on stderr: stdout keeps its contracts.
    key = run(
        "api-key", "create", "--project", "local", "--role", "viewer", database_url=None, env=env
    )
    for result in (created, first, again, key):
        assert f"embedded PostgreSQL data: {data}\n" in result.stderr, result.stderr
        assert str(data) not in result.stdout
    assert key.stdout.splitlines()[-1].startswith("seg_")


def test_a_command_run_where_no_data_folder_exists_fails_instead_of_creating_one(tmp_path):
    relative = "elsewhere/.data"
    result = run(
        "api-key",
        "list",
        "--project",
        "demo",
        database_url=None,
        env={"SEGMENTS_DATA_DIR": relative},
        cwd=tmp_path,
    )
    assert result.returncode == 1
    folder = tmp_path / relative
    assert f"error: no embedded database in {folder}" in result.stderr
    assert "SEGMENTS_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "elsewhere" / ".data" / "pg").exists()


def test_hints_name_the_command_as_it_was_typed(tmp_path):
    script = Path(sys.executable).parent / "segments"
    if not script.exists():
        pytest.skip("the segments console script is not installed beside this Python")
    typed = os.path.relpath(script, tmp_path)
    result = run(
        "project",
        "list",
        database_url=None,
        cwd=tmp_path,
        command=[typed],
        env={"SEGMENTS_DATA_DIR": ".data"},
    )
    assert result.returncode == 1
    assert f"`{typed} serve`" in result.stderr and f"`{typed} migrate`" in result.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "args",
    [
        ["migrate"],
        ["serve", "--port", "0"],
        ["project", "list"],
        ["project", "create", "shop"],
        ["api-key", "create", "--project", "shop", "--role", "viewer"],
        ["api-key", "list", "--project", "shop"],
        ["api-key", "revoke", "1", "--project", "shop"],
        ["profiles", "export", "--segment", "s"],
        ["seed-demo"],
    ],
    ids=lambda args: "-".join(a for a in args if not a.startswith("-") and not a.isdigit())[:30],
)
def test_an_unreachable_database_url_is_one_error_line_for_every_command(args):
    port = _closed_port()
    result = run(*args, database_url=f"postgresql://segments@127.0.0.1:{port}/segments")
    assert result.returncode == 1
    assert (
        result.stderr
        == f"error: cannot connect to the database at 127.0.0.1:{port}: connection refused\n"
    )


def test_serve_on_a_busy_port_fails_before_the_banner(database_url):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port), database_url=database_url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"error: port {port} on 127.0.0.1 is in use; choose another with --port N"
    )
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SEGMENTS_CORS_ORIGINS", "admin.example.com", "'admin.example.com' is not an origin"),
        ("SEGMENTS_POOL_MAX_SIZE", "ten", "valid integer"),
    ],
)
def test_an_invalid_setting_is_one_error_line_naming_the_variable(variable, value, says):
    result = run("migrate", database_url="postgresql://unused@127.0.0.1:1/x", env={variable: value})
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {variable}: ") and says in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1


async def test_project_list_prints_a_header_and_every_project(database_url):
    assert (
        run("project", "create", "shop", "--name", "Shop", database_url=database_url).returncode
        == 0
    )
    assert run("project", "create", "blog", database_url=database_url).returncode == 0
    listed = run("project", "list", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert rows[0] == ["key", "name", "created"]
    assert [row[:2] for row in rows[1:]] == [["blog", "blog"], ["shop", "Shop"]]


async def test_api_key_list_prints_a_header_row(database_url):
    assert run("project", "create", "shop", database_url=database_url).returncode == 0
    empty = run("api-key", "list", "--project", "shop", database_url=database_url)
    assert empty.stdout == "id\trole\tstate\tname\n"


async def test_serve_with_embedded_database_seeds_demo_and_answers(tmp_path, unused_tcp_port):
    proc = await asyncio.create_subprocess_exec(
        *SEGMENTS,
        "serve",
        "--port",
        str(unused_tcp_port),
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            "SEGMENTS_DATA_DIR": str(tmp_path / "data"),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        lines = []
        token = None
        async with asyncio.timeout(60):
            while token is None:
                line = (await proc.stdout.readline()).decode()
                assert line, "".join(lines)
                lines.append(line)
                if line.startswith("seg_"):
                    token = line.strip()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{unused_tcp_port}") as http:
            for _ in range(100):
                try:
                    ready = await http.get("/health/ready")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            assert ready.status_code == 200
            answer = await http.post(
                "/graphql",
                json={"query": '{ segments(projectKey: "demo") { totalCount } }'},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.json() == {"data": {"segments": {"totalCount": 9}}}
            page = await http.get("/graphql", headers={"Accept": "text/html"})
            assert page.status_code == 200 and "graphiql" in page.text.lower()
    finally:
        proc.terminate()
        await proc.wait()


async def test_project_create_checks_key_and_name_and_refuses_a_taken_key(database_url):
    bad = run("project", "create", "bad key!", database_url=database_url)
    assert bad.returncode == 1 and bad.stderr.strip().endswith(
        "error: key: key must be 1-100 characters of letters, digits, '_' and '-'"
    )
    long_name = run("project", "create", "shop", "--name", "x" * 101, database_url=database_url)
    assert long_name.returncode == 1 and "error: name:" in long_name.stderr
    created = run("project", "create", "shop", "--name", "  Shop  ", database_url=database_url)
    assert created.returncode == 0, created.stderr
    again = run("project", "create", "shop", database_url=database_url)
    assert again.returncode == 1
    assert "error: a project with key 'shop' exists already" in again.stderr
    listed = run("project", "list", database_url=database_url)
    assert "shop\tShop\t" in listed.stdout


async def test_an_admin_key_from_the_cli_changes_project_settings(database_url, client):
    assert run("project", "create", "shop", database_url=database_url).returncode == 0
    created = run(
        "api-key", "create", "--project", "shop", "--role", "admin", database_url=database_url
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    response = await client.post(
        "/graphql",
        json={
            "query": 'mutation { updateProjectSettings(input: {projectKey: "shop", '
            "requireApproval: true}) { project { settings { requireApproval } } } }"
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json() == {
        "data": {"updateProjectSettings": {"project": {"settings": {"requireApproval": True}}}}
    }
