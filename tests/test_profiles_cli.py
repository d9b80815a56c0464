"""`segments profiles import` and `segments profiles export`, run as a user would: a separate
process per command, files on disk, results read back over GraphQL (DESIGN §11)."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios

import orjson

from db import profiles as db_profiles
from db.pool import connect
from tests.conftest import GraphQLClient, make_project
from tests.test_cli import ROOT, SEGMENTS, run

PROFILES = "query($p: String!) { profiles(projectKey: $p, first: 100) { totalCount nodes { targetingKey attributes } } }"
SUMMARY = re.compile(r"imported (\d+) profiles, skipped (\d+) invalid lines in \d+\.\d s")


def ndjson(*lines: object) -> str:
    """Each line as given when it is a str, else as its JSON."""
    return "".join(
        (line if isinstance(line, str) else orjson.dumps(line).decode()) + "\n" for line in lines
    )


def summary(stdout: str) -> tuple[int, int]:
    match = SUMMARY.search(stdout)
    assert match, stdout
    return int(match[1]), int(match[2])


async def stored(gql: GraphQLClient, project_key: str) -> dict:
    data = await gql(PROFILES, {"p": project_key})
    return {node["targetingKey"]: node["attributes"] for node in data["profiles"]["nodes"]}


def profile(key: str, **attributes: object) -> dict:
    return {"targetingKey": key, "attributes": attributes}


BAD_NDJSON = ndjson(
    profile("ok-1", plan="pro"),
    '{"targetingKey": "broken", ',
    [1, 2],
    {"attributes": {"plan": "pro"}},
    {"targetingKey": "flat", "plan": "pro"},
    profile("x" * 257),
    {"targetingKey": "not-object", "attributes": "pro"},
    "",
    profile("ok-2", plan="free"),
)


async def test_import_ndjson_upserts_every_line_and_prints_a_summary(
    database_url, project, gql, tmp_path
):
    await gql(
        "mutation($p: String!) { upsertProfiles(input: {projectKey: $p, profiles: "
        '[{targetingKey: "u1", attributes: {plan: "free", old: true}}]}) { upsertedCount } }',
        {"p": project.key},
    )
    file = tmp_path / "people.ndjson"
    file.write_text(
        ndjson(profile("u1", plan="pro"), "", profile("u2", user={"role": "admin"}), profile("u3"))
    )

    result = run(
        "profiles", "import", "--project", project.key, str(file), database_url=database_url
    )

    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == (3, 0)
    assert result.stderr == ""  # no progress bar without a terminal
    # Attributes replace what was stored.
    assert await stored(gql, project.key) == {
        "u1": {"plan": "pro"},
        "u2": {"user": {"role": "admin"}},
        "u3": {},
    }


async def test_an_ndjson_file_with_bad_lines_imports_nothing_and_names_them(
    database_url, project, gql, tmp_path
):
    file = tmp_path / "people.jsonl"
    file.write_text(BAD_NDJSON)

    result = run(
        "profiles", "import", "--project", project.key, str(file), database_url=database_url
    )

    assert result.returncode == 1
    assert re.findall(r"^line (\d+): ", result.stderr, re.MULTILINE) == [
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
    ]
    assert "unknown field 'plan'" in result.stderr
    assert "attributes must be a JSON object" in result.stderr
    assert "6 invalid line(s); nothing imported" in result.stderr
    assert await stored(gql, project.key) == {}


async def test_skip_invalid_imports_the_valid_lines_and_counts_the_rest(
    database_url, project, gql, tmp_path
):
    file = tmp_path / "people.ndjson"
    file.write_text(BAD_NDJSON)

    result = run(
        "profiles",
        "import",
        "--skip-invalid",
        "--project",
        project.key,
        str(file),
        database_url=database_url,
    )

    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == (2, 6)
    assert "line 2: " in result.stderr
    assert await stored(gql, project.key) == {"ok-1": {"plan": "pro"}, "ok-2": {"plan": "free"}}


async def test_csv_columns_become_attributes_typed_like_json(database_url, project, gql, tmp_path):
    file = tmp_path / "people.csv"
    file.write_text(
        "targetingKey,plan,seats,score,beta,zip,note,user.role,big\n"
        'u1,pro,42,3.5,true,007,"hello, world",admin,99999999999999999999\n'
        "u2,free,-1,1e3,FALSE,,,,\n"
    )

    result = run(
        "profiles", "import", "--project", project.key, str(file), database_url=database_url
    )

    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == (2, 0)
    assert await stored(gql, project.key) == {
        "u1": {
            "plan": "pro",
            "seats": 42,
            "score": 3.5,
            "beta": True,
            "zip": "007",
            "note": "hello, world",
            "user.role": "admin",
            "big": "99999999999999999999",
        },
        "u2": {"plan": "free", "seats": -1, "score": 1000.0, "beta": False},
    }
    # A dotted column name is an attribute path, as evaluation reads it.
    preview = await gql(
        "query($p: String!) { previewSegment(input: {projectKey: $p, rules: [{condition: "
        '{attribute: "user.role", operator: EQ, value: "admin"}}]}) { memberCount } }',
        {"p": project.key},
    )
    assert preview["previewSegment"]["memberCount"] == 1


async def test_a_csv_file_with_bad_lines_imports_nothing_unless_told_to_skip_them(
    database_url, project, gql, tmp_path
):
    file = tmp_path / "people.csv"
    file.write_text('targetingKey,plan\nu1,pro\n,free\nu3,pro,extra\n"u4\nstill u4",pro\nu5,free\n')

    refused = run(
        "profiles", "import", "--project", project.key, str(file), database_url=database_url
    )
    assert refused.returncode == 1
    assert re.findall(r"^line (\d+): ", refused.stderr, re.MULTILINE) == ["3", "4"]
    assert await stored(gql, project.key) == {}

    skipped = run(
        "profiles",
        "import",
        "--skip-invalid",
        "--project",
        project.key,
        str(file),
        database_url=database_url,
    )
    assert skipped.returncode == 0, skipped.stderr
    assert summary(skipped.stdout) == (3, 2)
    assert set(await stored(gql, project.key)) == {"u1", "u4\nstill u4", "u5"}


async def test_an_import_that_would_pass_the_project_limit_imports_nothing(
    database_url, project, gql, tmp_path
):
    file = tmp_path / "people.ndjson"
    file.write_text(ndjson(profile("u1"), profile("u2"), profile("u3")))
    result = run(
        "profiles",
        "import",
        "--project",
        project.key,
        str(file),
        database_url=database_url,
        env={"SEGMENTS_MAX_PROFILES_PER_PROJECT": "2"},
    )
    assert result.returncode == 1
    assert "more than the limit of 2" in result.stderr
    assert await stored(gql, project.key) == {}


async def counter(database_url: str, project_id: int) -> int:
    """The project's profile counter, checked against its rows counted one by one."""
    conn = await connect(database_url)
    try:
        count = await db_profiles.stored_profile_count(conn, project_id)
        assert count == await db_profiles.count_all_profiles(conn, project_id)
        return count
    finally:
        await conn.close()


