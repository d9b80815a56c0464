"""Checks of a stored profile (a targetingKey and its attributes), one way for the API and the import."""

from typing import Any

import orjson

from rules.problems import Path, Problem, ProblemCode
from rules.values import json_problem

MAX_TARGETING_KEY_LENGTH = 256
MAX_ATTRIBUTES_BYTES = 32 * 1024
MAX_ATTRIBUTES_DEPTH = 10
MAX_PROFILES_PER_CALL = 1000


def validate_profile(targeting_key: object, attributes: object, path: Path = ()) -> list[Problem]:
    """Every problem with one profile; `path` is where it sits in the input, e.g.
    ("input", "profiles", "3"), and each problem points at its targetingKey or attributes."""
    problems = []
    if not (
        isinstance(targeting_key, str)
        and 1 <= len(targeting_key) <= MAX_TARGETING_KEY_LENGTH
        and "\x00" not in targeting_key
    ):
        problems.append(
            Problem(
                (*path, "targetingKey"),
                ProblemCode.INVALID_INPUT,
                f"targetingKey must be a string of 1-{MAX_TARGETING_KEY_LENGTH} characters "
                "(no NUL)",
            )
        )
    message = attributes_problem(attributes)
    if message is not None:
        problems.append(Problem((*path, "attributes"), ProblemCode.INVALID_INPUT, message))
    return problems


def attributes_problem(attributes: object) -> str | None:
    """What is wrong with an attributes value, or None when it can be stored."""
    if type(attributes) is not dict:
        return "attributes must be a JSON object"
    # Before encoding: orjson would write an infinity as null and stop at integers of 65 bits.
    problem = json_problem(attributes, MAX_ATTRIBUTES_DEPTH)
    if problem is not None:
        return f"attributes: {problem}"
    try:
        encoded = orjson.dumps(attributes)
    except (TypeError, orjson.JSONEncodeError):
        # Values neither the JSON scalar nor a JSON line produce (other types, lone surrogates).
        return "attributes must hold only JSON values"
    if len(encoded) > MAX_ATTRIBUTES_BYTES:
        return (
            f"attributes take {len(encoded)} bytes as compact JSON; "
            f"at most {MAX_ATTRIBUTES_BYTES} are allowed"
        )
    # PostgreSQL's jsonb cannot hold U+0000. orjson writes it as \u0000, so the bytes tell
    # cheaply whether a closer look is needed (an escaped backslash can fake the pattern).
    if b"\\u0000" in encoded and _holds_nul(attributes):
        return "attributes must not contain the character U+0000 (NUL)"
    return None


def _holds_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        current = stack.pop()
        if type(current) is str:
            if "\x00" in current:
                return True
        elif type(current) is dict:
            stack.extend(current.keys())
            stack.extend(current.values())
        elif type(current) is list:
            stack.extend(current)
    return False
