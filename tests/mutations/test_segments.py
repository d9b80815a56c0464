"""createSegment, updateSegment, deleteSegment and restoreSegment, as admin tools use them (§3)."""

from datetime import datetime

import pytest

from tests.mutations.helpers import (
    archive_flag,
    attach,
    condition,
    create_segment,
    delete_segment,
    errors_of,
    group,
    new_flag,
    new_segment,
    restore_segment,
    segment_by_key,
    set_rules,
    state,
    update_segment,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


# --- create -------------------------------------------------------------------------------


async def test_create_stores_every_field_and_starts_at_version_one(gql, project):
    payload = await create_segment(
        gql,
        project.key,
        name="  EU Premium  ",
        key="eu-premium",
        description="Paying users in the EU",
        tags=["billing", "region:eu"],
        logicalOp="OR",
        rules=[
            condition("country", "IN", ["DE", "FR"]),
            group(condition("plan", "EQ", "pro"), condition("seats", "GTE", 5), logical_op="NOT"),
        ],
        force=True,
        included=["user-1"],
        excluded=["user-2", "user-3"],
    )
    assert payload["userErrors"] == []
    segment = payload["segment"]
    assert segment["key"] == "eu-premium"
    assert segment["name"] == "EU Premium"  # trimmed
    assert segment["description"] == "Paying users in the EU"
    assert segment["tags"] == ["billing", "region:eu"]
    assert segment["logicalOp"] == "OR"
    assert segment["force"] is True
    assert segment["included"] == ["user-1"]
    assert segment["excluded"] == ["user-2", "user-3"]
    assert segment["version"] == 1
    assert segment["deleted"] is False and segment["deletedAt"] is None
    assert segment["createdAt"] == segment["updatedAt"]
    assert segment["rules"] == [
        {
            "__typename": "Condition",
            "attribute": "country",
            "operator": "IN",
            "value": ["DE", "FR"],
        },
        {
            "__typename": "ConditionGroup",
            "logicalOp": "NOT",
            "rules": [
                {"__typename": "Condition", "attribute": "plan", "operator": "EQ", "value": "pro"},
                {"__typename": "Condition", "attribute": "seats", "operator": "GTE", "value": 5},
            ],
        },
    ]
    assert await segment_by_key(gql, project.key, "eu-premium") == segment


async def test_create_defaults_to_and_no_rules_no_force_no_targets(gql, project):
    segment = await new_segment(gql, project.key, name="Everyone")
    assert segment["logicalOp"] == "AND"
    assert segment["rules"] == []
    assert segment["force"] is False
    assert segment["tags"] == [] and segment["included"] == [] and segment["excluded"] == []
    assert segment["description"] is None


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("EU Premium Users", "eu_premium_users"),
        ("  Beta -- Testers (iOS)!  ", "beta_--_testers_ios"),
        ("Power_Users", "power_users"),
        ("Ärzte & Co.", "rzte_co"),
        ("!!!", "segment"),
    ],
)
async def test_create_derives_the_key_from_the_name(gql, project, name, key):
    segment = await new_segment(gql, project.key, name=name)
    assert segment["key"] == key


async def test_derived_keys_get_suffixes_when_taken(gql, project):
    keys = [(await new_segment(gql, project.key, name="Beta Testers"))["key"] for _ in range(3)]
    assert keys == ["beta_testers", "beta_testers_2", "beta_testers_3"]


async def test_derived_key_takes_the_first_free_suffix(gql, project):
    await new_segment(gql, project.key, name="Other", key="beta_testers")
    await new_segment(gql, project.key, name="Other", key="beta_testers_2")
    await new_segment(gql, project.key, name="Other", key="beta_testers_4")
    segment = await new_segment(gql, project.key, name="Beta Testers")
    assert segment["key"] == "beta_testers_3"


async def test_derived_key_of_a_long_name_keeps_its_suffix_within_100_characters(gql, project):
    name = "n" * 100
    first = await new_segment(gql, project.key, name=name)
    second = await new_segment(gql, project.key, name=name)
    assert first["key"] == "n" * 100
    assert second["key"] == "n" * 98 + "_2"


async def test_derived_key_ignores_like_wildcards_in_other_keys(gql, project):
    # "a_b" as a LIKE pattern would also match "axb"; only real collisions count.
    await new_segment(gql, project.key, name="x", key="axb")
    segment = await new_segment(gql, project.key, name="A B")
    assert segment["key"] == "a_b"


