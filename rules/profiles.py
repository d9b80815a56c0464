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
    return encoded_profile(targeting_key, attributes, path)[1]


def encoded_profile(
    targeting_key: object, attributes: object, path: Path = (), *, plain: bool = False
) -> tuple[bytes | None, list[Problem]]:
    """The attributes as stored (compact JSON), or None, and every problem with the profile.

    `plain` says the caller knows `json_problem` finds nothing in `attributes` (a file line that
    `may_be_inexact` clears and whose brackets cannot nest deeper than allowed), so the walk
    over every value is skipped: the import checks a million lines."""
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
    encoded = _encoded_attributes(attributes, plain)
    if isinstance(encoded, str):
        problems.append(Problem((*path, "attributes"), ProblemCode.INVALID_INPUT, encoded))
        return None, problems
    return (None if problems else encoded), problems


def _encoded_attributes(attributes: object, plain: bool) -> bytes | str:
    """Attributes as compact JSON, or a str saying why they cannot be stored."""
    if type(attributes) is not dict:
        return "attributes must be a JSON object"
    # Before encoding: orjson would write an infinity as null and stop at integers of 65 bits.
    problem = None if plain else json_problem(attributes, MAX_ATTRIBUTES_DEPTH)
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
    return encoded


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
