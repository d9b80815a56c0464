"""What a condition's value must be for its operator: each check returns what is wrong with a
stored value, or None. `rules.operators` names one check per operator.
"""

from typing import Any

from rules.values import (
    PERCENT_DECIMALS,
    compile_regex,
    parse_iso_instant,
    parse_semver,
    percent_of,
    storable_number,
    storable_text,
)

MAX_LIST_VALUES = 1000
MAX_REGEX_LENGTH = 500


def is_scalar(value: object) -> bool:
    return isinstance(value, bool) or storable_text(value) or storable_number(value)


def scalar(value: Any) -> str | None:
    if is_scalar(value):
        return None
    return "needs a string (no NUL), number (integers within 64 bits) or boolean value"


def scalar_list(value: Any) -> str | None:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST_VALUES:
        return f"needs a list of 1-{MAX_LIST_VALUES} values"
    bad = [str(index) for index, item in enumerate(value) if not is_scalar(item)]
    if bad:
        return f"values must be strings, numbers or booleans (not at index {', '.join(bad)})"
    return None


def number(value: Any) -> str | None:
    return None if storable_number(value) else "needs a number value (integers within 64 bits)"


def string(value: Any) -> str | None:
    return None if storable_text(value) else "needs a string value (no NUL characters)"


def absent(value: Any) -> str | None:
    return None if value is None else "takes no value (null)"


def regex(value: Any) -> str | None:
    if not storable_text(value) or len(value) > MAX_REGEX_LENGTH:
        return f"needs a regular expression string of at most {MAX_REGEX_LENGTH} characters"
    if compile_regex(value) is None:
        return (
            "needs a regular expression that compiles (RE2 syntax: no lookaround or backreferences)"
        )
    return None


def instant(value: Any) -> str | None:
    if isinstance(value, str) and parse_iso_instant(value) is not None:
        return None
    return "needs an ISO-8601 date or date-time, e.g. 2026-01-31 or 2026-01-31T10:00:00Z"


def semver(value: Any) -> str | None:
    if isinstance(value, str) and parse_semver(value) is not None:
        return None
    return "needs a semantic version, e.g. 1.4.0 or v2.0.0-beta.1"


def percentage(value: Any) -> str | None:
    if percent_of(value) is not None:
        return None
    return f"needs a number from 0 to 100 with at most {PERCENT_DECIMALS} decimals"
