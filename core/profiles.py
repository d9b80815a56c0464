"""Profile use cases: upsert and delete stored profiles in batches, all or nothing."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from core.access import project_id_for, project_problems, require_editor
from core.policy import Policy
from db import profiles as db_profiles
from db.api_keys import Principal
from db.pool import Database
from rules.problems import Problem, ProblemCode, Refused
from rules.profiles import MAX_PROFILES_PER_CALL, MAX_TARGETING_KEY_LENGTH, validate_profile


class _OverProjectLimit(Exception):
    """Raised inside the write transaction to roll it back."""


async def over_profile_limit(conn: Any, project_id: int, policy: Policy) -> Refused | None:
    """LIMIT_EXCEEDED when the project now holds more profiles than allowed: asked inside
    the transaction of every write that adds profiles (API upserts, imports), after the
    write, so replaced profiles do not count twice. The one place the limit is checked."""
    stored = await db_profiles.stored_profile_count(conn, project_id)
    if stored <= policy.max_profiles:
        return None
    return Refused.one(
        ProblemCode.LIMIT_EXCEEDED,
        f"the project would hold {stored} profiles, more than the limit of {policy.max_profiles}",
        ("input", "profiles"),
    )


def _batch_size_problems(size: int, path: tuple[str, ...], what: str) -> list[Problem]:
    if size == 0:
        return [Problem(path, ProblemCode.INVALID_INPUT, f"give at least one {what}")]
    if size > MAX_PROFILES_PER_CALL:
        return [
            Problem(
                path,
                ProblemCode.LIMIT_EXCEEDED,
                f"{size} {what}s in one call; at most {MAX_PROFILES_PER_CALL} are allowed",
            )
        ]
    return []


def _upsert_problems(profiles: list[tuple[str, Any]]) -> list[Problem]:
    path = ("input", "profiles")
    problems = _batch_size_problems(len(profiles), path, "profile")
    if problems:
        return problems
    for index, (targeting_key, attributes) in enumerate(profiles):
        problems += validate_profile(targeting_key, attributes, (*path, str(index)))
    return problems


def _key_problems(keys: list[str]) -> list[Problem]:
    path = ("input", "targetingKeys")
    problems = _batch_size_problems(len(keys), path, "targeting key")
    if problems:
        return problems
    return [
        Problem(
            (*path, str(index)),
            ProblemCode.INVALID_INPUT,
            f"a targetingKey is a string of 1-{MAX_TARGETING_KEY_LENGTH} characters (no NUL)",
        )
        for index, key in enumerate(keys)
        if not (1 <= len(key) <= MAX_TARGETING_KEY_LENGTH and "\x00" not in key)
    ]


async def _again_after_deadlock(write: Callable[[], Awaitable[int]]) -> int:
    """Run a profile write transaction, and again if PostgreSQL aborted it to break a deadlock
    with an import writing the same keys (see db_profiles.Deadlock). A short pause first lets
    the import take the keys the aborted run held, so the next run waits for the import rather
    than the other way round."""
    for pause in _DEADLOCK_PAUSES:
        try:
            return await write()
        except db_profiles.Deadlock:
            await asyncio.sleep(pause)
    return await write()


_DEADLOCK_PAUSES = (0.05, 0.2)


async def upsert_profiles(
    db: Database,
    principal: Principal,
    policy: Policy,
    project_key: str,
    profiles: list[tuple[str, Any]],
) -> int | Refused:
    """Create or replace up to 1,000 profiles (targetingKey, attributes); the number written."""
    require_editor(principal)
    project_id = project_id_for(principal, project_key)
    problems = project_problems(project_id) + _upsert_problems(profiles)
    if problems or project_id is None:
        return Refused(problems)

    async def write() -> int:
        async with db.transaction() as conn:
            upserted = await db_profiles.upsert_profiles(conn, project_id, profiles)
            # In the write's transaction, which holds the project's profile write lock (so
            # concurrent upserts queue) and then the counter's; an import adds its rows
            # under that same counter lock at its end.
            if refused := await over_profile_limit(conn, project_id, policy):
                raise _OverProjectLimit(refused)
        return upserted

    try:
        return await _again_after_deadlock(write)
    except _OverProjectLimit as over:
        return over.args[0]


async def delete_profiles(
    db: Database, principal: Principal, project_key: str, targeting_keys: list[str]
) -> int | Refused:
    """Delete up to 1,000 profiles by key (unknown keys are ignored); the number deleted."""
    require_editor(principal)
    project_id = project_id_for(principal, project_key)
    problems = project_problems(project_id) + _key_problems(targeting_keys)
    if problems or project_id is None:
        return Refused(problems)

    async def write() -> int:
        async with db.transaction() as conn:
            return await db_profiles.delete_profiles(conn, project_id, targeting_keys)

    return await _again_after_deadlock(write)