async def test_imports_keep_the_project_counter_exact_and_check_the_limit_with_it(
    database_url, project, gql, tmp_path
):
    limit = {"SEGMENTS_MAX_PROFILES_PER_PROJECT": "4"}
    first = tmp_path / "first.ndjson"
    first.write_text(ndjson(profile("u1"), profile("u2"), profile("u1", v=2)))
    assert (
        run(
            "profiles",
            "import",
            "--project",
            project.key,
            str(first),
            database_url=database_url,
            env=limit,
        ).returncode
        == 0
    )
    assert await counter(database_url, project.id) == 2
    # --skip-invalid: one replaced, two new, one bad line skipped.
    second = tmp_path / "second.csv"
    second.write_text("targetingKey,plan\nu2,pro\n,free\nu3,pro\nu4,free\n")
    skipped = run(
        "profiles",
        "import",
        "--skip-invalid",
        "--project",
        project.key,
        str(second),
        database_url=database_url,
        env=limit,
    )
    assert skipped.returncode == 0, skipped.stderr
    assert summary(skipped.stdout) == (3, 1)
    assert await counter(database_url, project.id) == 4
    # At the limit: replacing is fine, one more is refused and changes nothing.
    third = tmp_path / "third.ndjson"
    third.write_text(ndjson(profile("u3", v=3), profile("u5")))
    refused = run(
        "profiles",
        "import",
        "--project",
        project.key,
        str(third),
        database_url=database_url,
        env=limit,
    )
    assert refused.returncode == 1
    assert "would hold 5 profiles, more than the limit of 4" in refused.stderr
    assert await counter(database_url, project.id) == 4
    assert (await stored(gql, project.key))["u3"] == {"plan": "pro"}
    third.write_text(ndjson(profile("u3", v=3), profile("u4", v=3)))
    assert (
        run(
            "profiles",
            "import",
            "--project",
            project.key,
            str(third),
            database_url=database_url,
            env=limit,
        ).returncode
        == 0
    )
    assert await counter(database_url, project.id) == 4


