"""Compiles a validated segment definition into one SQL predicate over `profiles.context`.

The predicate is three-valued on purpose: TRUE when the profile certainly matches, FALSE when
it certainly does not, NULL when SQL cannot decide exactly what `rules.evaluate` would (RE2
regexes, unusual numeric strings, pre-release semver ties, ...). SQL's AND/OR/NOT are Kleene
logic, so a group is TRUE or FALSE whenever its decided children settle it, and NULL only when
an undecided child could change the outcome. In the terms of a (sure, maybe) pair of
predicates: sure = `expr IS TRUE`, maybe = `expr IS NOT FALSE`. Callers count the TRUE rows in
SQL and let the Python evaluator decide the NULL ones from their stored context.

Every leaf below mirrors its builder in rules/evaluate.py and the coercions of rules/values.py
line by line; anything a leaf cannot reproduce yields NULL, never a wrong TRUE or FALSE.
Values are always bound as parameters. Casts that could raise are guarded by the pattern the
Python coercion uses, so no stored value can make a query fail.

How numbers line up: the stored context comes from orjson, so a JSON number with a fraction
in its text (numeric scale > 0) reads back as a Python float whose shortest repr is that text,
and one without reads back as an int (or, beyond 64 bits, as a float). Comparing the stored
decimal with `_decimal(expected)` (the exact integer for integral values, the shortest repr
otherwise) orders every int and every such float exactly as Python compares them; only
integers beyond 64 bits, which Python sees as floats, need the evaluator when the expected
value is that large too.
"""

from db.rules_sql.compiler import Predicate, compile_definition
from db.rules_sql.regex import postgres_regex

__all__ = ["Predicate", "compile_definition", "postgres_regex"]
