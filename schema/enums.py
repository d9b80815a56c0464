"""Enums shared by segments, flags and evaluation.

Output objects carry an enum field as its stored string ("AND", "EQ"), which is also the
enum's value: both executors serialise a value by lookup, so building an Enum member per
field of every row would be work for nothing. Inputs arrive as Enum members.
"""

from enum import Enum

import strawberry


@strawberry.enum(description="How the rules of a segment or group combine.")
class LogicalOperator(Enum):
    AND = strawberry.enum_value("AND", description="Every rule matches.")
    OR = strawberry.enum_value("OR", description="At least one rule matches.")
    NOT = strawberry.enum_value("NOT", description="Not all rules match: !(r1 AND r2 ...).")


@strawberry.enum(description="Comparison a condition applies to the context attribute.")
class ConditionOperator(Enum):
    EQ = strawberry.enum_value(
        "EQ", description='Equal after coercion (numeric strings, "true"/"false").'
    )
    NEQ = strawberry.enum_value(
        "NEQ", description="Not equal after coercion; true when the attribute is missing."
    )
    IN = strawberry.enum_value("IN", description="Equal to one of the listed values.")
    NIN = strawberry.enum_value(
        "NIN", description="Equal to none of the listed values; true when missing."
    )
    GT = strawberry.enum_value("GT", description="Numerically greater than.")
    GTE = strawberry.enum_value("GTE", description="Numerically greater than or equal.")
    LT = strawberry.enum_value("LT", description="Numerically less than.")
    LTE = strawberry.enum_value("LTE", description="Numerically less than or equal.")
    CONTAINS = strawberry.enum_value(
        "CONTAINS", description="Substring of a string, or element of an array."
    )
    NOT_CONTAINS = strawberry.enum_value(
        "NOT_CONTAINS", description="A string or array that does not contain the value."
    )
    STARTS_WITH = strawberry.enum_value(
        "STARTS_WITH", description="String prefix (case-sensitive)."
    )
    ENDS_WITH = strawberry.enum_value("ENDS_WITH", description="String suffix (case-sensitive).")
    EXISTS = strawberry.enum_value("EXISTS", description="Attribute present and not null.")
    NOT_EXISTS = strawberry.enum_value("NOT_EXISTS", description="Attribute absent or null.")
    REGEX = strawberry.enum_value(
        "REGEX", description="Regular expression found anywhere in the value."
    )
    BEFORE = strawberry.enum_value(
        "BEFORE", description="Date or date-time earlier than the value."
    )
    AFTER = strawberry.enum_value("AFTER", description="Date or date-time later than the value.")
    SEMVER_EQ = strawberry.enum_value(
        "SEMVER_EQ", description="Semantic version equal to the value."
    )
    SEMVER_GT = strawberry.enum_value(
        "SEMVER_GT", description="Semantic version greater than the value."
    )
    SEMVER_LT = strawberry.enum_value(
        "SEMVER_LT", description="Semantic version less than the value."
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
