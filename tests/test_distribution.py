"""The schema distributes by `project_id` (DESIGN §2, Citus-style), read from the catalog
after migrating: every tenant table has `project_id`, every primary key, unique constraint,
unique index and exclusion constraint includes it, and every foreign key between tenant
tables pairs `project_id` with `project_id`.

Generic on purpose: a table a later migration adds is checked like the others.
"""

import asyncpg

from db.pool import connect

# Global tables (reference tables under Citus): the projects themselves, and the migration
# runner's bookkeeping.
GLOBAL_TABLES = {"projects", "schema_migrations"}
# Unique keys that stay global: a token is looked up by its hash before its project is known.
GLOBAL_KEYS = {("api_keys", ("token_hash",))}

_TABLES = """
    SELECT c.oid, c.relname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
"""
# Key columns only (not INCLUDE ones); 0 stands for an expression.
_UNIQUE_INDEXES = """
    SELECT c.relname AS table_name, i.relname AS index_name,
           array(
               SELECT coalesce(a.attname, '(expression)')
               FROM unnest((x.indkey::int2[])[0:x.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
               LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
               ORDER BY k.n
           ) AS columns
    FROM pg_index x
    JOIN pg_class c ON c.oid = x.indrelid
    JOIN pg_class i ON i.oid = x.indexrelid
    WHERE c.oid = ANY($1::oid[]) AND (x.indisunique OR x.indisexclusion)
"""
_FOREIGN_KEYS = """
    SELECT f.conname, c.relname AS table_name, r.relname AS referenced,
           array(
               SELECT a.attname || '->' || b.attname
               FROM unnest(f.conkey, f.confkey) WITH ORDINALITY AS k(col, ref, n)
               JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.col
               JOIN pg_attribute b ON b.attrelid = f.confrelid AND b.attnum = k.ref
               ORDER BY k.n
           ) AS pairs
    FROM pg_constraint f
    JOIN pg_class c ON c.oid = f.conrelid
    JOIN pg_class r ON r.oid = f.confrelid
    WHERE f.contype = 'f' AND f.conrelid = ANY($1::oid[]) AND f.confrelid = ANY($1::oid[])
"""


async def distribution_problems(conn: asyncpg.Connection) -> list[str]:
    """Every way the current schema falls short of distributing by project_id."""
    tables = {row["relname"]: row["oid"] for row in await conn.fetch(_TABLES)}
    tenant = {name: oid for name, oid in tables.items() if name not in GLOBAL_TABLES}
    with_project = {
        row["relname"]
        for row in await conn.fetch(
            """
            SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
            WHERE a.attrelid = ANY($1::oid[]) AND a.attname = 'project_id' AND NOT a.attisdropped
            """,
            list(tenant.values()),
        )
    }
    problems = [f"{name} has no project_id" for name in sorted(set(tenant) - with_project)]
    for row in await conn.fetch(_UNIQUE_INDEXES, list(tenant.values())):
        columns = tuple(row["columns"])
        if "project_id" not in columns and (row["table_name"], columns) not in GLOBAL_KEYS:
            problems.append(
                f"unique {row['index_name']} on {row['table_name']} {columns} lacks project_id"
            )
    for row in await conn.fetch(_FOREIGN_KEYS, list(tenant.values())):
        if "project_id->project_id" not in row["pairs"]:
            problems.append(
                f"foreign key {row['conname']} of {row['table_name']} to {row['referenced']} "
                f"does not pair project_id with project_id: {row['pairs']}"
            )
    return sorted(problems)


async def test_every_tenant_key_includes_project_id(database_url):
    conn = await connect(database_url)
    try:
        assert await distribution_problems(conn) == []
    finally:
        await conn.close()


async def test_the_check_finds_each_kind_of_key_that_would_not_distribute(database_url):
    conn = await connect(database_url)
    try:
        await conn.execute(
            """
            CREATE TABLE stray (id bigint PRIMARY KEY, name text);
            CREATE TABLE owned (
                project_id  bigint NOT NULL,
                id          bigint NOT NULL,
                flag_id     bigint NOT NULL,
                code        text,
                PRIMARY KEY (project_id, id),
                UNIQUE (code),
                FOREIGN KEY (flag_id, project_id) REFERENCES flags (project_id, id)
            );
            CREATE UNIQUE INDEX owned_lower_code ON owned (lower(code)) INCLUDE (project_id);
            """
        )
        problems = await distribution_problems(conn)
    finally:
        await conn.close()
    assert problems == sorted(
        [
            "stray has no project_id",
            "unique stray_pkey on stray ('id',) lacks project_id",
            "unique owned_code_key on owned ('code',) lacks project_id",
            "unique owned_lower_code on owned ('(expression)',) lacks project_id",
            "foreign key owned_flag_id_project_id_fkey of owned to flags does not pair "
            "project_id with project_id: ['flag_id->project_id', 'project_id->id']",
        ]
    )
