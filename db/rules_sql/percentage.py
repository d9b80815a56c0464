"""PERCENTAGE in SQL: PostgreSQL's built-in sha256 computes the evaluator's bucket exactly."""

from db.rules_sql.fragments import INT_HIGH, INT_LOW, Leaf
from rules.matchers import Operand
from rules.values import percent_of, percent_threshold, storable_text


def bucket(prefix: str, text: str) -> str:
    """The bucket of SQL text `text` after `prefix` (SQL for salt + "/"): the first 8 bytes of
    the sha256 of its UTF-8 bytes as an unsigned integer, in numeric (`percent_bucket`).
    bit(64) reads back as a signed bigint; flipping the top bit first gives u - 2^63."""
    digest = f"sha256(convert_to({prefix} || {text}, 'UTF8'))"
    bits = f"('x' || encode(substr({digest}, 1, 8), 'hex'))::bit(64)"
    return f"(({bits} # x'8000000000000000')::bigint::numeric + {2**63})"


def percentage(leaf: Leaf, operand: Operand) -> str:
    percent = percent_of(operand.value)
    if percent is None:
        return "false"
    threshold = percent_threshold(percent)
    if threshold == 0:
        return "false"  # 0% matches no one
    prefix = f"{operand.salt}/"
    if not storable_text(prefix):  # cannot be bound as text: the evaluator decides
        unknown = leaf.c.unknown()
        return leaf.by_type({"string": unknown, "number": unknown})
    below = (
        f"{bucket(leaf.c.param(prefix, 'text'), leaf.text)} < {leaf.c.param(threshold, 'numeric')}"
    )
    # Integers in decimal: those the evaluator reads as ints (see the package docstring).
    number = f"{leaf.value}::numeric"
    integer = f"(scale({number}) = 0 AND {number} BETWEEN {INT_LOW} AND {INT_HIGH})"
    return leaf.by_type({"string": below, "number": f"({integer} AND {below})"})
