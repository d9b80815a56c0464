"""The live-segment limit per project (DESIGN §3), with the setting lowered to 2."""

import pytest

from api.settings import Settings
from tests.mutations.helpers import (
    create_segment,
    delete_segment,
    errors_of,
    new_segment,
    restore_segment,
    state,
)


@pytest.fixture
def settings(database_url):
    return Settings(
        database_url=database_url, pool_min_size=1, pool_max_size=20, max_segments_per_project=2
    )


async def test_create_beyond_the_live_segment_limit_is_limit_exceeded(gql, project):
    await new_segment(gql, project.key, name="One")
    await new_segment(gql, project.key, name="Two")
    before = await state(gql, project.key)
    payload = await create_segment(gql, project.key, name="Three")
    assert [code for _, code in errors_of(payload)] == ["LIMIT_EXCEEDED"]
    assert await state(gql, project.key) == before


async def test_deleted_segments_do_not_count_against_the_limit(gql, project):
    one = await new_segment(gql, project.key, name="One")
    await new_segment(gql, project.key, name="Two")
    assert (await delete_segment(gql, one["id"]))["userErrors"] == []
    assert (await create_segment(gql, project.key, name="Three"))["userErrors"] == []


async def test_restore_beyond_the_live_segment_limit_is_limit_exceeded(gql, project):
    one = await new_segment(gql, project.key, name="One")
    await new_segment(gql, project.key, name="Two")
    await delete_segment(gql, one["id"])
    await new_segment(gql, project.key, name="Three")
    before = await state(gql, project.key)
    payload = await restore_segment(gql, one["id"])
    assert [code for _, code in errors_of(payload)] == ["LIMIT_EXCEEDED"]
    assert await state(gql, project.key) == before
