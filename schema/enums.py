"""Enums shared by segments, flags and evaluation.

Output objects carry an enum field as its stored string ("AND", "EQ"), which is also the
enum's value: both executors serialise a value by lookup, so building an Enum member per
field of every row would be work for nothing. Inputs arrive as Enum members.
"""

from enum import Enum

import strawberry

from rules.operators import REGISTRY


@strawberry.enum(description="How the rules of a segment or group combine.")
class LogicalOperator(Enum):
    AND = strawberry.enum_value("AND", description="Every rule matches.")
    OR = strawberry.enum_value("OR", description="At least one rule matches.")
    NOT = strawberry.enum_value("NOT", description="Not all rules match: !(r1 AND r2 ...).")


# One value per entry of the operator registry, with its description.
ConditionOperator = strawberry.enum(
    Enum(  # type: ignore[misc]
        "ConditionOperator",
        {
            entry.name: strawberry.enum_value(entry.name, description=entry.description)
            for entry in REGISTRY.values()
        },
    ),
    description="Comparison a condition applies to the context attribute.",
)


@strawberry.enum(description="Field a segment list is ordered by; ties break by id.")
class SegmentOrderField(Enum):
    NAME = strawberry.enum_value("NAME", description="By name.")
    KEY = strawberry.enum_value("KEY", description="By key.")
    CREATED_AT = strawberry.enum_value("CREATED_AT", description="By creation time.")
    UPDATED_AT = strawberry.enum_value("UPDATED_AT", description="By time of the last change.")


@strawberry.enum(description="Sort direction.")
class OrderDirection(Enum):
    ASC = strawberry.enum_value("ASC", description="Ascending.")
    DESC = strawberry.enum_value("DESC", description="Descending.")


@strawberry.enum(description="One of a segment's two target lists.")
class TargetKind(Enum):
    INCLUDED = strawberry.enum_value("included", description="Keys always in the segment.")
    EXCLUDED = strawberry.enum_value("excluded", description="Keys never in it (unless forced).")