async def test_create_with_a_taken_key_is_key_taken_and_writes_nothing(gql, project):
    await new_segment(gql, project.key, name="First", key="beta")
    before = await state(gql, project.key)
    payload = await create_segment(gql, project.key, name="Second", key="beta")
    assert payload["segment"] is None
    assert errors_of(payload) == [(("input", "key"), "KEY_TAKEN")]
    assert await state(gql, project.key) == before


async def test_keys_are_unique_per_project_not_globally(gql, project, other_project):
    await new_segment(gql, project.key, name="Beta", key="beta")
    payload = await create_segment(
        gql, other_project.key, token=other_project.editor, name="Beta", key="beta"
    )
    assert payload["userErrors"] == []
    assert payload["segment"]["key"] == "beta"


async def test_create_in_another_project_is_not_found(gql, project, other_project):
    payload = await create_segment(gql, other_project.key, name="Sneaky")
    assert errors_of(payload) == [(("input", "projectKey"), "NOT_FOUND")]
    payload = await create_segment(gql, "no-such-project", name=" ", key="bad key")
    assert errors_of(payload) == [
        (("input", "projectKey"), "NOT_FOUND"),
        (("input", "key"), "INVALID_KEY"),
        (("input", "name"), "INVALID_INPUT"),
    ]
    assert (await state(gql, other_project.key, other_project.editor))["segments"][
        "totalCount"
    ] == 0


async def test_more_than_15000_targets_exceed_the_limit(gql, project):
    included = [f"u{i}" for i in range(10_000)]
    excluded = [f"x{i}" for i in range(5_001)]
    before = await state(gql, project.key)
    payload = await create_segment(
        gql, project.key, name="Big", included=included, excluded=excluded
    )
    assert errors_of(payload) == [(("input", "included"), "LIMIT_EXCEEDED")]
    assert await state(gql, project.key) == before
    segment = await new_segment(
        gql, project.key, name="Big", included=included, excluded=excluded[:5_000]
    )
    assert len(segment["included"]) + len(segment["excluded"]) == 15_000
    # An update is judged on the targets it would leave stored.
    payload = await update_segment(gql, segment["id"], excluded=excluded)
    assert errors_of(payload) == [(("input", "included"), "LIMIT_EXCEEDED")]
    assert (await segment_by_key(gql, project.key, "big"))["version"] == 1


# --- update -------------------------------------------------------------------------------


async def test_update_changes_only_the_given_fields(gql, project):
    segment = await new_segment(
        gql,
        project.key,
        name="Beta",
        description="keep me",
        tags=["a"],
        rules=[condition("plan", "EQ", "pro")],
        included=["u1"],
        excluded=["u2"],
        force=False,
    )
    payload = await update_segment(gql, segment["id"], name="Beta 2", tags=["b", "c"])
    assert payload["userErrors"] == []
    updated = payload["segment"]
    assert updated["name"] == "Beta 2"
    assert updated["tags"] == ["b", "c"]
    unchanged = (
        "key",
        "description",
        "logicalOp",
        "rules",
        "force",
        "included",
        "excluded",
        "createdAt",
    )
    assert {f: updated[f] for f in unchanged} == {f: segment[f] for f in unchanged}
    assert await segment_by_key(gql, project.key, "beta") == updated


async def test_update_with_null_description_clears_it(gql, project):
    segment = await new_segment(gql, project.key, description="old text")
    updated = (await update_segment(gql, segment["id"], description=None))["segment"]
    assert updated["description"] is None
    assert updated["version"] == 2


async def test_update_with_null_lists_empties_them(gql, project):
    segment = await new_segment(
        gql,
        project.key,
        tags=["a"],
        rules=[condition("plan", "EQ", "pro")],
        included=["u1"],
        excluded=["u2"],
    )
    updated = (
        await update_segment(
            gql, segment["id"], tags=None, rules=None, included=None, excluded=None
        )
    )["segment"]
    assert (updated["tags"], updated["rules"], updated["included"], updated["excluded"]) == (
        [],
        [],
        [],
        [],
    )


