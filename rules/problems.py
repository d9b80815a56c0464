"""The one vocabulary of domain problems: every refusal anywhere names a `ProblemCode`.

Faces map the codes once each: GraphQL to `UserErrorCode` (schema/errors.py), REST to HTTP
statuses (api/rest). A code is an enum member where the problem is found, so a typo is a
type error, not a masked internal error at run time.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Path = tuple[str, ...]


class ProblemCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_KEY = "INVALID_KEY"
    INVALID_RULE = "INVALID_RULE"
    KEY_TAKEN = "KEY_TAKEN"
    NOT_FOUND = "NOT_FOUND"
    SEGMENT_IN_USE = "SEGMENT_IN_USE"
    SEGMENT_DELETED = "SEGMENT_DELETED"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    SEGMENT_CYCLE = "SEGMENT_CYCLE"
    APPROVAL_REQUIRED = "APPROVAL_REQUIRED"
    SELF_REVIEW = "SELF_REVIEW"
    CHANGE_CONFLICT = "CHANGE_CONFLICT"
    INVALID_STATE = "INVALID_STATE"
    UNKNOWN_ATTRIBUTE = "UNKNOWN_ATTRIBUTE"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, at its path in the input (GraphQL spelling, e.g.
    ("input", "rules", "2", "condition", "value"))."""

    field: Path | None
    code: ProblemCode
    message: str


@dataclass(frozen=True)
class Refused:
    """A write that wrote nothing, and why. `blocking_usage` tells who still uses a
    segment that could not be deleted (a `db.segments.Usage`)."""

    problems: list[Problem]
    blocking_usage: Any = field(default=None)

    @classmethod
    def one(
        cls, code: ProblemCode, message: str, path: Path | None = None, **extra: Any
    ) -> "Refused":
        return cls([Problem(path, code, message)], **extra)

    @property
    def code(self) -> ProblemCode:
        return self.problems[0].code
