"""The vocabulary and stored shape of segment rule trees, and the limits that bound them."""

from dataclasses import dataclass
from typing import Any, TypedDict, TypeGuard

LOGICAL_OPS = ("AND", "OR", "NOT")

OPERATORS = (
    "EQ",
    "NEQ",
    "IN",
    "NIN",
    "GT",
    "GTE",
    "LT",
    "LTE",
    "CONTAINS",
    "NOT_CONTAINS",
    "STARTS_WITH",
    "ENDS_WITH",
    "EXISTS",
    "NOT_EXISTS",
    "REGEX",
    "BEFORE",
    "AFTER",
    "SEMVER_EQ",
    "SEMVER_GT",
    "SEMVER_LT",
)


class StoredCondition(TypedDict):
    attribute: str
    operator: str
    value: Any


class StoredGroup(TypedDict):
    logicalOp: str
    rules: list["StoredRule"]


StoredRule = StoredCondition | StoredGroup


@dataclass(frozen=True)
class Limits:
    max_conditions: int = 50
    max_depth: int = 5
    max_targets: int = 15000


def is_group(rule: StoredRule) -> TypeGuard[StoredGroup]:
    """Tell a stored group from a stored condition (groups carry `logicalOp`)."""
    return "logicalOp" in rule