@pytest.mark.parametrize("field", ["key", "name", "logicalOp", "force"])
async def test_update_with_null_for_a_required_field_is_invalid_input(gql, project, field):
    segment = await new_segment(gql, project.key)
    before = await state(gql, project.key)
    payload = await update_segment(gql, segment["id"], **{field: None})
    assert errors_of(payload) == [(("input", field), "INVALID_INPUT")]
    assert await state(gql, project.key) == before


async def test_update_replaces_rules_and_can_change_every_field(gql, project):
    segment = await new_segment(gql, project.key, rules=[condition("plan", "EQ", "pro")])
    payload = await update_segment(
        gql,
        segment["id"],
        key="beta-v2",
        name="Beta v2",
        description="d",
        tags=["t"],
        logicalOp="NOT",
        rules=[condition("country", "EXISTS")],
        force=True,
        included=["a"],
        excluded=["b"],
    )
    assert payload["userErrors"] == []
    updated = payload["segment"]
    assert (updated["key"], updated["name"], updated["description"], updated["tags"]) == (
        "beta-v2",
        "Beta v2",
        "d",
        ["t"],
    )
    assert (updated["logicalOp"], updated["force"], updated["included"], updated["excluded"]) == (
        "NOT",
        True,
        ["a"],
        ["b"],
    )
    assert updated["rules"] == [
        {"__typename": "Condition", "attribute": "country", "operator": "EXISTS", "value": None}
    ]
    assert updated["version"] == 2
    assert await segment_by_key(gql, project.key, "beta_testers") is None


async def test_a_change_bumps_version_and_updated_at(gql, project):
    segment = await new_segment(gql, project.key)
    first = (await update_segment(gql, segment["id"], name="Renamed"))["segment"]
    second = (await update_segment(gql, segment["id"], description="now described"))["segment"]
    assert [segment["version"], first["version"], second["version"]] == [1, 2, 3]
    created = datetime.fromisoformat(segment["updatedAt"])
    assert (
        created
        < datetime.fromisoformat(first["updatedAt"])
        < datetime.fromisoformat(second["updatedAt"])
    )
    assert second["createdAt"] == segment["createdAt"]


async def test_an_update_that_changes_nothing_writes_nothing(gql, project):
    segment = await new_segment(
        gql,
        project.key,
        name="Beta",
        description="d",
        tags=["a"],
        rules=[condition("plan", "EQ", "pro")],
    )
    before = await state(gql, project.key)
    payload = await update_segment(
        gql,
        segment["id"],
        name="  Beta ",
        description="d",
        tags=["a"],
        logicalOp="AND",
        rules=[condition("plan", "EQ", "pro")],
        force=False,
        included=[],
        excluded=[],
    )
    assert payload["userErrors"] == []
    assert payload["segment"]["version"] == 1
    assert payload["segment"]["updatedAt"] == segment["updatedAt"]
    assert await state(gql, project.key) == before  # also: no audit event


async def test_an_empty_update_writes_nothing(gql, project):
    segment = await new_segment(gql, project.key)
    before = await state(gql, project.key)
    payload = await update_segment(gql, segment["id"])
    assert payload["userErrors"] == [] and payload["segment"]["version"] == 1
    assert await state(gql, project.key) == before


async def test_update_with_the_expected_version_applies(gql, project):
    segment = await new_segment(gql, project.key)
    payload = await update_segment(gql, segment["id"], expectedVersion=1, name="Renamed")
    assert payload["userErrors"] == []
    assert payload["segment"]["version"] == 2


async def test_update_with_a_stale_expected_version_is_a_version_conflict(gql, project):
    segment = await new_segment(gql, project.key)
    await update_segment(gql, segment["id"], name="Someone else's change")
    before = await state(gql, project.key)
    payload = await update_segment(gql, segment["id"], expectedVersion=1, name="My change")
    assert payload["segment"] is None
    assert errors_of(payload) == [(("input", "expectedVersion"), "VERSION_CONFLICT")]
    assert await state(gql, project.key) == before


async def test_update_to_a_taken_key_is_key_taken(gql, project):
    await new_segment(gql, project.key, name="A", key="alpha")
    beta = await new_segment(gql, project.key, name="B", key="beta")
    before = await state(gql, project.key)
    payload = await update_segment(gql, beta["id"], key="alpha")
    assert errors_of(payload) == [(("input", "key"), "KEY_TAKEN")]
    assert await state(gql, project.key) == before


