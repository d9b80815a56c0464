"""Segments in segments, purely: cycle and chain checks over a graph, and the evaluator's
reference node (DESIGN §12)."""

from rules.evaluate import compile_segment
from rules.models import Limits, referenced_ids
from rules.references import chain_through, find_cycle, longest_chain
from rules.validate import referenced_keys, validate_rules


def test_a_cycle_is_found_as_a_path_back_to_the_start():
    graph = {1: [2], 2: [3, 4], 3: [], 4: [1]}
    assert find_cycle(graph, 1) == [1, 2, 4, 1]
    assert find_cycle({1: [1]}, 1) == [1, 1]
    assert find_cycle({1: [2], 2: [3], 3: []}, 1) is None
    # A cycle elsewhere is not the start's.
    assert find_cycle({1: [2], 2: [3], 3: [2]}, 1) is None


def test_a_chain_counts_its_segments_including_the_first():
    assert longest_chain({}, 1) == 1
    assert longest_chain({1: [2, 3], 2: [4], 3: [], 4: [5]}, 1) == 4
    # Through a middle segment: the longest chain reaching it plus the longest leaving it.
    graph = {1: [2], 2: [3], 3: [4], 4: [5], 9: [3]}
    assert chain_through(graph, 3) == 5
    assert chain_through(graph, 9) == 4


def test_reference_keys_come_with_the_path_of_their_first_mention():
    rules = [
        {"condition": {"attribute": "a", "operator": "EXISTS"}},
        {"group": {"rules": [{"segment": {"segmentKey": "b"}}, {"segment": {"segmentKey": "c"}}]}},
        {"segment": {"segmentKey": "b", "negate": True}},
    ]
    assert referenced_keys(rules, ("input", "rules")) == {
        "b": ("input", "rules", "1", "group", "rules", "0", "segment", "segmentKey"),
        "c": ("input", "rules", "1", "group", "rules", "1", "segment", "segmentKey"),
    }
    stored, problems = validate_rules(rules, ("input", "rules"), Limits(), {"b": 7})
    assert [(p.field, p.code) for p in problems] == [
        (("input", "rules", "1", "group", "rules", "1", "segment", "segmentKey"), "NOT_FOUND")
    ]
    assert stored[2] == {"segmentId": 7, "negate": True}
    assert list(referenced_ids(stored)) == [7, 7]


def _definition(rules, **fields):
    return {"key": "k", "logical_op": "AND", "rules": rules, "force": False, "included": [],
            "excluded": [], **fields}  # fmt: skip


PRO = {"attribute": "plan", "operator": "EQ", "value": "pro"}
ADULT = {"attribute": "age", "operator": "GTE", "value": 18}


def test_a_reference_matches_when_the_referenced_segment_does_and_negate_inverts_it():
    references = {2: _definition([PRO], key="pro", excluded=["banned"])}
    inside = compile_segment(salt="s", logical_op="AND", rules=[{"segmentId": 2, "negate": False}],
                             force=False, included=[], excluded=[], references=references)  # fmt: skip
    outside = compile_segment(salt="s", logical_op="AND", rules=[{"segmentId": 2, "negate": True}],
                              force=False, included=[], excluded=[], references=references)  # fmt: skip
    for context, member in [
        ({"plan": "pro"}, True),
        ({"plan": "free"}, False),
        # The referenced segment's own targets apply.
        ({"plan": "pro", "targetingKey": "banned"}, False),
    ]:
        assert inside.evaluate(context).matched is member
        assert inside.matches_flat(context) is member
        assert outside.evaluate(context).matched is not member
        assert outside.matches_flat(context) is not member


def test_an_unknown_reference_never_matches_negated_or_not():
    for negate in (False, True):
        segment = compile_segment(salt="s", logical_op="OR", rules=[{"segmentId": 5, "negate": negate}],
                                  force=False, included=[], excluded=[], references={})  # fmt: skip
        assert segment.evaluate({}).matched is False
        assert segment.evaluate({}).segment_matches == []


def test_segment_matches_explain_every_reference_depth_first_with_its_own_evaluation():
    references = {
        2: _definition([ADULT, {"segmentId": 3, "negate": False}], key="adult-pro"),
        3: _definition([PRO], key="pro"),
    }
    rules = [
        {"logicalOp": "OR", "rules": [{"segmentId": 3, "negate": True}]},
        {"segmentId": 2, "negate": False},
    ]
    segment = compile_segment(salt="s", logical_op="OR", rules=rules, force=False, included=[],
                              excluded=[], references=references, key="top")  # fmt: skip
    result = segment.evaluate({"plan": "pro", "age": 20})
    assert result.matched is True
    assert [(m.segment_key, m.negate, m.matched) for m in result.segment_matches] == [
        ("pro", True, False),
        ("adult-pro", False, True),
    ]
    nested = result.segment_matches[1].evaluation
    assert [(c.attribute, c.matched) for c in nested.conditions] == [("age", True)]
    assert [(m.segment_key, m.matched) for m in nested.segment_matches] == [("pro", True)]
    # "pro" was evaluated once for the whole evaluation: both explanations share it.
    assert nested.segment_matches[0].evaluation is result.segment_matches[0].evaluation


def test_a_corrupt_cycle_of_references_ends_instead_of_recursing_forever():
    references = {1: _definition([{"segmentId": 2, "negate": False}]),
                  2: _definition([{"segmentId": 1, "negate": False}])}  # fmt: skip
    segment = compile_segment(salt="s", logical_op="AND", rules=[{"segmentId": 1, "negate": False}],
                              force=False, included=[], excluded=[], references=references)  # fmt: skip
    assert segment.evaluate({}).matched is False
    assert segment.matches_flat({}) is False
