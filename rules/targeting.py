"""The targeting pipeline of a flag in one environment: its rules in order, first match wins.

Pure: the pipeline takes each rule with its evaluator already compiled (a SEGMENT rule's is
its segment's, a CUSTOM rule's comes from `compile_custom_rule`), so how a rule is compiled
(salts, references to other segments) can change without touching the walk.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from rules.evaluate import Evaluation, compile_segment
from rules.models import References, StoredRule

# Decides one rule for a raw JSON context, explaining why (reason and leaf conditions).
RuleEvaluator = Callable[[object], Evaluation]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Step(Generic[R]):
    """One rule the walk evaluated, and its evaluation."""

    rule: R
    evaluation: Evaluation


@dataclass(frozen=True, slots=True)
class Walk(Generic[R]):
    """The rules evaluated, in order, up to and including the first that matched."""

    steps: list[Step[R]]

    @property
    def matched(self) -> R | None:
        """The rule that matched; None when none did (the flag's fallthrough)."""
        if self.steps and self.steps[-1].evaluation.matched:
            return self.steps[-1].rule
        return None


def first_match(rules: Iterable[tuple[R, RuleEvaluator]], context: object) -> Walk[R]:
    """Evaluate `rules` (each with its evaluator, in order) until one matches the context."""
    steps: list[Step[R]] = []
    for rule, evaluate in rules:
        evaluation = evaluate(context)
        steps.append(Step(rule, evaluation))
        if evaluation.matched:
            break
    return Walk(steps)


def compile_custom_rule(
    logical_op: str | None,
    rules: list[StoredRule],
    flag_key: str,
    references: References | None = None,
) -> RuleEvaluator:
    """A CUSTOM rule's inline conditions, decided like a segment's rules (no force, no
    targets): RULES_MATCHED or RULES_NOT_MATCHED with every leaf condition's outcome. The
    flag's key salts its PERCENTAGE buckets (DESIGN §12); `references` holds the segments
    the rules reach through references."""
    return compile_segment(
        logical_op=logical_op or "AND",
        rules=rules,
        force=False,
        included=[],
        excluded=[],
        salt=flag_key,
        references=references,
    ).evaluate
