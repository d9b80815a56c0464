"""The vocabulary and stored shape of segment rule trees, and the limits that bound them."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, TypeGuard

LOGICAL_OPS = ("AND", "OR", "NOT")

# Stored rules are validated to depth 5; compilers give up beyond this depth, so corrupt data
# cannot exhaust the stack.
MAX_COMPILE_DEPTH = 32
# A chain of references is validated to at most 5 segments; loaders and compilers follow at
# most this many references from a definition, so corrupt data (a cycle) stays finite.
MAX_REFERENCE_COMPILE_DEPTH = 8


class StoredCondition(TypedDict):
    attribute: str
    operator: str
    value: Any
    caseInsensitive: NotRequired[bool]  # stored only when true, so older rules stay as they were


class StoredGroup(TypedDict):
    logicalOp: str
    rules: list["StoredRule"]


class StoredSegmentMatch(TypedDict):
    """A reference to another segment of the same project, by row id (renaming keeps it)."""

    segmentId: int
    negate: bool


StoredRule = StoredCondition | StoredGroup | StoredSegmentMatch


class StoredDefinition(TypedDict):
    """What decides membership of a stored segment: the mapping a compiler gets for each
    referenced segment (a database row has these columns)."""

    key: str
    logical_op: str
    rules: list[StoredRule]
    force: bool
    included: list[str]
    excluded: list[str]
    salt: str
    # A big segment (DESIGN §13): its lists are rows, so `included`/`excluded` hold only
    # what a caller looked up; SQL compilers probe the rows instead.
    unbounded: NotRequired[bool]


# A referenced segment's definition by row id: the closure of a definition's references.
References = Mapping[int, StoredDefinition]


@dataclass(frozen=True)
class Limits:
    max_conditions: int = 50
    max_depth: int = 5
    max_targets: int = 15000


def is_group(rule: StoredRule) -> TypeGuard[StoredGroup]:
    """Tell a stored group from a stored condition (groups carry `logicalOp`)."""
    return "logicalOp" in rule


def is_segment_match(rule: StoredRule) -> TypeGuard[StoredSegmentMatch]:
    """Tell a stored reference to a segment from a condition or group (it carries `segmentId`)."""
    return "segmentId" in rule


def referenced_ids(rules: object) -> Iterator[int]:
    """The segment ids a stored rule list references, depth first in rule order (repeats
    included). Tolerates malformed data: anything not a rule is skipped."""
    if type(rules) is not list:
        return
    stack = [iter(rules)]
    while stack:
        for rule in stack[-1]:
            if type(rule) is not dict:
                continue
            if "segmentId" in rule:
                if type(rule["segmentId"]) is int:
                    yield rule["segmentId"]
            elif "logicalOp" in rule and type(rule.get("rules")) is list:
                stack.append(iter(rule["rules"]))
                break
        else:
            stack.pop()


def rules_as_input(rules: list[StoredRule], keys: Mapping[int, str]) -> list[dict[str, Any]]:
    """Stored rules in the SegmentRuleInput shapes they were written in: a reference names
    the segment `keys` gives its id (None when it gives none)."""
    shaped: list[dict[str, Any]] = []
    for rule in rules:
        if is_segment_match(rule):
            segment = {"segmentKey": keys.get(rule["segmentId"]), "negate": rule["negate"]}
            shaped.append({"segment": segment})
        elif is_group(rule):
            group = {"logicalOp": rule["logicalOp"], "rules": rules_as_input(rule["rules"], keys)}
            shaped.append({"group": group})
        else:
            shaped.append({"condition": dict(rule)})
    return shaped
