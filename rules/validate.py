"""Checks of segment input that report every problem found, each with its path in the input."""

import re
from collections.abc import Iterator, Mapping
from itertools import count
from typing import Any

from rules.models import (
    LOGICAL_OPS,
    Limits,
    StoredCondition,
    StoredGroup,
    StoredRule,
    StoredSegmentMatch,
)
from rules.operators import REGISTRY
from rules.problems import Path, Problem, ProblemCode
from rules.values import storable_text

__all__ = ["Path", "Problem", "ProblemCode"]

MAX_KEY_LENGTH = 100
MAX_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 500
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_TARGET_LENGTH = 256
MAX_ATTRIBUTE_LENGTH = 200
MAX_SALT_LENGTH = 100

_KEY = re.compile(r"[a-zA-Z0-9_-]+")
_NOT_KEY_CHARS = re.compile(r"[^a-z0-9_-]+")
_TAG = re.compile(r"[a-zA-Z0-9_.:-]+")


def validate_rules(
    rules_input: list[dict[str, Any]] | None,
    path: Path,
    limits: Limits,
    segment_ids: Mapping[str, int] | None = None,
) -> tuple[list[StoredRule], list[Problem]]:
    """Turn a `[SegmentRuleInput]` into the stored rule shape, with every problem found.

    `path` is where the list sits in the GraphQL input, e.g. ("input", "rules"). A
    `{"segment": {"segmentKey", "negate"}}` rule is stored by the id `segment_ids` gives its
    key (the caller resolves `referenced_keys` to live segments of the project); a key it
    lacks is NOT_FOUND. A reference counts as one condition. The stored rules are only
    meaningful when no problem is returned.
    """
    walk = _RuleWalk(limits, segment_ids or {})
    stored = walk.rule_list(rules_input, path, depth=0)
    if walk.conditions > limits.max_conditions:
        walk.problems.append(
            Problem(
                path,
                ProblemCode.LIMIT_EXCEEDED,
                f"{walk.conditions} conditions (counting nested ones); "
                f"at most {limits.max_conditions} are allowed",
            )
        )
    return stored, walk.problems


def referenced_keys(rules_input: object, path: Path = ()) -> dict[str, Path]:
    """The segment keys a `[SegmentRuleInput]` at `path` names, at any depth (malformed parts
    skipped), each with the path of its first `segmentKey` in rule order."""
    keys: dict[str, Path] = {}
    stack = [(path, iter(enumerate(rules_input if isinstance(rules_input, list) else [])))]
    while stack:
        prefix, items = stack[-1]
        for index, item in items:
            if not isinstance(item, dict):
                continue
            segment, group = item.get("segment"), item.get("group")
            if isinstance(segment, dict) and isinstance(segment.get("segmentKey"), str):
                keys.setdefault(
                    segment["segmentKey"], (*prefix, str(index), "segment", "segmentKey")
                )
            if isinstance(group, dict) and isinstance(group.get("rules"), list):
                stack.append(
                    ((*prefix, str(index), "group", "rules"), iter(enumerate(group["rules"])))
                )
                break
        else:
            stack.pop()
    return keys


def validate_key(key: str, path: Path) -> list[Problem]:
    if isinstance(key, str) and len(key) <= MAX_KEY_LENGTH and _KEY.fullmatch(key):
        return []
    return [
        Problem(
            path,
            ProblemCode.INVALID_KEY,
            f"key must be 1-{MAX_KEY_LENGTH} characters of letters, digits, '_' and '-'",
        )
    ]


def validate_served_key(key: str, path: Path) -> list[Problem]:
    """A targeting rule's variationKey or rolloutKey: 1-100 characters."""
    return _length_problems(key, path, "a variation or rollout key", 1, MAX_KEY_LENGTH)


def derive_key(name: str) -> str:
    """A key made from a name: lowercase, other characters collapsed to "_", at most 100 long."""
    key = _NOT_KEY_CHARS.sub("_", name.lower()).strip("_")
    return key[:MAX_KEY_LENGTH].rstrip("_") or "segment"


def key_candidates(base: str) -> Iterator[str]:
    """base, base_2, base_3, … — each cut to fit 100 characters, for finding a free key."""
    yield base[:MAX_KEY_LENGTH]
    for number in count(2):
        suffix = f"_{number}"
        yield base[: MAX_KEY_LENGTH - len(suffix)] + suffix


def validate_salt(salt: str, path: Path) -> list[Problem]:
    """A segment's or preview's salt, which seeds PERCENTAGE buckets: 1-100 characters."""
    return _length_problems(salt, path, "salt", 1, MAX_SALT_LENGTH)


