"""How JSON values read as numbers, booleans, instants, versions and regexes, one way for all."""

import hashlib
import json
import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol

import orjson
import re2

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
_FOLDED_REGEX_OPTIONS = re2.Options()
_FOLDED_REGEX_OPTIONS.log_errors = False
_FOLDED_REGEX_OPTIONS.never_capture = True
_FOLDED_REGEX_OPTIONS.case_sensitive = False


def is_number(value: object) -> bool:
    """Whether a JSON value is a finite number (booleans are not numbers)."""
    if isinstance(value, float):
        return math.isfinite(value)  # json.loads lets NaN and Infinity through
    return isinstance(value, int) and not isinstance(value, bool)


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def storable_text(value: object) -> bool:
    """Whether a value is a string PostgreSQL can hold (text and jsonb take no NUL, and only
    valid UTF-8: no lone surrogates, which JSON parsers let through)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def storable_number(value: object) -> bool:
    """Whether a value is a number jsonb and our JSON encoder hold exactly (integers of at most
    64 bits)."""
    return is_number(value) and (not isinstance(value, int) or INT64_MIN <= value <= INT64_MAX)


NUMBER_PROBLEM = "numbers must be finite, and integers within 64 bits (-2^63 to 2^63-1)"


def is_exact_number(value: object) -> bool:
    """Whether a JSON number is one we take as sent: finite, and an integer within signed 64
    bits, the range rule values always had (jsonb keeps more, but orjson reads integers
    beyond 64 bits back as floats and writes none beyond 2^64-1)."""
    if type(value) is int:
        return INT64_MIN <= value <= INT64_MAX
    return type(value) is float and math.isfinite(value)


def json_problem(value: object, max_depth: int) -> str | None:
    """Why a JSON value from a client cannot be taken as it is, or None: it nests deeper than
    `max_depth` (objects and arrays both count; the value itself is level 1) or holds a number
    outside what `is_exact_number` allows. The same check applies inline literals, variables
    and file lines, so each is refused the same way."""
    # An explicit stack, so no nesting can exhaust Python's.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        kind = type(current)
        if kind is dict or kind is list:
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels (objects and arrays both count)"
            children = current.values() if kind is dict else current
            stack.extend((child, depth + 1) for child in children)
        elif (kind is int or kind is float) and not is_exact_number(current):
            return NUMBER_PROBLEM
    return None


# A run of 19 digits (an integer that may leave 64 bits) or an exponent of 3 digits (a float
# that may overflow), [0-9]{19}|[eE][+-]?[0-9]{3}: only then can orjson's reading differ from
# the text. It may also be found inside a string, which costs only the slower exact reading.
# Found with every digit read as "0" and "E" as "e", by four substring searches: a fifth of
# the regex's time on a profile line, and this runs on every body, variables string and line.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E", b"000000000e")
_NINETEEN_DIGITS = b"0" * 19
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Python refuses int() of longer digit strings; any such integer is far outside 64 bits.
_INT_DIGITS = 4000


def _exact_int(text: str) -> int:
    if len(text) <= _INT_DIGITS:
        return int(text)
    return INT64_MIN - 1 if text.startswith("-") else INT64_MAX + 1


def may_be_inexact(raw: bytes) -> bool:
    """Whether a JSON text may hold a number orjson cannot read as written. When it may not,
    every number in it is an integer of at most 18 digits or a float of at most 2 exponent
    digits: `is_exact_number` holds for all of them."""
    folded = raw.translate(_DIGITS_AS_ZERO)
    return (
        _NINETEEN_DIGITS in folded or b"e000" in folded or b"e+000" in folded or b"e-000" in folded
    )


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_EXACT = json.JSONDecoder(parse_int=_exact_int, parse_constant=_no_constants)


def loads_json(data: bytes | str, inexact: bool | None = None) -> Any:
    """A JSON text (a request body, a variables string, a file line) with its numbers as
    written: integers exact at any size, `1e400` as infinity, so `json_problem` can refuse them
    exactly as it refuses the same literal written inline in GraphQL. orjson alone reads
    integers beyond 64 bits as floats and refuses `1e400` as invalid JSON. Raises
    orjson.JSONDecodeError for text that is not JSON. `inexact` is `may_be_inexact(data)`
    when the caller has it already."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if not (may_be_inexact(raw) if inexact is None else inexact):
        return orjson.loads(raw)
    try:
        value = _EXACT.decode(raw.decode("utf-8"))
        # orjson refuses escaped lone surrogates ("\ud800"); the standard library does not.
        if _SURROGATE_ESCAPE.search(raw) is not None:
            _refuse_lone_surrogates(value)
        return value
    except (ValueError, RecursionError) as error:  # UnicodeError is a ValueError
        raise orjson.JSONDecodeError(f"not JSON: {error}", "", 0) from None


def _refuse_lone_surrogates(value: object) -> None:
    stack = [value]
    while stack:
        current = stack.pop()
        if type(current) is str:
            current.encode("utf-8")  # UnicodeEncodeError on a lone surrogate
        elif type(current) is dict:
            stack.extend(current.keys())
            stack.extend(current.values())
        elif type(current) is list:
            stack.extend(current)


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


def compile_regex(pattern: str, case_insensitive: bool = False) -> CompiledRegex | None:
    """The pattern compiled for linear-time matching by RE2 (case-insensitively, as RE2's
    `(?i)` does, when asked), or None when RE2 rejects it."""
    options = _FOLDED_REGEX_OPTIONS if case_insensitive else _REGEX_OPTIONS
    try:
        return re2.compile(pattern, options)
    except (re2.error, UnicodeError):  # UnicodeError: lone surrogates cannot be UTF-8 encoded
        return None


def regex_search(regex: CompiledRegex, text: str) -> bool:
    """Whether the regex matches anywhere in text; never raises, whatever the text holds."""
    # Bytes skip the wrapper's str offset bookkeeping; surrogatepass keeps lone surrogates
    # (which json.loads lets through) from raising.
    return regex.search(text.encode("utf-8", "surrogatepass")) is not None


# PERCENTAGE (DESIGN §12): a value is a number of percent with at most this many decimals.
PERCENT_DECIMALS = 3
_BUCKETS = 2**64


def percent_of(value: object) -> Fraction | None:
    """The exact percentage a stored PERCENTAGE value spells (0-100, at most three decimals,
    read from its shortest text so 12.345 is exactly 12345/1000), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not is_number(value):
        return None
    exact = Fraction(Decimal(repr(value))) if isinstance(value, float) else Fraction(value)
    if not 0 <= exact <= 100 or (exact * 10**PERCENT_DECIMALS).denominator != 1:
        return None
    return exact


def percent_threshold(percent: Fraction) -> int:
    """The number of buckets below `percent`: a bucket b (0 <= b < 2^64) matches exactly when
    b * 100 < percent * 2^64, i.e. when b < this (0 for 0%, 2^64 for 100%)."""
    return math.ceil(percent * _BUCKETS / 100)


def percent_bucket(salt: str, text: str) -> int:
    """The first 8 bytes of sha256(utf8(salt + "/" + text)) as an unsigned big-endian integer;
    times 100 / 2^64 it is the context's position in 0-100."""
    data = f"{salt}/{text}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big")
