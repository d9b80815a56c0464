"""Profile mutations: upsert and delete stored profiles in batches, all or nothing."""

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from core import profiles as core_profiles
from rules.problems import Refused
from rules.profiles import MAX_PROFILES_PER_CALL, MAX_TARGETING_KEY_LENGTH
from schema.context import AppInfo
from schema.errors import UserError, from_problems


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
        result = await core_profiles.upsert_profiles(
            ctx.db,
            ctx.principal,
            ctx.settings.policy,
            input.project_key,
            [(p.targeting_key, p.attributes) for p in input.profiles],
        )
        if isinstance(result, Refused):
            return UpsertProfilesPayload(
                upserted_count=0, user_errors=from_problems(result.problems)
            )
        return UpsertProfilesPayload(upserted_count=result, user_errors=[])

    @strawberry.mutation(
        description="Delete up to 1,000 profiles by targetingKey; unknown keys are ignored."
    )
    async def delete_profiles(
        self,
        info: AppInfo,
        input: Annotated[DeleteProfilesInput, strawberry.argument(description="Which profiles.")],
    ) -> DeleteProfilesPayload:
        ctx = info.context
        result = await core_profiles.delete_profiles(
            ctx.db, ctx.principal, input.project_key, input.targeting_keys
        )
        if isinstance(result, Refused):
            return DeleteProfilesPayload(
                deleted_count=0, user_errors=from_problems(result.problems)
            )
        return DeleteProfilesPayload(deleted_count=result, user_errors=[])