def normalize_name(name: str) -> str:
    return name.strip()


def validate_name(name: str, path: Path) -> list[Problem]:
    """Problems with a name, judged after trimming (store `normalize_name(name)`)."""
    if not isinstance(name, str):
        return [Problem(path, ProblemCode.INVALID_INPUT, "name must be a string")]
    return _length_problems(normalize_name(name), path, "name", 1, MAX_NAME_LENGTH)


def validate_description(description: str | None, path: Path) -> list[Problem]:
    if description is None:
        return []
    return _length_problems(description, path, "description", 0, MAX_DESCRIPTION_LENGTH)


def validate_tags(tags: list[str] | None, path: Path) -> list[Problem]:
    tags = tags or []
    problems = []
    if len(tags) > MAX_TAGS:
        problems.append(
            Problem(
                path,
                ProblemCode.LIMIT_EXCEEDED,
                f"{len(tags)} tags; at most {MAX_TAGS} are allowed",
            )
        )
    for index, tag in enumerate(tags):
        if not (isinstance(tag, str) and len(tag) <= MAX_TAG_LENGTH and _TAG.fullmatch(tag)):
            problems.append(
                Problem(
                    (*path, str(index)),
                    ProblemCode.INVALID_INPUT,
                    f"a tag is 1-{MAX_TAG_LENGTH} characters of letters, digits and '_.:-'",
                )
            )
    return problems


def validate_targets(
    included: list[str] | None,
    excluded: list[str] | None,
    path_included: Path,
    path_excluded: Path,
    limits: Limits,
) -> list[Problem]:
    included, excluded = included or [], excluded or []
    problems = [
        problem
        for targets, path in ((included, path_included), (excluded, path_excluded))
        for index, target in enumerate(targets)
        for problem in _length_problems(
            target, (*path, str(index)), "a target", 1, MAX_TARGET_LENGTH
        )
    ]
    total = len(included) + len(excluded)
    if total > limits.max_targets:
        # Point at the list that contributes most, which is the one to trim.
        path = path_included if len(included) >= len(excluded) else path_excluded
        problems.append(
            Problem(
                path,
                ProblemCode.LIMIT_EXCEEDED,
                f"{total} targets in included and excluded; "
                f"at most {limits.max_targets} are allowed",
            )
        )
    return problems


# Keys one updateSegmentTargets call may name, over its four lists together (DESIGN §13).
MAX_TARGET_CHANGES = 10_000


def target_key_problem(key: object) -> str | None:
    """Why `key` cannot be a target (1-256 characters, no NUL), or None: the one check of
    the API's target lists and of imported files."""
    if storable_text(key) and 1 <= len(key) <= MAX_TARGET_LENGTH:  # type: ignore[arg-type]
        return None
    return f"a target must be a string of 1-{MAX_TARGET_LENGTH} characters (no NUL characters)"


def validate_target_changes(lists: dict[str, list[str]], path: Path) -> list[Problem]:
    """The lists of an updateSegmentTargets call (`addIncluded`, `removeIncluded`,
    `addExcluded`, `removeExcluded`; absent ones empty): every key valid, 1-10,000 keys in
    all, and no key both added to and removed from one list."""
    problems = [
        Problem((*path, name, str(index)), ProblemCode.INVALID_INPUT, message)
        for name, keys in lists.items()
        for index, key in enumerate(keys)
        if (message := target_key_problem(key)) is not None
    ]
    total = sum(len(keys) for keys in lists.values())
    if total == 0:
        problems.append(
            Problem(path, ProblemCode.INVALID_INPUT, "Name at least one key to add or remove.")
        )
    elif total > MAX_TARGET_CHANGES:
        problems.append(
            Problem(
                path,
                ProblemCode.LIMIT_EXCEEDED,
                f"{total} keys in one call; at most {MAX_TARGET_CHANGES} are allowed",
            )
        )
    for kind in ("Included", "Excluded"):
        added = set(lists.get(f"add{kind}", []))
        for index, key in enumerate(lists.get(f"remove{kind}", [])):
            if key in added:
                problems.append(
                    Problem(
                        (*path, f"remove{kind}", str(index)),
                        ProblemCode.INVALID_INPUT,
                        "A key may not be both added and removed in one call.",
                    )
                )
    return problems


def _length_problems(text: object, path: Path, what: str, low: int, high: int) -> list[Problem]:
    if storable_text(text) and low <= len(text) <= high:  # type: ignore[arg-type]
        return []
    return [
        Problem(
            path,
            ProblemCode.INVALID_INPUT,
            f"{what} must be a string of {low}-{high} characters (no NUL characters)",
        )
    ]


