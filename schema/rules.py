"""The rule tree as GraphQL types and inputs, and its conversion to and from stored JSON."""

from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from rules.models import is_group, is_segment_match
from schema.context import AppInfo, mapped
from schema.enums import ConditionOperator, LogicalOperator

if TYPE_CHECKING:
    from schema.segments import Segment


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


@strawberry.type(
    description='"In segment" / "not in segment": matches when the referenced segment matches '
    "the same context (its force, excluded, included and rules), or with negate when it does not."
)
class SegmentMatch:
    negate: bool = strawberry.field(
        description="true: matches when the referenced segment does not."
    )
    segment_id: strawberry.Private[int]

    @strawberry.field(description="The referenced segment, a live segment of the same project.")
    def segment(self, info: AppInfo) -> Annotated["Segment", strawberry.lazy("schema.segments")]:
        from schema.segments import Segment

        return mapped(info.context.loaders.segment, self.segment_id, Segment.from_row)


SegmentRule = Annotated[
    Condition | ConditionGroup | SegmentMatch,
    strawberry.union(
        "SegmentRule",
        description="A condition, a nested group of rules, or a reference to another segment.",
    ),
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


@strawberry.input(description="A reference to another segment of the same project.")
class SegmentMatchInput:
    segment_key: str = strawberry.field(
        description="Resolved on write to a live segment; stored by id, so renaming keeps it."
    )
    negate: bool | None = strawberry.field(
        default=False, description="true: match when the referenced segment does not."
    )


@strawberry.input(description="Exactly one of `condition`, `group` or `segment` must be given.")
class SegmentRuleInput:
    condition: ConditionInput | None = strawberry.field(default=None, description="A condition.")
    group: ConditionGroupInput | None = strawberry.field(
        default=None, description="A nested group."
    )
    segment: SegmentMatchInput | None = strawberry.field(
        default=None, description="A reference to another segment."
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
            "segment": None
            if r.segment is None
            else {"segmentKey": r.segment.segment_key, "negate": r.segment.negate},
        }
        for r in rules
    ]


def rules_from_stored(
    stored: list[dict[str, Any]],
) -> list[Condition | ConditionGroup | SegmentMatch]:
    out: list[Condition | ConditionGroup | SegmentMatch] = []
    for item in stored:
        if is_segment_match(item):  # type: ignore[arg-type]
            out.append(SegmentMatch(negate=item["negate"], segment_id=item["segmentId"]))
        elif is_group(item):  # type: ignore[arg-type]
            out.append(
                ConditionGroup(
                    logical_op=item["logicalOp"],
                    rules=rules_from_stored(item["rules"]),
                )
            )
        else:
            out.append(
                Condition(
                    attribute=item["attribute"],
                    operator=item["operator"],
                    value=item.get("value"),
                    case_insensitive=item.get("caseInsensitive") is True,
                )
            )
    return out
