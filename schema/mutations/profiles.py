"""Profile mutations: upsert and delete stored profiles in batches, all or nothing."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from db import profiles as db_profiles
from rules.profiles import MAX_PROFILES_PER_CALL, MAX_TARGETING_KEY_LENGTH, validate_profile
from rules.validate import Problem
from schema.context import AppInfo
from schema.errors import UserError, from_problems, user_error


@strawberry.input(description="One profile to store.")
class ProfileInput:
    targeting_key: str = strawberry.field(
        description=f"The context's targetingKey, 1-{MAX_TARGETING_KEY_LENGTH} characters."
    )
    attributes: JSON = strawberry.field(
        description="A JSON object of at most 32 KiB and depth 10; replaces what was stored."
    )


@strawberry.input(description="Profiles to create or replace.")
class UpsertProfilesInput:
    project_key: str = strawberry.field(description="Project to store them in.")
    profiles: list[ProfileInput] = strawberry.field(
        description=f"1-{MAX_PROFILES_PER_CALL} profiles, applied all or nothing."
    )


@strawberry.type(description="Result of upsertProfiles.")
class UpsertProfilesPayload:
    upserted_count: int = strawberry.field(description="Profiles created or replaced; 0 on error.")
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.input(description="Profiles to delete by targetingKey.")
class DeleteProfilesInput:
    project_key: str = strawberry.field(description="Project to delete them from.")
    targeting_keys: list[str] = strawberry.field(
        description=f"1-{MAX_PROFILES_PER_CALL} targeting keys; unknown keys are ignored."
    )


@strawberry.type(description="Result of deleteProfiles.")
class DeleteProfilesPayload:
    deleted_count: int = strawberry.field(description="Profiles that existed and were deleted.")
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was deleted; empty on success."
    )


class _OverProjectLimit(Exception):
    """Raised inside the write transaction to roll it back."""


def _batch_size_problems(size: int, path: tuple[str, ...], what: str) -> list[Problem]:
    if size == 0:
        return [Problem(path, "INVALID_INPUT", f"give at least one {what}")]
    if size > MAX_PROFILES_PER_CALL:
        return [
            Problem(
                path,
                "LIMIT_EXCEEDED",
                f"{size} {what}s in one call; at most {MAX_PROFILES_PER_CALL} are allowed",
            )
        ]
    return []


def _upsert_problems(profiles: list[ProfileInput]) -> list[Problem]:
    path = ("input", "profiles")
    problems = _batch_size_problems(len(profiles), path, "profile")
    if problems:
        return problems
    for index, profile in enumerate(profiles):
        problems += validate_profile(profile.targeting_key, profile.attributes, (*path, str(index)))
    return problems


def _key_problems(keys: list[str]) -> list[Problem]:
    path = ("input", "targetingKeys")
    problems = _batch_size_problems(len(keys), path, "targeting key")
    if problems:
        return problems
    return [
        Problem(
            (*path, str(index)),
            "INVALID_INPUT",
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


def _project_not_found() -> UserError:
    return user_error("NOT_FOUND", "No such project.", ["input", "projectKey"])


@strawberry.type
class ProfileMutations:
    @strawberry.mutation(
        description="Create or replace up to 1,000 profiles, all or nothing; attributes replace what was stored."
    )
    async def upsert_profiles(
        self,
        info: AppInfo,
        input: Annotated[UpsertProfilesInput, strawberry.argument(description="The profiles.")],
    ) -> UpsertProfilesPayload:
        ctx = info.context
        ctx.require_editor()
        project_id = ctx.project_id_for(input.project_key)
        errors = from_problems(_upsert_problems(input.profiles))
        if not project_id:
            errors.insert(0, _project_not_found())
        if errors:
            return UpsertProfilesPayload(upserted_count=0, user_errors=errors)
        limit = ctx.settings.max_profiles_per_project

        async def write() -> int:
            async with ctx.db.transaction() as conn:
                upserted = await db_profiles.upsert_profiles(
                    conn, project_id, [(p.targeting_key, p.attributes) for p in input.profiles]
                )
                # The project's counter after the write, in its transaction (which holds the
                # project's profile write lock, so concurrent upserts queue, and then the
                # counter's; an import adds its rows under that same counter lock at its end):
                # replaced profiles do not count twice.
                if await db_profiles.stored_profile_count(conn, project_id) > limit:
                    raise _OverProjectLimit
            return upserted

        try:
            upserted = await _again_after_deadlock(write)
        except _OverProjectLimit:
            message = f"the project would hold more than {limit} profiles"
            return UpsertProfilesPayload(
                upserted_count=0,
                user_errors=[user_error("LIMIT_EXCEEDED", message, ["input", "profiles"])],
            )
        return UpsertProfilesPayload(upserted_count=upserted, user_errors=[])

    @strawberry.mutation(
        description="Delete up to 1,000 profiles by targetingKey; unknown keys are ignored."
    )
    async def delete_profiles(
        self,
        info: AppInfo,
        input: Annotated[DeleteProfilesInput, strawberry.argument(description="Which profiles.")],
    ) -> DeleteProfilesPayload:
        ctx = info.context
        ctx.require_editor()
        project_id = ctx.project_id_for(input.project_key)
        errors = from_problems(_key_problems(input.targeting_keys))
        if not project_id:
            errors.insert(0, _project_not_found())
        if errors:
            return DeleteProfilesPayload(deleted_count=0, user_errors=errors)

        async def write() -> int:
            async with ctx.db.transaction() as conn:
                return await db_profiles.delete_profiles(conn, project_id, input.targeting_keys)

        deleted = await _again_after_deadlock(write)
        return DeleteProfilesPayload(deleted_count=deleted, user_errors=[])
