"""Demo data: the example segments and flags of the product docs, and profiles for them to
match, for a first look in GraphiQL."""

import random
from datetime import date, timedelta
from typing import Any

import asyncpg

from db import api_keys, flags, profiles, projects, segments
from rules.problems import Refused

ACTOR = "seed-demo"
DEMO_PROJECT = "demo"


def _c(attribute: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"attribute": attribute, "operator": operator, "value": value}


def _g(logical_op: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"logicalOp": logical_op, "rules": list(rules)}


# (key, name, description, tags, logical_op, rules, force, included, excluded)
DEMO_SEGMENTS: list[
    tuple[str, str, str, list[str], str, list[dict[str, Any]], bool, list[str], list[str]]
] = [
    (
        "eu_premium_users",
        "EU Premium Users",
        "Premium plan customers in the European Union.",
        ["geo", "billing"],
        "AND",
        [
            _c("country", "IN", ["DE", "FR", "ES", "IT", "NL", "AT", "BE", "IE", "PL", "SE"]),
            _c("plan", "EQ", "premium"),
        ],
        False,
        [],
        [],
    ),
    (
        "enterprise_admins",
        "Enterprise Admins",
        "Administrators of enterprise accounts.",
        ["billing", "roles"],
        "AND",
        [_c("plan", "EQ", "enterprise"), _c("user.role", "EQ", "admin")],
        False,
        [],
        [],
    ),
    (
        "internal_users",
        "Internal Users",
        "Staff: company e-mail or the internal org.",
        ["internal"],
        "OR",
        [_c("email", "ENDS_WITH", "@example.com"), _c("org.id", "EQ", "internal")],
        False,
        [],
        [],
    ),
    (
        "non_free_users",
        "Non-Free Users",
        "Everyone not on the free plan.",
        ["billing"],
        "NOT",
        [_c("plan", "EQ", "free")],
        False,
        [],
        [],
    ),
    (
        "beta_testers",
        "Beta Testers",
        "Forced on while the beta runs; listed testers too.",
        ["beta"],
        "AND",
        [_c("beta_opt_in", "EQ", True)],
        True,
        ["user-42", "user-1001"],
        [],
    ),
    (
        "dach_region",
        "DACH Region",
        "Germany, Austria and Switzerland.",
        ["geo"],
        "AND",
        [_c("country", "IN", ["DE", "AT", "CH"])],
        False,
        [],
        [],
    ),
    (
        "paid_users",
        "Paid Users",
        "Any paid plan.",
        ["billing"],
        "AND",
        [_c("plan", "IN", ["pro", "premium", "enterprise"])],
        False,
        [],
        ["user-7"],
    ),
    (
        "enterprise_partners",
        "Enterprise Partners",
        "Enterprise accounts that are partners.",
        ["billing", "partners"],
        "AND",
        [
            _c("plan", "EQ", "enterprise"),
            _g("OR", _c("org.partner", "EQ", True), _c("org.tags", "CONTAINS", "partner")),
        ],
        False,
        [],
        [],
    ),
    (
        "non_legacy_users",
        "Non-Legacy Users",
        "Not (an old app version and an old account).",
        ["lifecycle"],
        "NOT",
        [_c("app_version", "SEMVER_LT", "2.0.0"), _c("signup_date", "BEFORE", "2020-01-01")],
        False,
        [],
        [],
    ),
]


DEMO_PROFILES = 1000
_EU = ["DE", "FR", "ES", "IT", "NL", "AT", "BE", "IE", "PL", "SE"]
_ELSEWHERE = ["CH", "US", "GB", "CA", "JP", "BR", "IN", "AU"]
_PLANS = (["free"] * 45) + (["pro"] * 25) + (["premium"] * 20) + (["enterprise"] * 10)
_ROLES = (["admin"] * 12) + (["member"] * 70) + (["viewer"] * 18)
_VERSIONS = ["1.8.3", "1.9.0", "1.9.7", "2.0.0", "2.1.4", "2.2.0-beta.1", "v2.3.1", "3.0.0"]
_DOMAINS = (["example.com"] * 4) + [
    "gmail.com",
    "outlook.com",
    "acme.io",
    "globex.com",
    "initech.net",
] * 19
_ORG_TAGS = ["partner", "eu", "startup", "nonprofit", "education", "reseller"]
_NAMES = [
    "ada",
    "alan",
    "barbara",
    "claude",
    "donald",
    "edsger",
    "frances",
    "grace",
    "john",
    "ken",
    "linus",
    "margaret",
    "niklaus",
    "radia",
    "tim",
    "sophie",
]


