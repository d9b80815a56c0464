"""SEMVER_EQ, SEMVER_GT and SEMVER_LT in SQL: plain releases exactly, pre-release ties left to
the evaluator."""

from decimal import Decimal
from typing import Any

from db.rules_sql.fragments import Leaf
from rules.matchers import Operand
from rules.values import parse_semver

_SEMVER_CORE = r"v?(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"
_SEMVER_IDENTIFIER = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER_VALID = (
    f"^{_SEMVER_CORE}"
    f"(?:-{_SEMVER_IDENTIFIER}(?:\\.{_SEMVER_IDENTIFIER})*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
# A release whose numbers fit a bigint comfortably (nine digits each).
_SEMVER_PLAIN = r"^v?(?:0|[1-9][0-9]{0,8})\.(?:0|[1-9][0-9]{0,8})\.(?:0|[1-9][0-9]{0,8})$"
_MAX_SEMVER_TEXT = 1000  # far below Python's int-from-str limit for the three numbers


def semver_comparison(kind: str):
    def build(leaf: Leaf, operand: Operand) -> str:
        expected = operand.value
        bound = parse_semver(expected) if type(expected) is str else None
        if bound is None:
            return "false"
        text = leaf.text
        bound_is_release = bound[3] == (1,)
        # Plain releases (the usual case) in SQL: three numbers of at most nine digits.
        if max(bound[:3]) < 2**63:
            plain_core = f"string_to_array(ltrim({text}, 'v'), '.')::bigint[]"
            plain_bound: tuple[list[Any], str] = (list(bound[:3]), "bigint[]")
        else:
            plain_core = f"string_to_array(ltrim({text}, 'v'), '.')::numeric[]"
            plain_bound = ([Decimal(part) for part in bound[:3]], "numeric[]")
        if kind == "EQ":
            plain = f"{plain_core} = {leaf.c.param(*plain_bound)}" if bound_is_release else "false"
        elif kind == "GT":
            operator = ">" if bound_is_release else ">="
            plain = f"{plain_core} {operator} {leaf.c.param(*plain_bound)}"
        else:
            plain = f"{plain_core} < {leaf.c.param(*plain_bound)}"
        # Anything else valid: decided by major.minor.patch when they differ; on a tie a
        # release sorts after its pre-releases, and two pre-releases compare identifier by
        # identifier, which only the evaluator does (NULL).
        core = (
            "string_to_array(split_part(split_part(ltrim("
            f"{text}, 'v'), '+', 1), '-', 1), '.')::numeric[]"
        )
        bound_core = leaf.c.param([Decimal(part) for part in bound[:3]], "numeric[]")
        is_release = f"strpos(split_part({text}, '+', 1), '-') = 0"
        if kind == "EQ":
            if bound_is_release:
                tie = is_release
            else:
                tie = f"(CASE WHEN {is_release} THEN false ELSE {leaf.c.unknown()} END)"
            decided = f"({core} = {bound_core} AND {tie})"
        elif kind == "GT":
            if bound_is_release:
                tie = "false"
            else:
                tie = f"(CASE WHEN {is_release} THEN true ELSE {leaf.c.unknown()} END)"
            decided = f"({core} > {bound_core} OR ({core} = {bound_core} AND {tie}))"
        else:
            if bound_is_release:
                tie = f"NOT {is_release}"
            else:
                tie = f"(CASE WHEN {is_release} THEN false ELSE {leaf.c.unknown()} END)"
            decided = f"({core} < {bound_core} OR ({core} = {bound_core} AND {tie}))"
        return leaf.by_type(
            {
                "string": (
                    f"(CASE WHEN {text} ~ '{_SEMVER_PLAIN}' THEN {plain}"
                    f" WHEN length({text}) <= {_MAX_SEMVER_TEXT} AND {text} ~ '{_SEMVER_VALID}'"
                    f" THEN {decided}"
                    f" WHEN {text} ~ '^{_SEMVER_CORE}' THEN {leaf.c.unknown()}"
                    " ELSE false END)"
                )
            }
        )

    return build
