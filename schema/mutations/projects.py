"""Project mutations: settings."""

from typing import Annotated, Any

import strawberry
from strawberry import UNSET

from core import projects as core_projects
from db.projects import SETTINGS
from rules.problems import Refused
from schema.context import AppInfo
from schema.errors import UserError, from_problems
from schema.projects import Project

# Stored setting -> attribute of the GraphQL input.
_INPUT_NAMES = {
    "require_approval": "require_approval",
    "required_approvals": "required_approvals",
    "strict_attributes": "strict_attributes",
}
assert set(_INPUT_NAMES) == set(SETTINGS)


@strawberry.input(description="Partial: an omitted setting keeps its value.")
class UpdateProjectSettingsInput:
    project_key: str = strawberry.field(description="The project.")
    require_approval: bool | None = strawberry.field(
        default=UNSET, description="Gate segment updates, deletes, restores and reverts."
    )
    required_approvals: int | None = strawberry.field(
        default=UNSET, description="Approvals a change request needs, 1-5."
    )
    strict_attributes: bool | None = strawberry.field(
        default=UNSET, description="Rules may only name declared attributes."
    )


@strawberry.type(description="Result of a project mutation.")
class ProjectPayload:
    project: Project | None = strawberry.field(
        description="The project after the change; null on error."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.type
class ProjectMutations:
    @strawberry.mutation(description="Change some of a project's settings (admin keys only).")
    async def update_project_settings(
        self,
        info: AppInfo,
        input: Annotated[
            UpdateProjectSettingsInput, strawberry.argument(description="The changes.")
        ],
    ) -> ProjectPayload:
        ctx = info.context
        fields: dict[str, Any] = {
            column: getattr(input, name)
            for column, name in _INPUT_NAMES.items()
            if getattr(input, name) is not UNSET
        }
        result = await core_projects.update_settings(
            ctx.db, ctx.principal, input.project_key, fields
        )
        if isinstance(result, Refused):
            return ProjectPayload(project=None, user_errors=from_problems(result.problems))
        project = await ctx.loaders.project.load(ctx.principal.project_id)
        ctx.loaders.project_settings.prime(ctx.principal.project_id, result)
        return ProjectPayload(project=Project.from_row(project), user_errors=[])