def demo_profiles(seed: int = 2026) -> list[tuple[str, dict[str, Any]]]:
    """About a thousand varied profiles over the attributes the demo segments test; the same
    every time for one seed."""
    rng = random.Random(seed)
    first_signup = date(2017, 1, 1)
    out = []
    for number in range(1, DEMO_PROFILES + 1):
        plan = rng.choice(_PLANS)
        name = rng.choice(_NAMES)
        org_number = rng.randrange(1, 120)
        tags = rng.sample(_ORG_TAGS, rng.randrange(0, 3))
        attributes: dict[str, Any] = {
            "country": rng.choice(_EU) if rng.random() < 0.6 else rng.choice(_ELSEWHERE),
            "plan": plan,
            "user": {"role": rng.choice(_ROLES), "name": name.title()},
            "email": f"{name}.{number}@{rng.choice(_DOMAINS)}",
            "org": {
                "id": "internal" if org_number <= 3 else f"org-{org_number}",
                "partner": plan == "enterprise" and rng.random() < 0.3,
                "tags": tags,
            },
            "beta_opt_in": rng.random() < 0.15,
            "app_version": rng.choice(_VERSIONS),
            "signup_date": (first_signup + timedelta(days=rng.randrange(0, 9 * 365))).isoformat(),
            "seats": rng.randrange(20, 500) if plan == "enterprise" else rng.randrange(1, 20),
        }
        if rng.random() < 0.1:
            del attributes["app_version"]  # some contexts lack attributes entirely
        out.append((f"user-{number}", attributes))
    return out


async def seed_demo(conn: asyncpg.Connection, project_key: str) -> str | None:
    """Create and fill the demo project; return an editor token, or None if it exists."""
    async with conn.transaction():
        if await projects.project_by_key(conn, project_key) is not None:
            return None
        project = await projects.create_project(conn, project_key, "Demo")
        project_id = project["id"]
        token = await api_keys.create_api_key(conn, project_id, "editor", "demo editor")
        ids = {}
        for key, name, description, tags, op, rules, force, included, excluded in DEMO_SEGMENTS:
            row = await segments.create_segment(
                conn,
                project_id,
                {
                    "key": key,
                    "name": name,
                    "description": description,
                    "tags": tags,
                    "logical_op": op,
                    "rules": rules,
                    "force": force,
                    "included": included,
                    "excluded": excluded,
                },
                actor=ACTOR,
                derive_key_from=None,
                max_live=10_000,
            )
            assert not isinstance(row, Refused), row
            ids[key] = row["id"]
        envs = {
            row["key"]: row for row in await projects.environments_of_projects(conn, [project_id])
        }
        dashboard = await flags.create_flag(
            conn,
            project_id,
            "new-dashboard",
            "New Dashboard",
            "The redesigned dashboard.",
            actor=ACTOR,
        )
        premium = await flags.create_flag(
            conn,
            project_id,
            "premium-feature",
            "Premium Feature",
            "Paid-only features.",
            actor=ACTOR,
        )

        def seg(segment_key: str, variation: str) -> dict[str, Any]:
            return {
                "kind": "SEGMENT",
                "segment_id": ids[segment_key],
                "logical_op": None,
                "rules": [],
                "variation_key": variation,
                "rollout_key": None,
            }

        rules_by_flag = [
            (dashboard, "production", [seg("internal_users", "on"), seg("beta_testers", "on")]),
            (dashboard, "staging", [seg("internal_users", "on"), seg("eu_premium_users", "on")]),
            (premium, "production", [seg("paid_users", "on"), seg("enterprise_partners", "on")]),
        ]
        for flag, env_key, rules in rules_by_flag:
            await flags.replace_rules(
                conn, project_id, flag["id"], envs[env_key], rules, actor=ACTOR
            )
        await profiles.copy_profiles(conn, project_id, demo_profiles())
    return token


async def seed_demo_if_empty(conn: asyncpg.Connection) -> str | None:
    """On a database with no project at all, seed the demo project (first run)."""
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM projects)"):
        return None
    return await seed_demo(conn, DEMO_PROJECT)
