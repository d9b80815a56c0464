"""Project and Environment types."""

from collections.abc import Mapping
from typing import Any, Self

import strawberry

from schema.context import AppInfo, mapped
from schema.ids import encode_id
from schema.node import Node


@strawberry.type(description="A deployment target of a project's flags, such as production.")
class Environment(Node):
    key: str = strawberry.field(description='Unique within the project, e.g. "production".')
    name: str = strawberry.field(description="Display name.")
    db_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            id=strawberry.ID(encode_id("Environment", row["id"])),
            key=row["key"],
            name=row["name"],
            db_id=row["id"],
        )


@strawberry.type(description="How a project's changes are made.")
class ProjectSettings:
    require_approval: bool = strawberry.field(
        description="true: segment updates, deletes, restores and reverts by editors go "
        "through change requests."
    )
    required_approvals: int = strawberry.field(
        description="1-5 approvals from editors other than the author."
    )
    strict_attributes: bool = strawberry.field(
        description="true: rules may only name declared attributes, with fitting operators."
    )

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> Self:
        return cls(
            require_approval=stored["require_approval"],
            required_approvals=stored["required_approvals"],
            strict_attributes=stored["strict_attributes"],
        )


@strawberry.type(description="A tenant: every segment, flag and key belongs to one project.")
class Project(Node):
    key: str = strawberry.field(description="Unique project key.")
    name: str = strawberry.field(description="Display name.")
    db_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        return cls(
            id=strawberry.ID(encode_id("Project", row["id"])),
            key=row["key"],
            name=row["name"],
            db_id=row["id"],
        )

    @strawberry.field(description="The project's environments, oldest first.")
    def environments(self, info: AppInfo) -> list[Environment]:
        return mapped(
            info.context.loaders.project_environments,
            self.db_id,
            lambda rows: [Environment.from_row(row) for row in rows],
        )

    @strawberry.field(description="How the project's changes are made.")
    def settings(self, info: AppInfo) -> ProjectSettings:
        return mapped(
            info.context.loaders.project_settings, self.db_id, ProjectSettings.from_stored
        )
