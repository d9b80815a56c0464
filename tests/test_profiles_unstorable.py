"""Values a profile cannot be stored with are refused per entry, never a 500."""

import pytest

UPSERT = """
mutation($i: UpsertProfilesInput!) {
  upsertProfiles(input: $i) { upsertedCount userErrors { field code message } }
}
"""


@pytest.mark.parametrize(
    "attributes",
    [
        {"text": "a\u0000b"},
        {"a\u0000": 1},
        {"nested": {"list": ["x", "\u0000"]}},
    ],
    ids=["nul-value", "nul-key", "nested-nul"],
)
async def test_unstorable_attributes_are_a_user_error_and_nothing_is_written(
    gql, project, attributes
):
    data = await gql(
        UPSERT,
        {
            "i": {
                "projectKey": project.key,
                "profiles": [
                    {"targetingKey": "ok", "attributes": {"plan": "pro"}},
                    {"targetingKey": "bad", "attributes": attributes},
                ],
            }
        },
    )
    payload = data["upsertProfiles"]
    assert payload["upsertedCount"] == 0
    assert [e["field"] for e in payload["userErrors"]] == [["input", "profiles", "1", "attributes"]]
    listed = await gql(
        "query($p: String!) { profiles(projectKey: $p) { totalCount } }", {"p": project.key}
    )
    assert listed["profiles"]["totalCount"] == 0


async def test_integers_beyond_64_bits_are_refused_not_rounded(gql, project):
    # Read exactly (not as a float) and refused like the same literal written inline.
    data = await gql(
        UPSERT,
        {
            "i": {
                "projectKey": project.key,
                "profiles": [
                    {"targetingKey": "big", "attributes": {"n": 2**70}},
                ],
            }
        },
    )
    assert data["upsertProfiles"]["upsertedCount"] == 0
    assert [e["code"] for e in data["upsertProfiles"]["userErrors"]] == ["INVALID_INPUT"]