async def test_a_csv_file_without_a_targeting_key_column_is_refused(
    database_url, project, gql, tmp_path
):
    file = tmp_path / "people.csv"
    file.write_text("key,plan\nu1,pro\n")
    result = run(
        "profiles",
        "import",
        "--skip-invalid",
        "--project",
        project.key,
        str(file),
        database_url=database_url,
    )
    assert result.returncode == 1
    assert "targetingKey" in result.stderr
    assert await stored(gql, project.key) == {}


async def test_the_format_is_read_from_the_content_when_the_name_does_not_tell(
    database_url, project, gql, tmp_path
):
    as_ndjson = tmp_path / "export.txt"
    as_ndjson.write_text(ndjson(profile("n1", plan="pro")))
    as_csv = tmp_path / "people"
    as_csv.write_text("targetingKey,plan\nc1,free\n")
    for file in (as_ndjson, as_csv):
        result = run(
            "profiles", "import", "--project", project.key, str(file), database_url=database_url
        )
        assert result.returncode == 0, result.stderr
    assert await stored(gql, project.key) == {"n1": {"plan": "pro"}, "c1": {"plan": "free"}}


async def test_import_uses_the_only_project_and_refuses_to_guess_among_several(
    database_url, project, gql, tmp_path
):
    file = tmp_path / "people.ndjson"
    file.write_text(ndjson(profile("u1")))
    alone = run("profiles", "import", str(file), database_url=database_url)
    assert alone.returncode == 0, alone.stderr
    assert set(await stored(gql, project.key)) == {"u1"}

    await make_project(database_url, "globex")
    ambiguous = run("profiles", "import", str(file), database_url=database_url)
    assert ambiguous.returncode == 1
    assert "--project" in ambiguous.stderr
    unknown = run("profiles", "import", "--project", "nope", str(file), database_url=database_url)
    assert unknown.returncode == 1
    assert "no project" in unknown.stderr


async def test_a_large_import_streams_through_several_copy_chunks(
    database_url, project, gql, tmp_path
):
    count = 25_000
    file = tmp_path / "many.ndjson"
    with file.open("wb") as out:
        for i in range(count):
            out.write(
                orjson.dumps(profile(f"user-{i:06}", n=i, plan="pro" if i % 4 == 0 else "free"))
                + b"\n"
            )

    result = run(
        "profiles", "import", "--project", project.key, str(file), database_url=database_url
    )

    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == (count, 0)
    data = await gql(
        'query($p: String!) { profiles(projectKey: $p, first: 1, search: "user-024999") { totalCount nodes { attributes } } '
        "all: profiles(projectKey: $p, first: 0) { totalCount } "
        'previewSegment(input: {projectKey: $p, rules: [{condition: {attribute: "plan", operator: EQ, value: "pro"}}]}) { memberCount } }',
        {"p": project.key},
    )
    assert data["all"]["totalCount"] == count
    assert data["profiles"]["nodes"] == [{"attributes": {"n": 24999, "plan": "free"}}]
    assert data["previewSegment"]["memberCount"] == count // 4


async def test_a_bad_line_after_chunks_were_written_rolls_them_back(
    database_url, project, gql, tmp_path
):
    """The file is read once: chunks before a bad line are already written when it is read,
    and the transaction takes them back."""
    count = db_profiles.COPY_CHUNK_SIZE + 500
    file = tmp_path / "late.ndjson"
    with file.open("wb") as out:
        for i in range(count):
            out.write(orjson.dumps(profile(f"user-{i:06}", n=i)) + b"\n")
        out.write(b'{"targetingKey": "late", "attributes": []}\n')
        out.write(orjson.dumps(profile("after-the-bad-one")) + b"\n")

    result = run(
        "profiles", "import", "--project", project.key, str(file), database_url=database_url
    )

    assert result.returncode == 1
    assert f"line {count + 1}: attributes must be a JSON object" in result.stderr
    assert "1 invalid line(s); nothing imported" in result.stderr
    data = await gql(
        "query($p: String!) { profiles(projectKey: $p, first: 0) { totalCount } }",
        {"p": project.key},
    )
    assert data["profiles"]["totalCount"] == 0


