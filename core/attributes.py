"""Attribute use cases: the catalogue reads, declaring attributes, and the one check of rules
against the declared attributes (DESIGN §15) that every segment write and preview runs.

`attribute_findings` is the pure part: what is wrong with a stored rule tree given the
declared attributes, as data (path, code, message), whatever `strictAttributes` says.
`strict_problems` refuses with those findings when the project's `strictAttributes` is on.
"""

import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from core.access import project_id_for, project_problems, require_editor
from db import attributes as db_attributes
from db.api_keys import Principal
from db.pool import Database, Row
from rules import operands
from rules.models import StoredRule, is_group, is_segment_match
from rules.problems import Path, Problem, ProblemCode, Refused
from rules.validate import MAX_ATTRIBUTE_LENGTH, MAX_DESCRIPTION_LENGTH
from rules.values import storable_number, storable_text

ATTRIBUTE_TYPES = ("STRING", "NUMBER", "BOOLEAN", "DATETIME", "SEMVER", "STRING_LIST")
MAX_ALLOWED_VALUES = 100
MAX_ALLOWED_VALUE_LENGTH = 256
MAX_TOP_VALUES = 50
# Conditions may always name the profile's key; it is no stored attribute to declare.
TARGETING_KEY = "targetingKey"
_CLOSEST = 3

# Which declared types each operator fits (README "Declared attributes"). Text operators fit
# every type whose values are strings; arrays are tested element-wise by EQ/IN/text operators
# and as a whole by CONTAINS (rules/operators.py).
_TEXT = frozenset({"STRING", "DATETIME", "SEMVER", "STRING_LIST"})
_ANY = frozenset(ATTRIBUTE_TYPES)
FITS: dict[str, frozenset[str]] = {
    "EQ": _ANY,
    "NEQ": _ANY,
    "IN": _ANY,
    "NIN": _ANY,
    "GT": frozenset({"NUMBER"}),
    "GTE": frozenset({"NUMBER"}),
    "LT": frozenset({"NUMBER"}),
    "LTE": frozenset({"NUMBER"}),
    "CONTAINS": frozenset({"STRING", "STRING_LIST"}),
    "NOT_CONTAINS": frozenset({"STRING", "STRING_LIST"}),
    "STARTS_WITH": _TEXT,
    "ENDS_WITH": _TEXT,
    "REGEX": _TEXT,
    "EXISTS": _ANY,
    "NOT_EXISTS": _ANY,
    "BEFORE": frozenset({"DATETIME"}),
    "AFTER": frozenset({"DATETIME"}),
    "SEMVER_EQ": frozenset({"SEMVER"}),
    "SEMVER_GT": frozenset({"SEMVER"}),
    "SEMVER_LT": frozenset({"SEMVER"}),
    "PERCENTAGE": frozenset({"STRING", "NUMBER"}),
}
# Operators whose value names attribute values (one, or a list), so it must be of the type
# and among allowedValues; CONTAINS names one only for a list attribute.
_NAMES_VALUES = frozenset({"EQ", "NEQ", "IN", "NIN"})
_NAMES_ELEMENTS = frozenset({"CONTAINS", "NOT_CONTAINS"})


@dataclass(frozen=True)
class Definition:
    type: str
    description: str | None
    allowed_values: list[Any] | None


@dataclass(frozen=True)
class Finding:
    """One condition that does not fit the declared attributes: `field` is its path (the
    input's, under the `at` given), `code` UNKNOWN_ATTRIBUTE or INVALID_RULE."""

    field: Path
    code: ProblemCode
    message: str


def definitions_from_rows(rows: Mapping[str, Row]) -> dict[str, Definition]:
    return {
        path: Definition(row["type"], row["description"], row["allowed_values"])
        for path, row in rows.items()
    }


def _conditions(rules: list[StoredRule], at: Path) -> Iterator[tuple[dict[str, Any], Path]]:
    """Each condition of a stored rule tree with its input path, depth first in rule order."""
    stack = [(at, iter(enumerate(rules)))]
    while stack:
        prefix, items = stack[-1]
        for index, rule in items:
            if is_segment_match(rule):
                continue
            if is_group(rule):
                stack.append(
                    ((*prefix, str(index), "group", "rules"), iter(enumerate(rule["rules"])))
                )
                break
            yield rule, (*prefix, str(index), "condition")  # type: ignore[misc]
        else:
            stack.pop()


def closest_paths(path: str, declared: list[str]) -> list[str]:
    return difflib.get_close_matches(path, declared, n=_CLOSEST, cutoff=0.5)


