"""Every mutation needs an editor key: a viewer gets FORBIDDEN, nothing is written (DESIGN §8)."""

import pytest
import pytest_asyncio

from tests.mutations.helpers import (
    ARCHIVE_FLAG,
    CREATE_ENVIRONMENT,
    CREATE_FLAG,
    CREATE_SEGMENT,
    DELETE_SEGMENT,
    RESTORE_SEGMENT,
    SET_TARGETING_RULES,
    UPDATE_SEGMENT,
    delete_segment,
    new_flag,
    new_segment,
    state,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def ids(gql, project):
    """A live segment, a deleted one and a flag, for mutations that an editor could run."""
    live = await new_segment(gql, project.key, name="Live")
    gone = await new_segment(gql, project.key, name="Gone")
    await delete_segment(gql, gone["id"])
    attachable = await new_segment(gql, project.key, name="Attachable")
    flag = await new_flag(gql, project.key)
    return {
        "live": live["id"],
        "gone": gone["id"],
        "attachable": attachable["id"],
        "flag": flag["id"],
    }


def mutations(project_key: str, ids: dict[str, str]) -> dict[str, tuple[str, dict]]:
    """Each mutation with an input an editor would see succeed."""
    return {
        "createSegment": (CREATE_SEGMENT, {"projectKey": project_key, "name": "New"}),
        "updateSegment": (UPDATE_SEGMENT, {"id": ids["live"], "name": "Renamed"}),
        "deleteSegment": (DELETE_SEGMENT, {"id": ids["live"]}),
        "restoreSegment": (RESTORE_SEGMENT, {"id": ids["gone"]}),
        "createEnvironment": (
            CREATE_ENVIRONMENT,
            {"projectKey": project_key, "key": "qa", "name": "QA"},
        ),
        "createFlag": (CREATE_FLAG, {"projectKey": project_key, "key": "other", "name": "Other"}),
        "setTargetingRules": (
            SET_TARGETING_RULES,
            {
                "flagId": ids["flag"],
                "environmentKey": "production",
                "rules": [{"segmentId": ids["attachable"], "variationKey": "on"}],
            },
        ),
        "archiveFlag": (ARCHIVE_FLAG, {"flagId": ids["flag"]}),
    }


NO_IDS = {"live": "", "gone": "", "attachable": "", "flag": ""}
NAMES = list(mutations("", NO_IDS))


@pytest.mark.parametrize("name", NAMES)
async def test_a_viewer_is_forbidden_every_mutation_and_nothing_is_written(gql, project, ids, name):
    document, variables = mutations(project.key, ids)[name]
    before = await state(gql, project.key)
    response = await gql.raw(document, {"i": variables}, token=project.viewer)
    assert response.status_code == 200
    body = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == [name]
    assert body["data"] is None
    assert await state(gql, project.key) == before


async def test_a_request_without_a_token_is_unauthenticated_and_writes_nothing(gql, project):
    before = await state(gql, project.key)
    document, variables = mutations(project.key, NO_IDS)["createSegment"]
    response = await gql.http.post(
        "/graphql", json={"query": document, "variables": {"i": variables}}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await state(gql, project.key) == before


async def test_the_same_inputs_succeed_for_an_editor(gql, project, ids):
    """Guards the test above: the viewer is refused for its role, not for its input."""
    for name, (document, variables) in mutations(project.key, ids).items():
        data = await gql(document, {"i": variables})
        assert data[name]["userErrors"] == [], name
