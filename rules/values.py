"""How JSON values read as numbers, booleans, instants, versions and regexes, one way for all."""

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

import re2  # type: ignore[import-untyped]

# Stricter than float(): no whitespace, "inf", "nan", "_" or non-ASCII digits, so that any other
# store (e.g. a SQL translation of the rules) can reproduce the same coercion with this pattern.
NUMERIC_STRING_PATTERN = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMERIC_STRING = re.compile(NUMERIC_STRING_PATTERN)

# Only the extended format (dashes and colons), so a bare "20240101" stays a number (epoch
# seconds); datetime.fromisoformat then checks the ranges and does the arithmetic.
ISO_INSTANT_PATTERN = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?"
)
_ISO_INSTANT = re.compile(ISO_INSTANT_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)  # naive date-times are UTC
_MICROSECOND = timedelta(microseconds=1)
_MICROS = 1_000_000

# Unambiguous (each part's characters differ from the separator after it), so linear-time.
_SEMVER = re.compile(
    r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?"
)

# A semantic version's precedence key: (major, minor, patch, pre-release part); the pre-release
# part is (1,) for a release and (0, identifiers) for a pre-release, so a release sorts after
# its pre-releases and identifier tuples compare by semver's rules (numeric < alphanumeric,
# shorter list first when one is a prefix of the other).
SemverKey = tuple[int, int, int, tuple[object, ...]]


class CompiledRegex(Protocol):
    def search(self, text: bytes) -> object | None: ...


_REGEX_OPTIONS = re2.Options()
_REGEX_OPTIONS.log_errors = False  # a bad user pattern is a validation problem, not a log line
_REGEX_OPTIONS.never_capture = True  # only "is there a match" is ever asked


def is_number(value: object) -> bool:
    """Whether a JSON value is a finite number (booleans are not numbers)."""
    if isinstance(value, float):
        return math.isfinite(value)  # json.loads lets NaN and Infinity through
    return isinstance(value, int) and not isinstance(value, bool)


def to_number(text: str) -> int | float | None:
    """The number a numeric string spells (ints stay exact), or None."""
    if _NUMERIC_STRING.fullmatch(text) is None:
        return None
    if "." in text or "e" in text or "E" in text:
        return float(text)
    try:
        return int(text)
    except ValueError:  # beyond Python's int-from-str digit limit
        return float(text)


def to_bool(text: str) -> bool | None:
    """True/False for "true"/"false" in any letter case, else None."""
    if len(text) == 4 and text.lower() == "true":
        return True
    if len(text) == 5 and text.lower() == "false":
        return False
    return None


def number_text(number: float) -> str:
    """A number's JSON text form (1 → "1", 1.5 → "1.5"), as json.dumps writes it."""
    return repr(number)


def parse_iso_instant(text: str) -> int | None:
    """Microseconds since the epoch of an ISO-8601 date or date-time, or None.

    A date is midnight UTC; a date-time without an offset is UTC.
    """
    if _ISO_INSTANT.fullmatch(text) is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:  # out of range, e.g. month 13 or hour 24
        return None
    return (moment - (_NAIVE_EPOCH if moment.tzinfo is None else _EPOCH)) // _MICROSECOND


def to_instant(value: object) -> int | float | None:
    """Microseconds since the epoch of a context value: an ISO-8601 string or epoch seconds."""
    if isinstance(value, str):
        instant = parse_iso_instant(value)
        if instant is not None:
            return instant
        seconds = to_number(value)
        return None if seconds is None else seconds * _MICROS
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value * _MICROS
    return None


def parse_semver(text: str) -> SemverKey | None:
    """The precedence key of a semantic version 2.0.0 (leading "v" allowed), or None."""
    match = _SEMVER.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, pre_release, build = match.groups()
    if build is not None and "" in build.split("."):
        return None
    try:
        if pre_release is None:
            return (int(major), int(minor), int(patch), (1,))
        identifiers: list[tuple[int, int, str]] = []
        for part in pre_release.split("."):
            if part.isdigit():
                if part[0] == "0" and part != "0":
                    return None
                identifiers.append((0, int(part), ""))
            elif part:
                identifiers.append((1, 0, part))
            else:
                return None
        return (int(major), int(minor), int(patch), (0, tuple(identifiers)))
    except ValueError:  # a number beyond Python's int-from-str digit limit
        return None


def compile_regex(pattern: str) -> CompiledRegex | None:
    """The pattern compiled for linear-time matching by RE2, or None when RE2 rejects it."""
    try:
        return re2.compile(pattern, _REGEX_OPTIONS)  # type: ignore[no-any-return]
    except (re2.error, UnicodeError):  # UnicodeError: lone surrogates cannot be UTF-8 encoded
        return None


def regex_search(regex: CompiledRegex, text: str) -> bool:
    """Whether the regex matches anywhere in text; never raises, whatever the text holds."""
    # Bytes skip the wrapper's str offset bookkeeping; surrogatepass keeps lone surrogates
    # (which json.loads lets through) from raising.
    return regex.search(text.encode("utf-8", "surrogatepass")) is not None