def _unknown_message(path: str, declared: list[str]) -> str:
    message = f"{path!r} is not a declared attribute of this project"
    close = closest_paths(path, declared)
    if close:
        return f"{message}; did you mean {' or '.join(repr(p) for p in close)}?"
    if not declared:
        return f"{message} (it declares none yet: defineAttribute)"
    return f"{message} (declared: {', '.join(repr(p) for p in sorted(declared)[:10])})"


def value_fits(kind: str, value: Any) -> bool:
    """Whether one value is of a declared type (for STRING_LIST: one element)."""
    if kind in ("STRING", "STRING_LIST"):
        return storable_text(value)
    if kind == "NUMBER":
        return storable_number(value) and not isinstance(value, bool)
    if kind == "BOOLEAN":
        return isinstance(value, bool)
    if kind == "DATETIME":
        return operands.instant(value) is None
    return operands.semver(value) is None  # SEMVER


def _same(a: Any, b: Any, case_insensitive: bool) -> bool:
    if case_insensitive and isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _condition_problem(condition: dict[str, Any], definition: Definition) -> tuple[str, str] | None:
    """(the condition's field at fault, why) when it does not fit its declared attribute."""
    operator, value, kind = condition["operator"], condition.get("value"), definition.type
    if kind not in FITS.get(operator, _ANY):
        fitting = " ".join(sorted(FITS.get(operator, _ANY)))
        return "operator", (
            f"{operator} does not fit {condition['attribute']!r}, declared {kind} "
            f"({operator} needs {fitting})"
        )
    named = operator in _NAMES_VALUES or (operator in _NAMES_ELEMENTS and kind == "STRING_LIST")
    if not named:
        return None
    values = value if isinstance(value, list) else [value]
    case_insensitive = condition.get("caseInsensitive") is True
    for item in values:
        if not value_fits(kind, item):
            return "value", f"{item!r} is not a {kind} value ({condition['attribute']!r})"
        allowed = definition.allowed_values
        if allowed is not None and not any(_same(item, a, case_insensitive) for a in allowed):
            shown = ", ".join(repr(a) for a in allowed[:10])
            return "value", (
                f"{item!r} is not an allowed value of {condition['attribute']!r} ({shown}"
                f"{', …' if len(allowed) > 10 else ''})"
            )
    return None


def attribute_findings(
    rules: list[StoredRule], definitions: Mapping[str, Definition], at: Path = ("input", "rules")
) -> list[Finding]:
    """Every condition of `rules` (stored, validated) naming an undeclared attribute
    (UNKNOWN_ATTRIBUTE at its `attribute`, the message naming the closest declared paths) or
    using an operator or value that does not fit the declared type or allowed values
    (INVALID_RULE at its `operator` or `value`). Pure: strict or not, the same findings."""
    declared = sorted(definitions)
    findings = []
    for condition, path in _conditions(rules, at):
        attribute = condition["attribute"]
        if attribute == TARGETING_KEY:
            continue
        definition = definitions.get(attribute)
        if definition is None:
            findings.append(
                Finding(
                    (*path, "attribute"),
                    ProblemCode.UNKNOWN_ATTRIBUTE,
                    _unknown_message(attribute, declared),
                )
            )
            continue
        problem = _condition_problem(condition, definition)
        if problem is not None:
            findings.append(Finding((*path, problem[0]), ProblemCode.INVALID_RULE, problem[1]))
    return findings


def _has_conditions(rules: list[StoredRule]) -> bool:
    return next(_conditions(rules, ()), None) is not None


async def strict_problems(
    conn: asyncpg.Connection,
    project_id: int,
    rules: list[StoredRule],
    at: Path = ("input", "rules"),
) -> list[Problem]:
    """The check every segment write, preview and change request runs on validated rules:
    with the project's strictAttributes on, `attribute_findings` as problems; off, none.
    One statement, and none for rules without conditions."""
    if not _has_conditions(rules):
        return []
    rows = await db_attributes.strict_definitions(conn, project_id)
    if rows is None:
        return []
    findings = attribute_findings(rules, definitions_from_rows(rows), at)
    return [Problem(f.field, f.code, f.message) for f in findings]


async def findings_for(
    conn: asyncpg.Connection, project_id: int, rules: list[StoredRule], at: Path = ("rules",)
) -> list[Finding]:
    """`attribute_findings` against the project's declared attributes, strict or not (the
    warnings' source when strictAttributes is off). None when the project declares none:
    then every attribute would be unknown, which says nothing."""
    rows = await db_attributes.definitions(conn, project_id)
    if not rows:
        return []
    return attribute_findings(rules, definitions_from_rows(rows), at)


