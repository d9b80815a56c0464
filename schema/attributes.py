"""The attribute catalogue types (DESIGN §15) and the attributes / attribute queries."""

from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, Self

import strawberry
from strawberry.scalars import JSON

from core import attributes as core_attributes
from db import attributes as db_attributes
from schema.context import AppInfo
from schema.errors import bad_user_input
from schema.pagination import (
    Connection,
    decode_cursor,
    encode_cursor,
    listing_connection,
    page_request,
)

ATTRIBUTE_CURSOR = "attribute"


@strawberry.enum(description="The declared type of an attribute.")
class AttributeType(Enum):
    STRING = strawberry.enum_value("STRING", description="Strings.")
    NUMBER = strawberry.enum_value("NUMBER", description="Numbers (GT, GTE, LT, LTE).")
    BOOLEAN = strawberry.enum_value("BOOLEAN", description="true or false.")
    DATETIME = strawberry.enum_value(
        "DATETIME", description="ISO-8601 date or date-time strings (BEFORE, AFTER)."
    )
    SEMVER = strawberry.enum_value(
        "SEMVER", description="Semantic version strings (SEMVER_EQ, SEMVER_GT, SEMVER_LT)."
    )
    STRING_LIST = strawberry.enum_value(
        "STRING_LIST", description="Arrays of strings (CONTAINS names an element)."
    )


@strawberry.type(description="What an editor declared about an attribute.")
class AttributeDefinition:
    type: AttributeType = strawberry.field(description="The declared type.")
    description: str | None = strawberry.field(description="What the attribute means.")
    allowed_values: list[JSON] | None = strawberry.field(
        description="The values conditions may name; null: any value of the type."
    )


@strawberry.type(description="A value stored profiles hold at a path, and how many hold it.")
class AttributeValueCount:
    value: JSON = strawberry.field(description="The value (an array is one value).")
    profiles: int = strawberry.field(description="Stored profiles holding it.")


@strawberry.type(description="A JSON type seen at a path, and how many profiles hold it.")
class AttributeTypeCount:
    json_type: str = strawberry.field(
        description='"string" "number" "boolean" "array" "object" or "null".'
    )
    profiles: int = strawberry.field(description="Stored profiles holding a value of this type.")


@strawberry.type(description="An attribute path that stored profiles hold or an editor declared.")
class Attribute:
    path: str = strawberry.field(
        description='The dotted path, as conditions name it ("user.plan").'
    )
    definition: AttributeDefinition | None = strawberry.field(
        description="Null when the attribute is only seen in profiles, not declared."
    )
    profiles: int = strawberry.field(
        description="Stored profiles where it is present and not null (exact)."
    )
    types: list[AttributeTypeCount] = strawberry.field(
        description="The JSON types profiles hold there, with counts (exact)."
    )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        types = [AttributeTypeCount(json_type=t, profiles=n) for t, n in row["types"]]
        definition = None
        if row["type"] is not None:
            definition = AttributeDefinition(
                type=AttributeType(row["type"]),
                description=row["description"],
                allowed_values=row["allowed_values"],
            )
        return cls(
            path=row["path"],
            definition=definition,
            profiles=sum(t.profiles for t in types if t.json_type != "null"),
            types=types,
        )

    @strawberry.field(
        description="The most frequent values in stored profiles, most frequent first "
        "(computed when asked: a scan of the project's profiles)."
    )
    async def top_values(
        self,
        info: AppInfo,
        first: Annotated[int | None, strawberry.argument(description="How many, 0-50.")] = 10,
    ) -> list[AttributeValueCount]:
        if first is None:
            first = 10
        if not 0 <= first <= core_attributes.MAX_TOP_VALUES:
            raise bad_user_input(f"`first` must be between 0 and {core_attributes.MAX_TOP_VALUES}.")
        if first == 0:
            return []
        rows = await info.context.loaders.attribute_top_values.load((self.path, first))
        return [AttributeValueCount(value=row["value"], profiles=row["profiles"]) for row in rows]

    @strawberry.field(
        description="Live segments whose rules name it (conditions, nested groups included)."
    )
    async def used_by_segments(self, info: AppInfo) -> int:
        return await info.context.loaders.attribute_segments.load(self.path)


@strawberry.type(description="A page of attributes, path ascending.")
class AttributeConnection(Connection[Attribute]):
    pass


def _cursor(row: Mapping[str, Any]) -> str:
    return encode_cursor(ATTRIBUTE_CURSOR, row["path"], 0)


async def list_attributes(
    info: AppInfo, project_key: str, search: str | None, first: int | None, after: str | None
) -> AttributeConnection:
    ctx = info.context
    page = page_request(
        first=first,
        after=decode_cursor(after, ATTRIBUTE_CURSOR) if after else None,
        last=None,
        before=None,
        column="path",
        tiebreak=None,
    )
    project_id = ctx.project_id_for(project_key)
    return await listing_connection(
        AttributeConnection,
        ctx.db,
        db_attributes.attribute_listing(project_id, search or None),
        page,
        cursor=_cursor,
        node=Attribute.from_row,
    )


async def attribute_by_path(info: AppInfo, project_key: str, path: str) -> Attribute | None:
    ctx = info.context
    row = await core_attributes.find_attribute(ctx.db, ctx.principal, project_key, path)
    return Attribute.from_row(row) if row else None
