"""BEFORE and AFTER in SQL: ISO-8601 strings and epoch seconds, as `rules.values` reads them."""

from datetime import datetime, timedelta
from decimal import Decimal

from db.rules_sql.fragments import EXACT_IN_DOUBLE, Leaf
from rules.matchers import Operand
from rules.values import ISO_INSTANT_PATTERN, parse_iso_instant

# ISO-8601 instants PostgreSQL parses exactly as datetime.fromisoformat does: a valid
# calendar date in years 0001-9999 (29 February left to Python), times within range, at most
# six fraction digits after a dot (Python truncates longer fractions), offsets up to ±23:59.
_ISO_STRICT = (
    r"^(?!0000)[0-9]{4}-"
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"
    r"(?:[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?$"
)
# What parse_iso_instant reads at all; beyond _ISO_STRICT, Python decides.
_ISO_LOOSE = f"^{ISO_INSTANT_PATTERN}$"
_ISO_DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_EPOCH = datetime(1970, 1, 1)
_DAY = 86_400_000_000  # microseconds


def instant_comparison(op: str):
    def build(leaf: Leaf, operand: Operand) -> str:
        expected = operand.value
        bound = parse_iso_instant(expected) if type(expected) is str else None
        if bound is None:
            return "false"
        return leaf.by_type(
            {"number": _instant_number(leaf, op, bound), "string": _instant_string(leaf, op, bound)}
        )

    return build


def _instant_number(leaf: Leaf, op: str, bound: int) -> str:
    """Epoch seconds: an int times 10**6 exactly; a float times 1e6 in double arithmetic."""
    number = f"{leaf.value}::numeric"
    seconds = leaf.c.param(Decimal(bound).scaleb(-6), "numeric")
    double = _micros_compare(leaf, f"{leaf.value}::float8", op, bound)
    # Integers beyond 64 bits read back as floats, but their products lie far beyond any
    # instant, on the same side as the exact product.
    return f"(CASE WHEN scale({number}) = 0 THEN {number} {op} {seconds} ELSE {double} END)"


def _micros_compare(leaf: Leaf, seconds: str, op: str, bound: int) -> str:
    """Python's `seconds * 1_000_000 <op> bound` for a float: the product rounded as a double,
    then compared exactly with the integer bound. Doubles of 2**53 and more are integers, so
    bigint compares them exactly; below, the bound's double is on the same side (it can
    only round to 2**53 or beyond when the bound is that large); far beyond any instant
    either comparison is right."""
    product = f"({seconds} * 1000000::float8)"
    return (
        f"(CASE WHEN abs({product}) >= {float(EXACT_IN_DOUBLE)}::float8"
        f" AND abs({product}) < 9.0e18::float8"
        f" THEN {product}::bigint {op} {leaf.c.param(bound, 'bigint')}"
        f" ELSE {product} {op} {leaf.c.param(float(bound), 'float8')} END)"
    )


def _instant_string(leaf: Leaf, op: str, bound: int) -> str:
    """ISO-8601 strings as parse_iso_instant reads them, else epoch seconds as to_number."""
    text = leaf.text
    integer = f"{text}::numeric {op} {leaf.c.param(Decimal(bound).scaleb(-6), 'numeric')}"
    double = _micros_compare(leaf, f"{text}::float8", op, bound)
    return (
        f"(CASE WHEN {text} ~ '{_ISO_DATE}' THEN {_iso_date(leaf, op, bound)}"
        f" WHEN {text} ~ '{_ISO_STRICT}' THEN {_iso_date_time(leaf, op, bound)}"
        f" WHEN {text} ~ '{_ISO_LOOSE}' THEN {leaf.c.unknown()}"
        f" ELSE {leaf.numeric_string(integer, double)} END)"
    )


def _iso_date(leaf: Leaf, op: str, bound: int) -> str:
    """A YYYY-MM-DD string: midnight UTC if the date is valid, compared as text with the
    bound's own date (for "<", midnight of d is before the bound iff d is before the first
    day whose midnight is not; for ">", iff d is after the day the bound falls on)."""
    text = f'({leaf.text} COLLATE "C")'
    day = bound // _DAY
    first = day if op == ">" or bound % _DAY == 0 else day + 1
    first_text = leaf.c.param(_date_text(first), "text")
    month, mday = f"substr({text}, 6, 2)", f"substr({text}, 9, 2)"
    days_in_month = (
        f"(CASE {month} WHEN '02' THEN '28' WHEN '04' THEN '30' WHEN '06' THEN '30'"
        " WHEN '09' THEN '30' WHEN '11' THEN '30' ELSE '31' END)"
    )
    year = f"left({text}, 4)::integer"
    leap_day = (
        f"({month} = '02' AND {mday} = '29'"
        f" AND {year} % 4 = 0 AND ({year} % 100 <> 0 OR {year} % 400 = 0))"
    )
    valid = (
        f"left({text}, 4) <> '0000' AND {month} BETWEEN '01' AND '12'"
        f" AND ({mday} BETWEEN '01' AND {days_in_month} OR {leap_day})"
    )
    return f'({text} {op} {first_text}::text COLLATE "C" AND {valid})'


def _date_text(day: int) -> str:
    """Days since the epoch as YYYY-MM-DD, clamped to sort before or after every valid date."""
    try:
        return (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d").rjust(10, "0")
    except OverflowError:
        return "0000-00-00" if day < 0 else "9999-99-99"


def _iso_date_time(leaf: Leaf, op: str, bound: int) -> str:
    """A date-time the strict pattern vouches for, parsed by PostgreSQL."""
    text = leaf.text
    # The bound as a UTC timestamp, built in SQL from whole days and microseconds (it may
    # fall just outside the years Python's datetime holds); constant, so folded once.
    days, micros = divmod(bound, _DAY)
    bound_sql = (
        f"(timestamp '1970-01-01' + {leaf.c.param(days, 'integer')} * interval '1 day'"
        f" + {leaf.c.param(micros, 'bigint')} * interval '1 microsecond')"
    )
    # An offset (Z, +hh, -hh:mm) can only follow the time, which starts at character 12;
    # without one the time is UTC (a timestamptz would take the session's zone).
    return (
        f"((CASE WHEN right({text}, 1) = 'Z' OR strpos(substr({text}, 12), '+') > 0"
        f" OR strpos(substr({text}, 12), '-') > 0"
        f" THEN ({text}::timestamptz AT TIME ZONE 'UTC') ELSE {text}::timestamp END)"
        f" {op} {bound_sql})"
    )