# Reads --------------------------------------------------------------------------------


async def find_attribute(
    db: Database, principal: Principal, project_key: str, path: str
) -> Row | None:
    project_id = project_id_for(principal, project_key)
    if project_id is None:
        return None
    return await db.run(db_attributes.attribute, project_id, path)


# Definitions --------------------------------------------------------------------------


def _path_problems(path: object) -> list[Problem]:
    at = ("input", "path")
    if not (
        storable_text(path)
        and 1 <= len(path) <= MAX_ATTRIBUTE_LENGTH  # type: ignore[arg-type]
        and "" not in path.split(".")  # type: ignore[attr-defined]
    ):
        return [
            Problem(
                at,
                ProblemCode.INVALID_INPUT,
                f"path must be a dotted path of 1-{MAX_ATTRIBUTE_LENGTH} characters with no "
                "empty segment",
            )
        ]
    if path == TARGETING_KEY:
        return [
            Problem(
                at,
                ProblemCode.INVALID_INPUT,
                "targetingKey is every profile's key; it needs no declaration",
            )
        ]
    return []


def _allowed_problems(kind: str, allowed: object) -> tuple[list[Any] | None, list[Problem]]:
    at = ("input", "allowedValues")
    if allowed is None:
        return None, []
    if not isinstance(allowed, list) or not 1 <= len(allowed) <= MAX_ALLOWED_VALUES:
        return None, [
            Problem(
                at,
                ProblemCode.INVALID_INPUT,
                f"allowedValues must hold 1-{MAX_ALLOWED_VALUES} values (null: any value)",
            )
        ]
    problems = []
    kept: list[Any] = []
    for index, value in enumerate(allowed):
        too_long = isinstance(value, str) and len(value) > MAX_ALLOWED_VALUE_LENGTH
        if isinstance(value, float) and not math.isfinite(value):
            too_long = True
        if too_long or not value_fits(kind, value):
            element = " (one element of the list)" if kind == "STRING_LIST" else ""
            problems.append(
                Problem(
                    (*at, str(index)),
                    ProblemCode.INVALID_INPUT,
                    f"{value!r} is not a {kind} value{element}"
                    + (f" of at most {MAX_ALLOWED_VALUE_LENGTH} characters" if too_long else ""),
                )
            )
        elif not any(_same(value, seen, False) for seen in kept):
            kept.append(value)
    return kept, problems


async def define_attribute(
    db: Database,
    principal: Principal,
    project_key: str,
    path: str,
    kind: str,
    description: str | None,
    allowed_values: list[Any] | None,
) -> Row | Refused:
    """Declare (or redeclare, replacing) a path's type, description and allowed values;
    editors and admins. Returns the attribute as the catalogue shows it."""
    require_editor(principal)
    project_id = project_id_for(principal, project_key)
    problems = project_problems(project_id) + _path_problems(path)
    if kind not in ATTRIBUTE_TYPES:
        problems.append(
            Problem(("input", "type"), ProblemCode.INVALID_INPUT, "unknown attribute type")
        )
        kept = None
    else:
        kept, allowed_problems = _allowed_problems(kind, allowed_values)
        problems += allowed_problems
    if description is not None and not (
        storable_text(description) and len(description) <= MAX_DESCRIPTION_LENGTH
    ):
        problems.append(
            Problem(
                ("input", "description"),
                ProblemCode.INVALID_INPUT,
                f"description must be a string of 0-{MAX_DESCRIPTION_LENGTH} characters "
                "(no NUL characters)",
            )
        )
    if problems or project_id is None:
        return Refused(problems)
    async with db.transaction() as conn:
        await db_attributes.define(
            conn,
            project_id,
            path,
            {"type": kind, "description": description, "allowed_values": kept},
            actor=principal.name,
        )
        row = await db_attributes.attribute(conn, project_id, path)
    assert row is not None
    return row


async def remove_definition(
    db: Database, principal: Principal, project_key: str, path: str
) -> Row | None | Refused:
    """Forget a path's declaration; editors and admins. Returns the attribute as the catalogue
    shows it now (None when profiles do not hold it either); NOT_FOUND when undeclared."""
    require_editor(principal)
    project_id = project_id_for(principal, project_key)
    problems = project_problems(project_id)
    if problems or project_id is None:
        return Refused(problems)
    async with db.transaction() as conn:
        if not await db_attributes.remove_definition(conn, project_id, path, actor=principal.name):
            return Refused.one(
                ProblemCode.NOT_FOUND, "No declared attribute with this path.", ("input", "path")
            )
        return await db_attributes.attribute(conn, project_id, path)