async def test_update_may_take_the_key_of_a_deleted_segment(gql, project):
    old = await new_segment(gql, project.key, name="A", key="alpha")
    await delete_segment(gql, old["id"])
    beta = await new_segment(gql, project.key, name="B", key="beta")
    payload = await update_segment(gql, beta["id"], key="alpha")
    assert payload["userErrors"] == []
    assert (await segment_by_key(gql, project.key, "alpha"))["id"] == beta["id"]


async def test_update_of_a_deleted_segment_is_segment_deleted(gql, project):
    segment = await new_segment(gql, project.key)
    await delete_segment(gql, segment["id"])
    before = await state(gql, project.key)
    payload = await update_segment(gql, segment["id"], name="Back?")
    assert errors_of(payload) == [(("input", "id"), "SEGMENT_DELETED")]
    assert await state(gql, project.key) == before


@pytest.mark.parametrize("segment_id", ["U2VnbWVudDo5OTk", "RmxhZzox", "garbage"])
async def test_update_of_an_unknown_id_is_not_found(gql, project, segment_id):
    payload = await update_segment(gql, segment_id, name="x")
    assert errors_of(payload) == [(("input", "id"), "NOT_FOUND")]


async def test_a_segment_of_another_project_cannot_be_changed(gql, project, other_project):
    payload = await create_segment(
        gql, other_project.key, token=other_project.editor, name="Theirs"
    )
    theirs = payload["segment"]
    before = await state(gql, other_project.key, other_project.editor)
    assert errors_of(await update_segment(gql, theirs["id"], name="x")) == [
        (("input", "id"), "NOT_FOUND")
    ]
    assert errors_of(await delete_segment(gql, theirs["id"])) == [(("input", "id"), "NOT_FOUND")]
    assert errors_of(await restore_segment(gql, theirs["id"])) == [(("input", "id"), "NOT_FOUND")]
    assert await state(gql, other_project.key, other_project.editor) == before


# --- delete -------------------------------------------------------------------------------