def test_import_shows_a_progress_bar_on_a_terminal(database_url, project, tmp_path):
    file = tmp_path / "people.ndjson"
    file.write_text(ndjson(profile("u1"), profile("u2")))
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # rows, columns
    try:
        environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        process = subprocess.run(
            [*SEGMENTS, "profiles", "import", "--project", project.key, str(file)],
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
    # One pass, one bar, counting the file's bytes up to all of them.
    assert b"importing" in shown and b"76.0/76.0" in shown
    assert summary(process.stdout) == (2, 0)


async def test_export_writes_the_members_of_a_segment_as_ndjson(
    database_url, project, gql, tmp_path
):
    file = tmp_path / "people.ndjson"
    file.write_text(
        ndjson(
            profile("b", plan="pro", n=1),
            profile("a", plan="pro", user={"id": 7}),
            profile("c", plan="free"),
        )
    )
    assert (
        run(
            "profiles", "import", "--project", project.key, str(file), database_url=database_url
        ).returncode
        == 0
    )
    created = await gql(
        'mutation($p: String!) { createSegment(input: {projectKey: $p, name: "Pro", key: "pro", rules: '
        '[{condition: {attribute: "plan", operator: EQ, value: "pro"}}]}) { userErrors { code } } }',
        {"p": project.key},
    )
    assert created["createSegment"]["userErrors"] == []

    result = run(
        "profiles",
        "export",
        "--segment",
        "pro",
        "--project",
        project.key,
        database_url=database_url,
    )

    assert result.returncode == 0, result.stderr
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == [
        profile("a", plan="pro", user={"id": 7}),
        profile("b", plan="pro", n=1),
    ]
    assert "exported 2 members" in result.stderr
    # The export imports back as it is.
    again = tmp_path / "export.ndjson"
    again.write_text(result.stdout)
    assert run("profiles", "import", str(again), database_url=database_url).returncode == 0

    missing = run("profiles", "export", "--segment", "nope", database_url=database_url)
    assert missing.returncode == 1
    assert "no live segment" in missing.stderr
    assert missing.stdout == ""


async def test_seed_demo_stores_profiles_that_the_demo_segments_match(
    database_url, client, tmp_path
):
    seeded = run("seed-demo", database_url=database_url)
    assert seeded.returncode == 0, seeded.stderr
    demo = GraphQLClient(client, seeded.stdout.strip().splitlines()[-1])
    data = await demo(
        '{ profiles(projectKey: "demo", first: 1) { totalCount } '
        'segments(projectKey: "demo", first: 20) { nodes { key force memberCount } } }'
    )
    total = data["profiles"]["totalCount"]
    assert 900 <= total <= 1100
    counts = {node["key"]: node["memberCount"] for node in data["segments"]["nodes"]}
    assert counts["beta_testers"] == total  # forced on
    for key, count in counts.items():
        if key != "beta_testers":
            assert 0 < count < total, (key, count)


async def test_import_dash_reads_standard_input(database_url, project, gql):
    lines = ndjson(profile("stdin-1", plan="pro"), profile("stdin-2", plan="free"))
    result = run(
        "profiles", "import", "--project", project.key, "-", database_url=database_url, input=lines
    )
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == (2, 0)
    assert await stored(gql, project.key) == {
        "stdin-1": {"plan": "pro"},
        "stdin-2": {"plan": "free"},
    }


async def test_import_dash_checks_standard_input_like_a_file(database_url, project, gql):
    result = run(
        "profiles",
        "import",
        "--project",
        project.key,
        "-",
        database_url=database_url,
        input="targetingKey,plan\nok,pro\n,free\n",
    )
    assert result.returncode == 1
    assert "line 3" in result.stderr
    assert await stored(gql, project.key) == {}


async def test_export_follows_references_to_other_segments(database_url, project, gql, tmp_path):
    """A segment "not in pro" exports the members memberCount counts: the free ones."""
    file = tmp_path / "people.ndjson"
    file.write_text(ndjson(profile("a", plan="pro"), profile("b", plan="free")))
    assert run("profiles", "import", "--project", project.key, str(file),
               database_url=database_url).returncode == 0  # fmt: skip
    for query in (
        '{projectKey: $p, name: "Pro", key: "pro", rules: '
        '[{condition: {attribute: "plan", operator: EQ, value: "pro"}}]}',
        '{projectKey: $p, name: "Not pro", key: "not_pro", rules: '
        '[{segment: {segmentKey: "pro", negate: true}}]}',
    ):
        created = await gql(
            f"mutation($p: String!) {{ createSegment(input: {query}) {{ userErrors {{ code }} }} }}",
            {"p": project.key},
        )
        assert created["createSegment"]["userErrors"] == []
    result = run("profiles", "export", "--segment", "not_pro", "--project", project.key,
                 database_url=database_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [orjson.loads(line)["targetingKey"] for line in result.stdout.splitlines()] == ["b"]
