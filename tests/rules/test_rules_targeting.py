"""The targeting pipeline alone: first match wins over already compiled rule evaluators."""

from rules.evaluate import Evaluation
from rules.targeting import compile_custom_rule, first_match

PREMIUM = [{"attribute": "plan", "operator": "EQ", "value": "premium"}]


def always(matched: bool, calls: list[str], name: str):
    def evaluate(context: object) -> Evaluation:
        calls.append(name)
        return Evaluation(matched, "FORCED" if matched else "RULES_NOT_MATCHED", [])

    return evaluate


def test_the_walk_stops_at_the_first_match_and_never_evaluates_the_rest() -> None:
    calls: list[str] = []
    walk = first_match(
        [(name, always(name != "a", calls, name)) for name in ("a", "b", "c")], {"x": 1}
    )
    assert walk.matched == "b"
    assert [(step.rule, step.evaluation.matched) for step in walk.steps] == [
        ("a", False),
        ("b", True),
    ]
    assert calls == ["a", "b"]


def test_no_match_is_the_fallthrough_with_every_rule_evaluated() -> None:
    calls: list[str] = []
    walk = first_match([(n, always(False, calls, n)) for n in ("a", "b")], {})
    assert walk.matched is None
    assert [step.rule for step in walk.steps] == ["a", "b"] == calls


def test_no_rules_is_the_fallthrough_with_nothing_evaluated() -> None:
    walk = first_match([], {})
    assert (walk.matched, walk.steps) == (None, [])


def test_a_custom_rule_decides_by_its_rules_and_reports_every_condition() -> None:
    evaluate = compile_custom_rule("AND", PREMIUM, "flag")
    yes, no = evaluate({"plan": "premium"}), evaluate({"plan": "free"})
    assert (yes.matched, yes.reason) == (True, "RULES_MATCHED")
    assert (no.matched, no.reason) == (False, "RULES_NOT_MATCHED")
    assert [(c.attribute, c.matched, c.actual) for c in no.conditions] == [("plan", False, "free")]


def test_a_custom_rule_without_an_operator_combines_with_and() -> None:
    rules = [*PREMIUM, {"attribute": "country", "operator": "EXISTS", "value": None}]
    evaluate = compile_custom_rule(None, rules, "flag")
    assert evaluate({"plan": "premium"}).matched is False
    assert evaluate({"plan": "premium", "country": "DE"}).matched is True