async def test_delete_is_soft_and_hides_the_segment(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    payload = await delete_segment(gql, segment["id"])
    assert payload == {"deletedSegmentId": segment["id"], "userErrors": [], "blockingUsage": None}
    assert await segment_by_key(gql, project.key, "beta") is None
    node = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": segment["id"]})
    assert node["node"] is None
    listed = await gql(
        "query($p: String!) { segments(projectKey: $p) { totalCount } }", {"p": project.key}
    )
    assert listed["segments"]["totalCount"] == 0
    [kept] = (await state(gql, project.key))["segments"]["nodes"]
    assert kept["deleted"] is True and kept["deletedAt"] is not None
    assert kept["version"] == 2


async def test_delete_frees_the_key(gql, project):
    old = await new_segment(gql, project.key, name="Beta")
    await delete_segment(gql, old["id"])
    new = await new_segment(gql, project.key, name="Beta", key="beta")
    assert new["id"] != old["id"]
    derived = await new_segment(gql, project.key, name="Gamma")
    await delete_segment(gql, derived["id"])
    assert (await new_segment(gql, project.key, name="Gamma"))["key"] == "gamma"


async def test_delete_refuses_segment_used_by_live_flag(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    flag = await new_flag(gql, project.key, "checkout")
    await attach(gql, flag["id"], segment["id"])
    before = await state(gql, project.key)
    payload = await delete_segment(gql, segment["id"])
    assert payload["deletedSegmentId"] is None
    assert errors_of(payload) == [(("input", "id"), "SEGMENT_IN_USE")]
    assert payload["blockingUsage"] == {
        "usageCount": 1,
        "usedInFlags": [
            {"flag": {"key": "checkout"}, "environment": {"key": "production"}, "ruleCount": 1}
        ],
    }
    assert await state(gql, project.key) == before


async def test_delete_refuses_segment_used_in_any_environment_and_lists_every_use(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    alpha = await new_flag(gql, project.key, "alpha")
    beta = await new_flag(gql, project.key, "beta")
    await attach(gql, beta["id"], segment["id"], environment="staging")
    rule = {"segmentId": segment["id"], "variationKey": "on"}
    payload = await set_rules(
        gql, alpha["id"], [rule, {"rules": [], "rolloutKey": "r"}, rule], "staging"
    )
    assert payload["userErrors"] == []
    payload = await delete_segment(gql, segment["id"])
    assert errors_of(payload) == [(("input", "id"), "SEGMENT_IN_USE")]
    assert payload["blockingUsage"] == {
        "usageCount": 2,
        "usedInFlags": [
            {"flag": {"key": "alpha"}, "environment": {"key": "staging"}, "ruleCount": 2},
            {"flag": {"key": "beta"}, "environment": {"key": "staging"}, "ruleCount": 1},
        ],
    }


async def test_delete_is_allowed_once_the_rule_is_removed(gql, project):
    segment = await new_segment(gql, project.key)
    flag = await new_flag(gql, project.key)
    await attach(gql, flag["id"], segment["id"])
    assert (await set_rules(gql, flag["id"], []))["userErrors"] == []
    assert (await delete_segment(gql, segment["id"]))["userErrors"] == []


async def test_delete_is_allowed_once_the_flag_is_archived(gql, project):
    segment = await new_segment(gql, project.key)
    flag = await new_flag(gql, project.key)
    await attach(gql, flag["id"], segment["id"])
    await attach(gql, flag["id"], segment["id"], environment="staging")
    assert (await archive_flag(gql, flag["id"]))["userErrors"] == []
    payload = await delete_segment(gql, segment["id"])
    assert payload["userErrors"] == [] and payload["deletedSegmentId"] == segment["id"]


async def test_delete_with_a_stale_expected_version_is_a_version_conflict(gql, project):
    segment = await new_segment(gql, project.key)
    await update_segment(gql, segment["id"], name="Changed")
    before = await state(gql, project.key)
    payload = await delete_segment(gql, segment["id"], expectedVersion=1)
    assert errors_of(payload) == [(("input", "expectedVersion"), "VERSION_CONFLICT")]
    assert await state(gql, project.key) == before
    assert (await delete_segment(gql, segment["id"], expectedVersion=2))["userErrors"] == []


async def test_deleting_a_deleted_segment_is_segment_deleted(gql, project):
    segment = await new_segment(gql, project.key)
    await delete_segment(gql, segment["id"])
    before = await state(gql, project.key)
    payload = await delete_segment(gql, segment["id"])
    assert errors_of(payload) == [(("input", "id"), "SEGMENT_DELETED")]
    assert await state(gql, project.key) == before


async def test_delete_of_an_unknown_id_is_not_found(gql, project):
    payload = await delete_segment(gql, "U2VnbWVudDo5OTk")
    assert errors_of(payload) == [(("input", "id"), "NOT_FOUND")]


# --- restore ------------------------------------------------------------------------------


async def test_restore_brings_a_deleted_segment_back(gql, project):
    segment = await new_segment(
        gql, project.key, name="Beta", rules=[condition("plan", "EQ", "pro")]
    )
    await delete_segment(gql, segment["id"])
    payload = await restore_segment(gql, segment["id"])
    assert payload["userErrors"] == []
    restored = payload["segment"]
    assert restored["deleted"] is False and restored["deletedAt"] is None
    assert restored["version"] == 3
    assert restored["rules"] == segment["rules"]
    assert await segment_by_key(gql, project.key, "beta") == restored


async def test_restore_refuses_when_the_key_was_taken_meanwhile(gql, project):
    old = await new_segment(gql, project.key, name="Beta")
    await delete_segment(gql, old["id"])
    await new_segment(gql, project.key, name="Beta again", key="beta")
    before = await state(gql, project.key)
    payload = await restore_segment(gql, old["id"])
    assert payload["segment"] is None
    assert errors_of(payload) == [(("input", "key"), "KEY_TAKEN")]
    assert await state(gql, project.key) == before


async def test_a_restored_segment_can_be_attached_again(gql, project):
    segment = await new_segment(gql, project.key)
    flag = await new_flag(gql, project.key)
    await delete_segment(gql, segment["id"])
    await restore_segment(gql, segment["id"])
    await attach(gql, flag["id"], segment["id"])


async def test_restore_of_a_live_segment_changes_nothing(gql, project):
    segment = await new_segment(gql, project.key)
    before = await state(gql, project.key)
    payload = await restore_segment(gql, segment["id"])
    assert payload["userErrors"] == []
    assert payload["segment"]["version"] == 1
    assert await state(gql, project.key) == before


async def test_restore_of_an_unknown_id_is_not_found(gql, project):
    payload = await restore_segment(gql, "U2VnbWVudDo5OTk")
    assert errors_of(payload) == [(("input", "id"), "NOT_FOUND")]
