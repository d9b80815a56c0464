"""The vocabulary and stored shape of segment rule trees, and the limits that bound them."""

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, TypeGuard

LOGICAL_OPS = ("AND", "OR", "NOT")

# Stored rules are validated to depth 5; compilers give up beyond this depth, so corrupt data
# cannot exhaust the stack.
MAX_COMPILE_DEPTH = 32


class StoredCondition(TypedDict):
    attribute: str
    operator: str
    value: Any
    caseInsensitive: NotRequired[bool]  # stored only when true, so older rules stay as they were


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