class _RuleWalk:
    """One pass over a rule input tree, collecting problems and counting conditions."""

    def __init__(self, limits: Limits, segment_ids: Mapping[str, int]):
        self.limits = limits
        self.segment_ids = segment_ids
        self.problems: list[Problem] = []
        self.conditions = 0

    def rule_list(self, items: object, path: Path, depth: int) -> list[StoredRule]:
        if items is None:  # an omitted or null list of rules is an empty one
            return []
        if not isinstance(items, list):
            self._invalid(path, "rules must be a list")
            return []
        return [
            rule
            for index, item in enumerate(items)
            if (rule := self.rule(item, (*path, str(index)), depth)) is not None
        ]

    def rule(self, item: object, path: Path, depth: int) -> StoredRule | None:
        kinds = {
            kind: item[kind]
            for kind in ("condition", "group", "segment")
            if isinstance(item, dict) and item.get(kind) is not None
        }
        if len(kinds) != 1:
            self._invalid(path, "give exactly one of condition, group or segment")
            return None
        if "condition" in kinds:
            return self.condition(kinds["condition"], (*path, "condition"))
        if "segment" in kinds:
            return self.segment(kinds["segment"], (*path, "segment"))
        return self.group(kinds["group"], (*path, "group"), depth + 1)

    def segment(self, match: object, path: Path) -> StoredSegmentMatch | None:
        self.conditions += 1
        if not isinstance(match, dict):
            self._invalid(path, "a segment match must be an object")
            return None
        key, negate = match.get("segmentKey"), match.get("negate", False)
        if negate is None:
            negate = False
        if not isinstance(negate, bool):
            self._invalid((*path, "negate"), "negate must be a boolean")
        segment_id = self.segment_ids.get(key) if isinstance(key, str) else None
        if segment_id is None:
            self.problems.append(
                Problem(
                    (*path, "segmentKey"),
                    ProblemCode.NOT_FOUND,
                    f"No live segment with key {key!r} in this project.",
                )
            )
            return None
        return StoredSegmentMatch(segmentId=segment_id, negate=negate is True)

    def condition(self, condition: object, path: Path) -> StoredCondition | None:
        self.conditions += 1
        if not isinstance(condition, dict):
            self._invalid(path, "a condition must be an object")
            return None
        # Any: these are only known to be well-typed once the checks below pass.
        attribute: Any = condition.get("attribute")
        operator: Any = condition.get("operator")
        value: Any = condition.get("value")
        if not (
            storable_text(attribute)
            and 1 <= len(attribute) <= MAX_ATTRIBUTE_LENGTH
            and "" not in attribute.split(".")
        ):
            self._invalid(
                (*path, "attribute"),
                f"attribute must be a dotted path of 1-{MAX_ATTRIBUTE_LENGTH} characters "
                "with no empty segment",
            )
        case_insensitive: Any = condition.get("caseInsensitive")
        entry = REGISTRY.get(operator) if isinstance(operator, str) else None
        if entry is None:
            self._invalid((*path, "operator"), f"unknown operator {operator!r}")
        elif (message := entry.check(value)) is not None:
            self._invalid((*path, "value"), f"{operator} {message}")
        if case_insensitive not in (None, False, True):
            self._invalid((*path, "caseInsensitive"), "caseInsensitive must be a boolean")
        elif case_insensitive is True and entry is not None and not entry.case_insensitive:
            allowed = " ".join(name for name, op in REGISTRY.items() if op.case_insensitive)
            self._invalid(
                (*path, "caseInsensitive"),
                f"caseInsensitive applies only to {allowed}, not {operator}",
            )
        stored = StoredCondition(attribute=attribute, operator=operator, value=value)
        if case_insensitive is True:
            stored["caseInsensitive"] = True
        return stored

    def group(self, group: object, path: Path, depth: int) -> StoredGroup | None:
        if not isinstance(group, dict):
            self._invalid(path, "a group must be an object")
            return None
        if depth == self.limits.max_depth + 1:  # deeper groups inside are not reported again
            self.problems.append(
                Problem(
                    path,
                    ProblemCode.LIMIT_EXCEEDED,
                    f"groups nest at most {self.limits.max_depth} deep",
                )
            )
        logical_op = group.get("logicalOp", "AND")
        if logical_op not in LOGICAL_OPS:
            self._invalid((*path, "logicalOp"), f"unknown logical operator {logical_op!r}")
        rules = self.rule_list(group.get("rules"), (*path, "rules"), depth)
        return {"logicalOp": logical_op, "rules": rules}

    def _invalid(self, path: Path, message: str) -> None:
        self.problems.append(Problem(path, ProblemCode.INVALID_RULE, message))
