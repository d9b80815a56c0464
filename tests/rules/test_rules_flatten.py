"""Flattening a JSON context into dotted attribute paths."""

from rules.evaluate import flatten_context


def test_nested_objects_become_dotted_paths() -> None:
    context = {"targetingKey": "u1", "user": {"plan": "pro", "address": {"country": "NL"}}}
    assert flatten_context(context) == {
        "targetingKey": "u1",
        "user.plan": "pro",
        "user.address.country": "NL",
    }


def test_a_key_that_already_holds_a_dot_is_kept() -> None:
    assert flatten_context({"a.b": 1, "c": {"d.e": 2}}) == {"a.b": 1, "c.d.e": 2}


def test_arrays_and_scalars_are_leaves() -> None:
    context = {"tags": ["a", {"b": 1}], "n": None, "ok": True, "x": 1.5}
    assert flatten_context(context) == context


def test_an_empty_object_leaves_nothing() -> None:
    assert flatten_context({"user": {}, "a": {"b": {}}}) == {}


def test_colliding_paths_keep_the_later_one() -> None:
    assert flatten_context({"a": {"b": 1}, "a.b": 2}) == {"a.b": 2}
    assert flatten_context({"a.b": 2, "a": {"b": 1}}) == {"a.b": 1}


def test_a_context_that_is_not_an_object_flattens_to_nothing() -> None:
    for context in (None, [], [{"a": 1}], "a", 1):
        assert flatten_context(context) == {}


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    context: dict = {"leaf": 1}
    for _ in range(5000):
        context = {"k": context}
    (path, value), *_ = flatten_context(context).items()
    assert path == "k." * 5000 + "leaf"
    assert value == 1
