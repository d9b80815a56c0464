"""The REST API's JSON shapes, as the Flagmint document gives them, and their conversions.

These pydantic models parse request bodies and generate the OpenAPI document: what is
documented is what is accepted.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from rules import validate
from rules.models import is_group, is_segment_match
from rules.operators import BY_REST_NAME, REGISTRY

# The seed's operator names, and ours in the same style (the registry's REST names).
Operator = Literal[tuple(BY_REST_NAME)]  # type: ignore[valid-type]
LogicalOp = Literal["AND", "OR", "NOT"]
SortField = Literal["name", "key", "created_at", "updated_at"]


# Constraints the core checks (with its own problem codes), stated in the document too.
_NO_NUL = "^[^\\x00]*$"
Key = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "pattern": f"^[a-zA-Z0-9_-]{{1,{validate.MAX_KEY_LENGTH}}}$"}
    ),
]
Name = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": validate.MAX_NAME_LENGTH,
            "pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$",
            "description": f"1-{validate.MAX_NAME_LENGTH} characters after trimming, no NUL.",
        }
    ),
]
Description = Annotated[
    str | None,
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "maxLength": validate.MAX_DESCRIPTION_LENGTH,
                    "pattern": _NO_NUL,
                },
                {"type": "null"},
            ]
        }
    ),
]
Tags = Annotated[
    list[str],
    WithJsonSchema(
        {
            "type": "array",
            "maxItems": validate.MAX_TAGS,
            "items": {
                "type": "string",
                "pattern": f"^[a-zA-Z0-9_.:-]{{1,{validate.MAX_TAG_LENGTH}}}$",
            },
        }
    ),
]
Salt = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": validate.MAX_SALT_LENGTH,
            "pattern": _NO_NUL,
            "description": "Seeds percentage buckets.",
        }
    ),
]
Targets = Annotated[list[str], WithJsonSchema({
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": validate.MAX_TARGET_LENGTH,
              "pattern": _NO_NUL},
})]  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RuleCondition(_Strict):
    """One test of an attribute of the flattened evaluation context."""

    type: Literal["rule"]
    attribute: str = Field(description='Dotted path, e.g. "user.plan".')
    operator: Operator
    value: Annotated[
        Any, WithJsonSchema({"type": ["string", "number", "boolean", "array", "null"]})
    ] = Field(default=None, description="Operand; omitted for exists / not_exists.")
    case_insensitive: bool = Field(
        default=False,
        description="Compare strings lower-cased on both sides (eq neq in nin contains "
        "not_contains startsWith endsWith regex); omitted when false.",
    )


class RuleGroup(_Strict):
    """Nested rules combined with their own logical operator."""

    type: Literal["group"]
    logical_op: LogicalOp = "AND"
    rules: list["Rule"]


class RuleSegment(_Strict):
    """A reference to another segment of the project: matches when that segment matches the
    same context, or with negate when it does not."""

    type: Literal["segment"]
    segment_id: str = Field(description="The referenced segment's key (stored by id).")
    negate: bool = False


Rule = Annotated[RuleCondition | RuleGroup | RuleSegment, Field(discriminator="type")]
RuleGroup.model_rebuild()


class SegmentCreate(_Strict):
    """A new segment. The key is derived from the name when omitted."""

    name: Name
    key: Key | None = None
    description: Description = None
    logical_op: LogicalOp = "AND"
    rules: list[Rule] = []
    force: bool = False
    tags: Tags = []
    included: Targets = Field(default=[], description="Targeting keys always in the segment.")
    excluded: Targets = Field(default=[], description="Targeting keys never in it.")
    salt: Salt | None = Field(default=None, description="Default: the segment's key.")
    unbounded: bool = Field(
        default=False,
        description="A big segment (fixed at creation): up to 10,000,000 targets kept as rows, "
        "edited through POST .../targets; included and excluded must then stay empty.",
    )


def _absent_is_not_null(schema: dict[str, Any]) -> None:
    """An omitted field of a partial update is absent, not null: no `default` to state."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class SegmentUpdate(_Strict):
    """A partial update: only the fields present change; `description: null` clears it.
    Lists given as null are emptied."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra=_absent_is_not_null)

    # Fields without `| None` must not be null when given; None defaults mean "absent".
    name: Name = None  # type: ignore[assignment]
    key: Key = None  # type: ignore[assignment]
    description: Description = None
    logical_op: LogicalOp = None  # type: ignore[assignment]
    rules: list[Rule] | None = None
    force: bool = None  # type: ignore[assignment]
    tags: Tags | None = None
    included: Targets | None = None
    excluded: Targets | None = None
    salt: Salt = None  # type: ignore[assignment]
    expected_version: int | None = Field(
        default=None, description="When given, the update applies only at this version (else 409)."
    )


class SegmentOut(BaseModel):
    id: str = Field(description="The segment's key, as the seed uses it.")
    key: str
    name: str
    description: str | None
    logical_op: LogicalOp
    rules: list[Rule]
    force: bool
    tags: list[str]
    included: list[str]
    excluded: list[str]
    salt: str
    version: int
    created_at: datetime
    updated_at: datetime
    unbounded: bool = Field(description="A big segment: its lists read as empty here.")
    included_count: int
    excluded_count: int
    generation: int = Field(description="+1 each time a big segment's list is replaced whole.")


class TargetChanges(_Strict):
    add: Targets = []
    remove: Targets = []


class TargetsUpdate(_Strict):
    """A batch of target edits, all or nothing: 1-10,000 keys over the four lists. Adding a
    key already there, or removing one that is not, changes nothing."""

    included: TargetChanges = TargetChanges()
    excluded: TargetChanges = TargetChanges()


class TargetsUpdated(BaseModel):
    segment: SegmentOut
    added_count: int
    removed_count: int


class SegmentList(BaseModel):
    data: list[SegmentOut]
    page: int
    limit: int
    total: int


class FlagUse(BaseModel):
    id: str = Field(description="The flag's key.")
    name: str
    environment: str = Field(description="The environment's key.")


class SegmentUse(BaseModel):
    id: str = Field(description="The referencing segment's key.")
    name: str


class SegmentUsage(BaseModel):
    usage_count: int
    used_in_flags: list[FlagUse]
    used_in_segments: list[SegmentUse] = Field(
        description="Live segments whose rules reference this one."
    )


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail
    errors: list[ErrorDetail] = Field(description="Every problem found; `error` is the first.")
    used_in_flags: list[FlagUse] | None = Field(
        default=None, description="With SEGMENT_IN_USE: which flags still use the segment."
    )
    used_in_segments: list[SegmentUse] | None = Field(
        default=None, description="With SEGMENT_IN_USE: which segments still reference it."
    )


def rules_to_core(rules: list[RuleCondition | RuleGroup | RuleSegment]) -> list[dict[str, Any]]:
    """REST rules in the shape `rules.validate` checks."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        if isinstance(rule, RuleSegment):
            segment = {"segmentKey": rule.segment_id, "negate": rule.negate}
            out.append({"condition": None, "group": None, "segment": segment})
        elif isinstance(rule, RuleCondition):
            condition = {
                "attribute": rule.attribute,
                "operator": BY_REST_NAME[rule.operator].name,
                "value": rule.value,
                "caseInsensitive": rule.case_insensitive,
            }
            out.append({"condition": condition, "group": None})
        else:
            group = {"logicalOp": rule.logical_op, "rules": rules_to_core(rule.rules)}
            out.append({"condition": None, "group": group})
    return out


