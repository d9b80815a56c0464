"""Typed errors: `UserError` values for domain problems, coded GraphQL errors for the rest."""

from collections.abc import Iterable
from enum import Enum

import strawberry
from graphql import GraphQLError

from rules.problems import Problem, ProblemCode, Refused


@strawberry.enum(description="Machine-readable kind of a user error.")
class UserErrorCode(Enum):
    INVALID_INPUT = strawberry.enum_value(
        "INVALID_INPUT", description="A field is malformed or out of bounds."
    )
    INVALID_KEY = strawberry.enum_value(
        "INVALID_KEY", description="A key does not match ^[a-zA-Z0-9_-]+$ or is too long."
    )
    INVALID_RULE = strawberry.enum_value(
        "INVALID_RULE", description="A rule or condition is malformed."
    )
    KEY_TAKEN = strawberry.enum_value(
        "KEY_TAKEN", description="Another live object of the project uses this key."
    )
    NOT_FOUND = strawberry.enum_value(
        "NOT_FOUND", description="The object does not exist (or is not visible to this token)."
    )
    SEGMENT_IN_USE = strawberry.enum_value(
        "SEGMENT_IN_USE",
        description="A targeting rule of a live flag, or a live segment, references the segment.",
    )
    SEGMENT_DELETED = strawberry.enum_value(
        "SEGMENT_DELETED", description="The segment is deleted."
    )
    VERSION_CONFLICT = strawberry.enum_value(
        "VERSION_CONFLICT", description="expectedVersion differs from the stored version."
    )
    LIMIT_EXCEEDED = strawberry.enum_value(
        "LIMIT_EXCEEDED", description="A configured limit would be exceeded."
    )
    SEGMENT_CYCLE = strawberry.enum_value(
        "SEGMENT_CYCLE",
        description="A segment reference would close a cycle (the message names it by keys).",
    )
    APPROVAL_REQUIRED = strawberry.enum_value(
        "APPROVAL_REQUIRED",
        description="The project requires approval: propose the change (proposeSegmentChange).",
    )
    SELF_REVIEW = strawberry.enum_value(
        "SELF_REVIEW", description="The author of a change request cannot review it."
    )
    CHANGE_CONFLICT = strawberry.enum_value(
        "CHANGE_CONFLICT",
        description="The segment changed since the request's base on a field the request changes.",
    )
    INVALID_STATE = strawberry.enum_value(
        "INVALID_STATE", description="The change request is not in a state that allows this."
    )
    UNKNOWN_ATTRIBUTE = strawberry.enum_value(
        "UNKNOWN_ATTRIBUTE",
        description="With strictAttributes on, a condition names an attribute nobody declared "
        "(the message names the closest declared paths).",
    )


@strawberry.type(description="A domain problem with the input of a mutation; nothing was written.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path into the input, e.g. ["input", "rules", "2", "condition", "value"].'
    )
    message: str = strawberry.field(description="Human-readable explanation.")
    code: UserErrorCode = strawberry.field(description="Machine-readable kind of the problem.")


def user_error(
    code: ProblemCode | str, message: str, field: list[str] | tuple[str, ...] | None = None
) -> UserError:
    return UserError(
        field=list(field) if field is not None else None,
        message=message,
        # The one mapping from the core's problem codes to the API's enum (same names).
        code=UserErrorCode[ProblemCode(code).value],
    )


def coded_error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def bad_user_input(message: str) -> GraphQLError:
    return coded_error(message, "BAD_USER_INPUT")


def not_found(message: str) -> GraphQLError:
    return coded_error(message, "NOT_FOUND")


def query_error(refused: Refused) -> GraphQLError:
    """A query's refusal as the coded GraphQL error it answers with: a bad argument is
    BAD_USER_INPUT, anything else keeps its code (NOT_FOUND)."""
    problem = refused.problems[0]
    if problem.code is ProblemCode.INVALID_INPUT:
        return bad_user_input(problem.message)
    return coded_error(problem.message, problem.code.value)


def from_problems(problems: Iterable[Problem]) -> list[UserError]:
    """The one place validation problems from `rules` become UserErrors."""
    return [user_error(p.code, p.message, p.field) for p in problems]
