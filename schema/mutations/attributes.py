"""Attribute mutations: declare an attribute's type, description and allowed values, or forget it."""

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from core import attributes as core_attributes
from rules.problems import Refused
from schema.attributes import Attribute, AttributeType
from schema.context import AppInfo
from schema.errors import UserError, from_problems


@strawberry.input(description="Declare (or redeclare, replacing) an attribute.")
class DefineAttributeInput:
    project_key: str = strawberry.field(description="The project.")
    path: str = strawberry.field(description='Dotted path as conditions name it, e.g. "user.plan".')
    type: AttributeType = strawberry.field(description="Its type: which operators and values fit.")
    description: str | None = strawberry.field(default=None, description="0-500 characters.")
    allowed_values: list[JSON] | None = strawberry.field(
        default=None,
        description=f"1-{core_attributes.MAX_ALLOWED_VALUES} values of the type that conditions "
        "may name (for STRING_LIST: elements); null: any value.",
    )


@strawberry.input(description="Forget an attribute's declaration (profiles keep their values).")
class RemoveAttributeDefinitionInput:
    project_key: str = strawberry.field(description="The project.")
    path: str = strawberry.field(description="The declared path.")


@strawberry.type(description="Result of an attribute mutation.")
class AttributePayload:
    attribute: Attribute | None = strawberry.field(
        description="The attribute after the change; null on error, or when a removed "
        "declaration leaves a path no profile holds."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why nothing was written; empty on success."
    )


@strawberry.type
class AttributeMutations:
    @strawberry.mutation(description="Declare an attribute's type (editor and admin keys).")
    async def define_attribute(
        self,
        info: AppInfo,
        input: Annotated[DefineAttributeInput, strawberry.argument(description="The declaration.")],
    ) -> AttributePayload:
        ctx = info.context
        result = await core_attributes.define_attribute(
            ctx.db,
            ctx.principal,
            input.project_key,
            input.path,
            input.type.value,
            input.description,
            input.allowed_values,
        )
        if isinstance(result, Refused):
            return AttributePayload(attribute=None, user_errors=from_problems(result.problems))
        return AttributePayload(attribute=Attribute.from_row(result), user_errors=[])

    @strawberry.mutation(description="Forget an attribute's declaration (editor and admin keys).")
    async def remove_attribute_definition(
        self,
        info: AppInfo,
        input: Annotated[
            RemoveAttributeDefinitionInput, strawberry.argument(description="Which one.")
        ],
    ) -> AttributePayload:
        ctx = info.context
        result = await core_attributes.remove_definition(
            ctx.db, ctx.principal, input.project_key, input.path
        )
        if isinstance(result, Refused):
            return AttributePayload(attribute=None, user_errors=from_problems(result.problems))
        return AttributePayload(
            attribute=Attribute.from_row(result) if result else None, user_errors=[]
        )