def rules_from_stored(stored: list[Any], keys: Mapping[int, str]) -> list[dict[str, Any]]:
    """Stored rules in the REST shape; `keys` gives referenced segments' keys by id."""
    out: list[dict[str, Any]] = []
    for rule in stored:
        if is_segment_match(rule):
            out.append(
                {
                    "type": "segment",
                    "segment_id": keys[rule["segmentId"]],
                    "negate": rule["negate"],
                }
            )
        elif is_group(rule):
            out.append(
                {
                    "type": "group",
                    "logical_op": rule["logicalOp"],
                    "rules": rules_from_stored(rule["rules"], keys),
                }
            )
        else:
            condition: dict[str, Any] = {
                "type": "rule",
                "attribute": rule["attribute"],
                "operator": REGISTRY[rule["operator"]].rest,
            }
            if rule.get("value") is not None:
                condition["value"] = rule["value"]
            if rule.get("caseInsensitive") is True:
                condition["case_insensitive"] = True
            out.append(condition)
    return out


def segment_out(row: Mapping[str, Any], keys: Mapping[int, str]) -> dict[str, Any]:
    """The seed's segment JSON; `keys` gives referenced segments' keys by id."""
    return {
        "id": row["key"],
        "key": row["key"],
        "name": row["name"],
        "description": row["description"],
        "logical_op": row["logical_op"],
        "rules": rules_from_stored(row["rules"], keys),
        "force": row["force"],
        "tags": list(row["tags"]),
        "included": list(row["included"]),
        "excluded": list(row["excluded"]),
        "salt": row["salt"],
        "version": row["version"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "unbounded": row["unbounded"],
        "included_count": row["included_count"] if row["unbounded"] else len(row["included"]),
        "excluded_count": row["excluded_count"] if row["unbounded"] else len(row["excluded"]),
        "generation": row["generation"],
    }


def usage_out(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"id": row["flag_key"], "name": row["flag_name"], "environment": row["environment_key"]}
        for row in rows
    ]


def segment_uses_out(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": row["key"], "name": row["name"]} for row in rows]
