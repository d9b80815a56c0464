"""Validation of a segment's key, name, description, tags and targets, and key derivation."""

from itertools import islice

import pytest

from rules.models import Limits
from rules.validate import (
    derive_key,
    key_candidates,
    normalize_name,
    validate_description,
    validate_key,
    validate_name,
    validate_tags,
    validate_targets,
)


@pytest.mark.parametrize("key", ["a", "beta-users", "Beta_Users_2", "x" * 100, "-_-"])
def test_keys_that_are_accepted(key: str) -> None:
    assert validate_key(key, ("input", "key")) == []


@pytest.mark.parametrize("key", ["", "x" * 101, "beta users", "béta", "a.b", "a\n", None])
def test_a_bad_key_is_an_invalid_key(key: str) -> None:
    [problem] = validate_key(key, ("input", "key"))
    assert (problem.field, problem.code) == (("input", "key"), "INVALID_KEY")


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Beta Users", "beta_users"),
        ("  Beta -- Users!! (EU)  ", "beta_--_users_eu"),
        ("already_fine-key", "already_fine-key"),
        ("Ünïcode Çafé", "n_code_af"),
        ("!!!", "segment"),
        ("", "segment"),
        ("a" * 99 + " b", "a" * 99),  # cut at 100, then no trailing "_"
    ],
)
def test_derive_key(name: str, key: str) -> None:
    assert derive_key(name) == key
    assert validate_key(derive_key(name), ()) == []


def test_key_candidates_add_a_counter_suffix() -> None:
    assert list(islice(key_candidates("beta"), 4)) == ["beta", "beta_2", "beta_3", "beta_4"]


def test_key_candidates_cut_the_base_to_fit_the_suffix() -> None:
    base = "k" * 100
    candidates = list(islice(key_candidates(base), 12))
    assert candidates[0] == base
    assert candidates[1] == "k" * 98 + "_2"
    assert candidates[11] == "k" * 97 + "_12"
    assert all(validate_key(candidate, ()) == [] for candidate in candidates)


def test_a_name_is_judged_and_stored_trimmed() -> None:
    assert normalize_name("  Beta users \n") == "Beta users"
    assert validate_name("  " + "n" * 100 + "  ", ("input", "name")) == []


@pytest.mark.parametrize("name", ["", "   ", "n" * 101, None])
def test_a_bad_name_is_invalid_input(name: str) -> None:
    [problem] = validate_name(name, ("input", "name"))
    assert (problem.field, problem.code) == (("input", "name"), "INVALID_INPUT")


@pytest.mark.parametrize("description", [None, "", "d" * 500])
def test_descriptions_that_are_accepted(description: str | None) -> None:
    assert validate_description(description, ("input", "description")) == []


def test_a_long_description_is_invalid_input() -> None:
    [problem] = validate_description("d" * 501, ("input", "description"))
    assert (problem.field, problem.code) == (("input", "description"), "INVALID_INPUT")


def test_tags_that_are_accepted() -> None:
    tags = ["env:prod", "team.growth", "q3_2026", "a-b", "t" * 50] + [f"t{i}" for i in range(15)]
    assert validate_tags(tags, ("input", "tags")) == []
    assert validate_tags(None, ("input", "tags")) == []


def test_each_bad_tag_is_invalid_input_at_its_index() -> None:
    found = validate_tags(["ok", "", "with space", "t" * 51, "ok2", "é"], ("input", "tags"))
    assert [(problem.field, problem.code) for problem in found] == [
        (("input", "tags", str(index)), "INVALID_INPUT") for index in (1, 2, 3, 5)
    ]


def test_more_than_twenty_tags_exceed_the_limit() -> None:
    [problem] = validate_tags([f"t{i}" for i in range(21)], ("input", "tags"))
    assert (problem.field, problem.code) == (("input", "tags"), "LIMIT_EXCEEDED")


INCLUDED = ("input", "included")
EXCLUDED = ("input", "excluded")


def test_targets_that_are_accepted() -> None:
    assert validate_targets(["u1", "x" * 256], None, INCLUDED, EXCLUDED, Limits()) == []


def test_each_bad_target_is_invalid_input_at_its_index() -> None:
    found = validate_targets(["u1", ""], ["x" * 257], INCLUDED, EXCLUDED, Limits())
    assert [(problem.field, problem.code) for problem in found] == [
        (("input", "included", "1"), "INVALID_INPUT"),
        (("input", "excluded", "0"), "INVALID_INPUT"),
    ]


def test_included_and_excluded_together_are_limited() -> None:
    limits = Limits(max_targets=3)
    assert validate_targets(["a", "b"], ["c"], INCLUDED, EXCLUDED, limits) == []
    [problem] = validate_targets(["a"], ["b", "c", "d"], INCLUDED, EXCLUDED, limits)
    assert (problem.field, problem.code) == (EXCLUDED, "LIMIT_EXCEEDED")


def test_the_default_target_limit_is_fifteen_thousand() -> None:
    targets = [f"u{i}" for i in range(7500)]
    assert validate_targets(targets, targets, INCLUDED, EXCLUDED, Limits()) == []
    [problem] = validate_targets([*targets, "x"], targets, INCLUDED, EXCLUDED, Limits())
    assert (problem.field, problem.code) == (INCLUDED, "LIMIT_EXCEEDED")
