"""The rule tree as GraphQL types and inputs, and its conversion to and from stored JSON."""

from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from schema.enums import ConditionOperator, LogicalOperator


@strawberry.type(description="One test of an attribute of the evaluation context.")
class Condition:
    attribute: str = strawberry.field(
        description='Dotted path into the flattened context, e.g. "user.plan".'
    )
    operator: ConditionOperator = strawberry.field(description="The comparison applied.")
    value: JSON | None = strawberry.field(description="Operand; null for EXISTS / NOT_EXISTS.")
    case_insensitive: bool = strawberry.field(
        default=False,
        description="Strings compare lower-cased (Unicode) on both sides; false unless set.",
    )


@strawberry.type(description="Nested rules combined with their own logical operator.")
class ConditionGroup:
    logical_op: LogicalOperator = strawberry.field(description="How the nested rules combine.")
    rules: list["SegmentRule"] = strawberry.field(description="The nested rules.")


SegmentRule = Annotated[
    Condition | ConditionGroup,
    strawberry.union("SegmentRule", description="A condition or a nested group of rules."),
]


@strawberry.input(description="A condition to store.")
class ConditionInput:
    attribute: str = strawberry.field(description="Dotted path into the context, 1-200 chars.")
    operator: ConditionOperator = strawberry.field(description="The comparison to apply.")
    value: JSON | None = strawberry.field(
        default=None,
        description="Operand, shaped as the operator needs; null for EXISTS / NOT_EXISTS.",
    )
    case_insensitive: bool | None = strawberry.field(
        default=False,
        description="Compare strings lower-cased on both sides: EQ NEQ IN NIN CONTAINS "
        "NOT_CONTAINS STARTS_WITH ENDS_WITH REGEX only.",
    )


@strawberry.input(description="A nested group of rules to store.")
class ConditionGroupInput:
    logical_op: LogicalOperator = strawberry.field(
        default=LogicalOperator.AND, description="How the nested rules combine."
    )
    rules: list["SegmentRuleInput"] = strawberry.field(description="The nested rules.")


@strawberry.input(description="Exactly one of `condition` or `group` must be given.")
class SegmentRuleInput:
    condition: ConditionInput | None = strawberry.field(default=None, description="A condition.")
    group: ConditionGroupInput | None = strawberry.field(
        default=None, description="A nested group."
    )


def rules_input_to_raw(rules: list[SegmentRuleInput]) -> list[dict[str, Any]]:
    """The GraphQL input as plain dicts, the shape `rules.validate` checks."""
    return [
        {
            "condition": None
            if r.condition is None
            else {
                "attribute": r.condition.attribute,
                "operator": r.condition.operator.value,
                "value": r.condition.value,
                "caseInsensitive": r.condition.case_insensitive,
            },
            "group": None
            if r.group is None
            else {
                "logicalOp": r.group.logical_op.value,
                "rules": rules_input_to_raw(r.group.rules),
            },
        }
        for r in rules
    ]


def rules_from_stored(stored: list[dict[str, Any]]) -> list[Condition | ConditionGroup]:
    out: list[Condition | ConditionGroup] = []
    for item in stored:
        if "operator" in item:
            out.append(
                Condition(
                    attribute=item["attribute"],
                    operator=item["operator"],
                    value=item.get("value"),
                    case_insensitive=item.get("caseInsensitive") is True,
                )
            )
        else:
            out.append(
                ConditionGroup(
                    logical_op=item["logicalOp"],
                    rules=rules_from_stored(item["rules"]),
                )
            )
    return out
