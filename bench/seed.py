"""Creates the benchmark database and fills it with a realistic project, straight through COPY.

Everything is generated in Python from a fixed random seed: two runs with the same sizes hold
the same names, keys, tags and rules (timestamps are relative to now).
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from bench.evaluate import RULES as EVAL_RULES
from db import api_keys, projects
from db.migrate import migrate
from rules.validate import derive_key

DATABASE_NAME = "segments_bench"
PROJECT_KEY = "bench"
EVAL_KEY = "bench_eval"
# The same ten conditions plus "in bench_ref_pro" and "not in bench_ref_blocked".
EVAL_REFS_KEY = "bench_eval_refs"
EVAL_REFERENCED = {
    "bench_ref_pro": [{"attribute": "user.plan", "operator": "EQ", "value": "pro"}],
    "bench_ref_blocked": [{"attribute": "user.country", "operator": "IN", "value": ["KP", "IR"]}],
}
# A word of the name generator found in one name (or key) in five.
SEARCH_TERM = "mobile"
RANDOM_SEED = 20261126


def _words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",")]


# Names are "<adjective> <region> [<platform>] <noun>", numbered from the second one on.
ADJECTIVES = _words(
    """Premium, Free, Trial, Enterprise, Beta, Churned, Active, Dormant, New, Returning, Power,
    Casual, High-Value, At-Risk, Loyal, Inactive, Engaged, Verified, Unverified, Early,
    Internal, Partner, Reseller, Student, Nonprofit, Legacy, Annual, Monthly, Paused, VIP"""
)
REGIONS = _words(
    """EU, US, APAC, LATAM, DACH, Nordics, UK, Canada, Japan, India, Brazil, France, Benelux,
    Iberia, Middle East, Africa, Oceania, Global, East Coast, West Coast, Korea, Mexico, Italy,
    Poland, Turkey"""
)
PLATFORMS = _words("Web, Mobile, iOS, Android, Desktop, Mobile Web, Tablet")
NOUNS = _words(
    """Users, Customers, Admins, Testers, Accounts, Visitors, Subscribers, Developers, Partners,
    Shoppers, Teams, Workspaces, Buyers, Creators, Members, Owners, Editors, Viewers, Guests,
    Organizations"""
)
TAGS = _words(
    """geo, billing, beta, mobile, internal, experiment, lifecycle, growth, retention,
    team:payments, team:core, team:growth, team:mobile, q1-2026, q4-2025, launch, compliance,
    gdpr, pricing.v2, onboarding"""
)
DESCRIPTIONS = [
    "{name}: owned by the {team} team.",
    "Used for the {quarter} rollout of the new checkout.",
    "Audience for {team} experiments; review quarterly.",
    "Kill-switch audience. Do not delete without asking #{team}.",
    "Customers matching the {quarter} pricing test.",
]
TEAMS = _words("payments, core, growth, mobile, platform, search, ads")
COUNTRIES = _words(
    "DE, FR, ES, IT, NL, AT, BE, IE, PL, SE, US, CA, GB, JP, KR, IN, BR, MX, AU, NZ, CH, DK, NO"
)
PLANS = _words("free, starter, pro, premium, business, enterprise")
FEATURE_AREAS = _words(
    "checkout, search, onboarding, billing, profile, feed, ads, editor, reports, sharing, payments"
)
FEATURE_NOUNS = _words(
    "redesign, v2, experiment, rollout, killswitch, beta, banner, limits, flow, cache, widget"
)


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database `name`."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "postgres"


@dataclass(frozen=True)
class Seeded:
    """What the scenarios need to know about the seeded project."""

    dsn: str
    project_id: int
    token: str
    live_segments: int
    search_rows: int
    deep_offset: int
    deep_cursor_name: str
    deep_cursor_id: int
    one_key: str
    seed_seconds: float | None  # None when an existing database was reused


def _c(attribute: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"attribute": attribute, "operator": operator, "value": value}


def _day(rng: random.Random) -> str:
    return (date(2019, 1, 1) + timedelta(days=rng.randrange(2500))).isoformat()


def _instant(rng: random.Random) -> str:
    return (datetime(2022, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(30000))).isoformat()


def _version(rng: random.Random) -> str:
    return f"{rng.randint(1, 5)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}"


# Condition makers, each valid per DESIGN §3 (value shape checked per operator).
CONDITIONS: list[Callable[[random.Random], dict[str, Any]]] = [
    lambda r: _c("plan", "EQ", r.choice(PLANS)),
    lambda r: _c("user.plan", "IN", r.sample(PLANS, r.randint(1, 3))),
    lambda r: _c("country", "IN", r.sample(COUNTRIES, r.randint(1, 10))),
    lambda r: _c("country", "NIN", r.sample(COUNTRIES, r.randint(1, 4))),
    lambda r: _c("user.age", r.choice(["GT", "GTE", "LT", "LTE"]), r.randint(13, 70)),
    lambda r: _c("sessions_30d", r.choice(["GT", "LT"]), round(r.uniform(0, 50), 1)),
    lambda r: _c("email", "ENDS_WITH", r.choice(["@example.com", "@acme.io", ".edu"])),
    lambda r: _c("email", r.choice(["CONTAINS", "NOT_CONTAINS"]), r.choice(["+test", "qa"])),
    lambda r: _c("device.os", "STARTS_WITH", r.choice(["iOS", "Android", "Windows", "macOS"])),
    lambda r: _c("beta_opt_in", "EQ", r.choice([True, False])),
    lambda r: _c("org.id", "NEQ", r.choice(["internal", "acme", "globex"])),
    lambda r: _c(r.choice(["user.suspended", "referrer"]), r.choice(["EXISTS", "NOT_EXISTS"])),
    lambda r: _c("email", "REGEX", r.choice([r"@(example|acme)\.com$", r"^qa-\d+@", r"\.edu$"])),
    lambda r: _c("signup_date", r.choice(["BEFORE", "AFTER"]), _day(r)),
    lambda r: _c("user.createdAt", r.choice(["BEFORE", "AFTER"]), _instant(r)),
    lambda r: _c("app_version", r.choice(["SEMVER_EQ", "SEMVER_GT", "SEMVER_LT"]), _version(r)),
    lambda r: _c("user.tags", "CONTAINS", r.choice(["early-adopter", "vip", "churn-risk"])),
    lambda r: _c("org.seats", "GTE", r.choice([5, 10, 50, 100, 500])),
    lambda r: _c("locale", "IN", r.sample(["en", "de", "fr", "es", "ja", "pt-BR"], 2)),
    lambda r: _c("is_employee", "EQ", "true"),
    lambda r: _c("user.id", "NIN", [f"user-{r.randrange(10**5)}" for _ in range(r.randint(1, 5))]),
    lambda r: _c("browser", "EQ", r.choice(["chrome", "firefox", "safari", "edge"])),
]


def _rules(rng: random.Random) -> list[dict[str, Any]]:
    """1-8 conditions in all, some of them in a nested group (and rarely a group in a group)."""
    count = rng.randint(1, 8)
    conditions = [rng.choice(CONDITIONS)(rng) for _ in range(count)]
    if count < 3 or rng.random() > 0.25:
        return conditions
    size = rng.randint(2, min(4, count - 1))
    inner = conditions[-size:]
    if size >= 3 and rng.random() < 0.15:
        inner = [*inner[:-2], {"logicalOp": rng.choice(["AND", "OR"]), "rules": inner[-2:]}]
    return [
        *conditions[:-size],
        {"logicalOp": rng.choice(["OR", "OR", "AND", "NOT"]), "rules": inner},
    ]


def _segment_rows(project_id: int, count: int, rng: random.Random) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC)
    seen: dict[str, int] = {}
    rows = []
    for _ in range(count - 1):
        platform = [rng.choice(PLATFORMS)] if rng.random() < 0.7 else []
        base = " ".join([rng.choice(ADJECTIVES), rng.choice(REGIONS), *platform, rng.choice(NOUNS)])
        seen[base] = seen.get(base, 0) + 1
        # Unique names, so derived keys are unique too.
        name = base if seen[base] == 1 else f"{base} {seen[base]}"
        description = None
        if rng.random() < 0.6:
            description = rng.choice(DESCRIPTIONS).format(
                name=name,
                team=rng.choice(TEAMS),
                quarter=f"Q{rng.randint(1, 4)} 202{rng.randint(4, 6)}",
            )
        created = now - timedelta(seconds=rng.randrange(2 * 365 * 86400))
        updated = created + timedelta(
            seconds=rng.randrange(max(1, int((now - created).total_seconds())))
        )
        roll = rng.random()
        included = (
            [f"user-{rng.randrange(10**6)}" for _ in range(rng.randint(1, 5))]
            if roll < 0.08
            else []
        )
        excluded = (
            [f"user-{rng.randrange(10**6)}" for _ in range(rng.randint(1, 3))]
            if 0.05 < roll < 0.1
            else []
        )
        rows.append(
            (
                project_id,
                derive_key(name),
                name,
                description,
                rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2, 2, 3, 4])),
                rng.choices(["AND", "OR", "NOT"], weights=[70, 20, 10])[0],
                orjson.dumps(_rules(rng)).decode(),
                rng.random() < 0.01,
                included,
                excluded,
                derive_key(name),  # the salt: the key, as at creation
                rng.randint(1, 6),
                created,
                updated,
            )
        )
    rows.append(
        (
            project_id,
            EVAL_KEY,
            "Bench Eval Segment",
            "Ten conditions, for evaluateSegment.",
            ["bench"],
            "AND",
            orjson.dumps(EVAL_RULES).decode(),
            False,
            ["vip-1"],
            ["banned-1"],
            EVAL_KEY,
            1,
            now - timedelta(days=30),
            now - timedelta(days=1),
        )
    )
    return rows


SEGMENT_COPY_COLUMNS = [
    "project_id",
    "key",
    "name",
    "description",
    "tags",
    "logical_op",
    "rules",
    "force",
    "included",
    "excluded",
    "salt",
    "version",
    "created_at",
    "updated_at",
]


def _reference_counts(segment_ids: list[int], rules: int, rng: random.Random) -> list[int]:
    """Each referenced segment 1-4 times, `rules` references in all, ~40% as many segments."""
    distinct = min(len(segment_ids), max(1, round(rules * 0.4)))
    rules = min(rules, 4 * distinct)
    counts = [1] * distinct
    extra = rules - distinct
    open_slots = list(range(distinct))
    for _ in range(extra):  # bounded: `extra` iterations, each removes or fills a slot
        slot = rng.randrange(len(open_slots))
        index = open_slots[slot]
        counts[index] += 1
        if counts[index] == 4:
            open_slots[slot] = open_slots[-1]
            open_slots.pop()
    return counts


async def _seed(conn: asyncpg.Connection, segments: int, flags: int, rules: int) -> int:
    rng = random.Random(RANDOM_SEED)
    project = await projects.create_project(conn, PROJECT_KEY, "Bench")
    project_id = project["id"]
    await conn.execute(
        "INSERT INTO environments (project_id, key, name) VALUES ($1, 'development', 'Development')",
        project_id,
    )
    environment_ids = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM environments WHERE project_id = $1 ORDER BY id", project_id
        )
    ]

    await conn.copy_records_to_table(
        "segments", records=_segment_rows(project_id, segments, rng), columns=SEGMENT_COPY_COLUMNS
    )
    segment_ids = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM segments WHERE project_id = $1 AND key <> $2 ORDER BY id",
            project_id,
            EVAL_KEY,
        )
    ]

    now = datetime.now(UTC)
    flag_rows = []
    for i in range(flags):
        area, noun = rng.choice(FEATURE_AREAS), rng.choice(FEATURE_NOUNS)
        flag_rows.append(
            (
                project_id,
                f"{area}-{noun}-{i}",
                f"{area.title()} {noun} #{i}",
                rng.choice([None, f"Controls the {area} {noun}."]),
                now - timedelta(days=rng.randrange(700)),
                now - timedelta(days=rng.randrange(30)) if rng.random() < 0.05 else None,
            )
        )
    await conn.copy_records_to_table(
        "flags",
        records=flag_rows,
        columns=["project_id", "key", "name", "description", "created_at", "archived_at"],
    )
    flag_ids = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM flags WHERE project_id = $1 ORDER BY id", project_id
        )
    ]

    referenced = rng.sample(segment_ids, min(len(segment_ids), max(1, round(rules * 0.4))))
    next_index: dict[tuple[int, int], int] = {}
    rule_rows = []
    for segment_id, times in zip(
        referenced, _reference_counts(referenced, rules, rng), strict=True
    ):
        for _ in range(times):
            place = (rng.choice(flag_ids), rng.choice(environment_ids))
            order_index = next_index.get(place, 0)
            next_index[place] = order_index + 1
            rule_rows.append(
                (project_id, place[0], place[1], order_index, "SEGMENT", segment_id, "on")
            )
    await conn.copy_records_to_table(
        "targeting_rules",
        records=rule_rows,
        columns=[
            "project_id",
            "flag_id",
            "environment_id",
            "order_index",
            "kind",
            "segment_id",
            "variation_key",
        ],
    )
    return project_id


async def ensure_reference_segments(conn: asyncpg.Connection, project_id: int) -> None:
    """The evaluate-with-references segment and the two it references (added to a reused
    database too), stored as a write stores them: rules by id, rows in segment_references."""
    async with conn.transaction():
        if await conn.fetchval(
            "SELECT 1 FROM segments WHERE project_id = $1 AND key = $2 AND deleted_at IS NULL",
            project_id,
            EVAL_REFS_KEY,
        ):
            return
        ids = []
        for key, rules in EVAL_REFERENCED.items():
            ids.append(
                await conn.fetchval(
                    """
                    INSERT INTO segments (project_id, key, name, rules, tags, salt)
                    VALUES ($1, $2, $2, $3, '{bench}', $2)
                    RETURNING id
                    """,
                    project_id,
                    key,
                    orjson.dumps(rules).decode(),
                )
            )
        rules = [
            *EVAL_RULES,
            {"segmentId": ids[0], "negate": False},
            {"segmentId": ids[1], "negate": True},
        ]
        referencing = await conn.fetchval(
            """
            INSERT INTO segments (project_id, key, name, rules, tags, included, excluded, salt)
            VALUES ($1, $2, 'Bench Eval Segment with references', $3, '{bench}',
                    '{vip-1}', '{banned-1}', $2)
            RETURNING id
            """,
            project_id,
            EVAL_REFS_KEY,
            orjson.dumps(rules).decode(),
        )
        await conn.execute(
            """
            INSERT INTO segment_references (project_id, segment_id, referenced_id)
            SELECT $1, $2, unnest($3::bigint[])
            """,
            project_id,
            referencing,
            ids,
        )


async def _fresh_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _database_exists(admin_dsn: str, name: str) -> bool:
    conn = await asyncpg.connect(admin_dsn)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def retire_write_segments(dsn: str, project_id: int) -> int:
    """Soft-delete what the write scenario left live: cycles the deadline cut short."""
    conn = await asyncpg.connect(dsn)
    try:
        status = await conn.execute(
            """
            UPDATE segments
            SET deleted_at = now(), updated_at = now(), version = version + 1
            WHERE project_id = $1 AND deleted_at IS NULL AND key LIKE 'bench\\_write\\_%'
            """,
            project_id,
        )
    finally:
        await conn.close()
    return int(status.split()[-1])


async def prepare(
    server_dsn: str, *, segments: int, flags: int, rules: int, reuse: bool, deep_rows: int = 50_000
) -> Seeded:
    """The seeded bench database on the server of `server_dsn` (reused if asked and present)."""
    if database_of(server_dsn) == DATABASE_NAME:
        server_dsn = with_database(server_dsn, "postgres")
    dsn = with_database(server_dsn, DATABASE_NAME)
    seconds = None
    project_id = None
    if reuse and await _database_exists(server_dsn, DATABASE_NAME):
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            project = await projects.project_by_key(conn, PROJECT_KEY)
            project_id = project["id"] if project else None
        finally:
            await conn.close()
        if project_id is not None:
            await retire_write_segments(dsn, project_id)
    if project_id is None:
        started = time.perf_counter()
        await _fresh_database(server_dsn, DATABASE_NAME)
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            async with conn.transaction():
                project_id = await _seed(conn, segments, flags, rules)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        seconds = time.perf_counter() - started

    conn = await asyncpg.connect(dsn)
    try:
        await ensure_reference_segments(conn, project_id)
        token = await api_keys.create_api_key(conn, project_id, "editor", "bench editor")
        live = await conn.fetchval(
            "SELECT count(*) FROM segments WHERE project_id = $1 AND deleted_at IS NULL", project_id
        )
        search_rows = await conn.fetchval(
            """
            SELECT count(*) FROM segments
            WHERE project_id = $1 AND deleted_at IS NULL AND (name ILIKE $2 OR key ILIKE $2)
            """,
            project_id,
            f"%{SEARCH_TERM}%",
        )
        # The row just before the deep page, in the list's order (name, id).
        deep_offset = min(deep_rows, max(0, live // 2))
        deep = await conn.fetchrow(
            """
            SELECT name, id FROM segments
            WHERE project_id = $1 AND deleted_at IS NULL
            ORDER BY name, id
            OFFSET $2 LIMIT 1
            """,
            project_id,
            max(0, deep_offset - 1),
        )
        # The most used segment, so `one` shows a real usage list.
        one_key = await conn.fetchval(
            """
            SELECT s.key
            FROM targeting_rules tr
            JOIN segments s ON s.project_id = tr.project_id AND s.id = tr.segment_id
            WHERE tr.project_id = $1 AND s.deleted_at IS NULL
            GROUP BY s.key, s.id
            ORDER BY count(*) DESC, s.id
            LIMIT 1
            """,
            project_id,
        )
    finally:
        await conn.close()
    return Seeded(
        dsn=dsn,
        project_id=project_id,
        token=token,
        live_segments=live,
        search_rows=search_rows,
        deep_offset=deep_offset,
        deep_cursor_name=deep["name"],
        deep_cursor_id=deep["id"],
        one_key=one_key or EVAL_KEY,
        seed_seconds=seconds,
    )
