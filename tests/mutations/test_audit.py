"""The audit log: every change writes an event with its actor and before/after values (DESIGN §8);
Segment.history and Query.auditLog read it newest first."""

import pytest

from db import api_keys
from db.pool import connect
from tests.conftest import GraphQLClient
from tests.mutations.helpers import (
    ARCHIVE_FLAG,
    CREATE_ENVIRONMENT,
    CREATE_SEGMENT,
    DELETE_SEGMENT,
    SET_TARGETING_RULES,
    UPDATE_SEGMENT,
    archive_flag,
    attach,
    audit_log,
    condition,
    create_segment,
    delete_segment,
    history,
    new_flag,
    new_segment,
    restore_segment,
    sql_fetch,
    state,
    update_segment,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def changes_of(event: dict) -> dict[str, tuple]:
    return {c["field"]: (c["before"], c["after"]) for c in event["changes"]}


async def test_create_records_every_field_with_the_key_name_as_actor(gql, project):
    segment = await new_segment(
        gql,
        project.key,
        name="Beta",
        description="d",
        tags=["t"],
        rules=[condition("plan", "EQ", "pro")],
        included=["u1"],
    )
    [event] = (await history(gql, segment["id"]))["nodes"]
    assert (event["action"], event["entityType"], event["entityId"]) == (
        "CREATED",
        "segment",
        segment["id"],
    )
    assert event["actor"] == f"{project.key} editor"
    assert changes_of(event) == {
        "key": (None, "beta"),
        "name": (None, "Beta"),
        "description": (None, "d"),
        "tags": (None, ["t"]),
        "logicalOp": (None, "AND"),
        "rules": (None, [{"attribute": "plan", "operator": "EQ", "value": "pro"}]),
        "force": (None, False),
        "included": (None, ["u1"]),
        "excluded": (None, []),
        "salt": (None, "beta"),
    }


async def test_update_records_before_and_after_of_the_changed_fields_only(gql, project):
    segment = await new_segment(
        gql, project.key, name="Beta", description="old", rules=[condition("a", "EXISTS")]
    )
    await update_segment(
        gql,
        segment["id"],
        name="Beta",
        description=None,
        rules=[condition("b", "NOT_EXISTS")],
        tags=[],
    )
    latest = (await history(gql, segment["id"]))["nodes"][0]
    assert latest["action"] == "UPDATED"
    assert changes_of(latest) == {
        "description": ("old", None),
        "rules": (
            [{"attribute": "a", "operator": "EXISTS", "value": None}],
            [{"attribute": "b", "operator": "NOT_EXISTS", "value": None}],
        ),
    }


async def test_history_lists_every_change_newest_first(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    await update_segment(gql, segment["id"], name="Beta 2")
    await update_segment(gql, segment["id"], name="Beta 2")  # no-op: no event
    await delete_segment(gql, segment["id"])
    await update_segment(gql, segment["id"], name="refused")  # SEGMENT_DELETED: no event
    await restore_segment(gql, segment["id"])
    events = await history(gql, segment["id"])
    assert events["totalCount"] == 4
    assert [e["action"] for e in events["nodes"]] == ["RESTORED", "DELETED", "UPDATED", "CREATED"]
    assert changes_of(events["nodes"][0]) == {"deleted": (True, False)}
    assert changes_of(events["nodes"][1]) == {"deleted": (False, True)}
    assert changes_of(events["nodes"][2]) == {"name": ("Beta", "Beta 2")}
    created = [e["createdAt"] for e in events["nodes"]]
    assert created == sorted(created, reverse=True)


async def test_history_holds_only_that_segments_events_and_pages_by_cursor(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    other = await new_segment(gql, project.key, name="Other")
    for n in range(4):
        await update_segment(gql, segment["id"], name=f"Beta {n}")
        await update_segment(gql, other["id"], name=f"Other {n}")
    first = await history(gql, segment["id"], first=2)
    assert first["totalCount"] == 5 and first["pageInfo"]["hasNextPage"] is True
    rest = await history(gql, segment["id"], first=10, after=first["pageInfo"]["endCursor"])
    assert rest["pageInfo"]["hasNextPage"] is False
    names = [changes_of(e)["name"][1] for e in first["nodes"] + rest["nodes"]]
    assert names == ["Beta 3", "Beta 2", "Beta 1", "Beta 0", "Beta"]
    assert {e["entityId"] for e in first["nodes"] + rest["nodes"]} == {segment["id"]}


async def test_history_defaults_to_twenty_events(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    for n in range(21):
        await update_segment(gql, segment["id"], name=f"Beta {n}")
    events = await history(gql, segment["id"])
    assert len(events["nodes"]) == 20 and events["totalCount"] == 22
    assert events["pageInfo"]["hasNextPage"] is True


async def editor_named(gql, project, database_url, name: str) -> GraphQLClient:
    """A client with a new editor key of that name."""
    conn = await connect(database_url)
    try:
        token = await api_keys.create_api_key(conn, project.id, "editor", name)
    finally:
        await conn.close()
    return GraphQLClient(gql.http, token)


async def test_the_actor_is_the_name_of_the_key_that_made_the_change(gql, project, database_url):
    bot = await editor_named(gql, project, database_url, "release-bot")
    segment = await new_segment(gql, project.key)
    await update_segment(bot, segment["id"], name="Renamed by the bot")
    actors = [e["actor"] for e in (await history(gql, segment["id"]))["nodes"]]
    assert actors == ["release-bot", f"{project.key} editor"]


async def test_a_change_is_rolled_back_when_its_audit_event_cannot_be_written(
    gql, project, database_url
):
    segment = await new_segment(gql, project.key, name="Beta")
    flag = await new_flag(gql, project.key)
    # Only events by this key fail, so the rest of the module's database is unaffected.
    doomed = await editor_named(gql, project, database_url, "unauditable")
    await sql_fetch(
        database_url,
        "ALTER TABLE audit_events ADD CONSTRAINT test_unauditable CHECK (actor <> 'unauditable')",
    )
    try:
        before = await state(gql, project.key)
        attach_rule = [{"segmentId": segment["id"], "variationKey": "on"}]
        for document, variables in [
            (UPDATE_SEGMENT, {"id": segment["id"], "name": "Renamed"}),
            (DELETE_SEGMENT, {"id": segment["id"]}),
            (CREATE_SEGMENT, {"projectKey": project.key, "name": "New"}),
            (
                SET_TARGETING_RULES,
                {"flagId": flag["id"], "environmentKey": "production", "rules": attach_rule},
            ),
            (ARCHIVE_FLAG, {"flagId": flag["id"]}),
        ]:
            errors = await doomed.errors(document, {"i": variables})
            assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert await state(gql, project.key) == before
    finally:
        await sql_fetch(database_url, "ALTER TABLE audit_events DROP CONSTRAINT test_unauditable")


async def test_flag_and_environment_changes_are_audited(gql, project):
    segment = await new_segment(gql, project.key, name="Beta")
    environment = (
        await gql(CREATE_ENVIRONMENT, {"i": {"projectKey": project.key, "key": "qa", "name": "QA"}})
    )["createEnvironment"]["environment"]
    flag = await new_flag(gql, project.key, "checkout", description="d")
    await attach(gql, flag["id"], segment["id"])
    await attach(gql, flag["id"], segment["id"])  # the same list again: no event
    await archive_flag(gql, flag["id"])
    await archive_flag(gql, flag["id"])  # already archived: no event
    log = await audit_log(gql, project.key)
    assert log["totalCount"] == 5
    archived, attached, created, env, seg = log["nodes"]
    assert (seg["action"], seg["entityType"], seg["entityId"]) == (
        "CREATED",
        "segment",
        segment["id"],
    )
    assert (env["action"], env["entityType"], env["entityId"]) == (
        "CREATED",
        "environment",
        environment["id"],
    )
    assert changes_of(env) == {"key": (None, "qa"), "name": (None, "QA")}
    assert (created["action"], created["entityType"], created["entityId"]) == (
        "CREATED",
        "flag",
        flag["id"],
    )
    assert changes_of(created) == {
        "key": (None, "checkout"),
        "name": (None, "Checkout"),
        "description": (None, "d"),
    }
    assert (attached["action"], attached["entityId"]) == ("UPDATED", flag["id"])
    [(field, (before, after))] = changes_of(attached).items()
    assert field == "targetingRules.production"
    assert before == []
    assert [(r["kind"], r["segmentId"], r["variationKey"]) for r in after] == [
        ("SEGMENT", segment["id"], "on")  # the global id a client can look up, not a row id
    ]
    assert (archived["action"], changes_of(archived)) == ("UPDATED", {"archived": (False, True)})
    assert {e["actor"] for e in log["nodes"]} == {f"{project.key} editor"}


async def test_audit_log_pages_newest_first(gql, project):
    for n in range(5):
        await new_segment(gql, project.key, name=f"S{n}")
    first = await audit_log(gql, project.key, first=3)
    rest = await audit_log(gql, project.key, first=3, after=first["pageInfo"]["endCursor"])
    assert first["totalCount"] == 5 and first["pageInfo"]["hasNextPage"] is True
    assert rest["pageInfo"]["hasNextPage"] is False
    names = [changes_of(e)["name"][1] for e in first["nodes"] + rest["nodes"]]
    assert names == ["S4", "S3", "S2", "S1", "S0"]


async def test_audit_log_of_another_project_is_empty(gql, project, other_project):
    await create_segment(gql, other_project.key, token=other_project.editor, name="Theirs")
    assert (await audit_log(gql, other_project.key))["totalCount"] == 0
    assert (await audit_log(gql, project.key))["totalCount"] == 0


async def test_refused_mutations_write_no_event(gql, project, database_url):
    segment = await new_segment(gql, project.key, name="Beta", key="beta")
    flag = await new_flag(gql, project.key)
    await attach(gql, flag["id"], segment["id"])
    await create_segment(gql, project.key, name="Beta", key="beta")  # KEY_TAKEN
    await update_segment(gql, segment["id"], expectedVersion=7, name="x")  # VERSION_CONFLICT
    await delete_segment(gql, segment["id"])  # SEGMENT_IN_USE
    await restore_segment(gql, segment["id"])  # live already: nothing to do
    rows = await sql_fetch(
        database_url,
        "SELECT entity_type, action FROM audit_events WHERE project_id = $1 ORDER BY id",
        project.id,
    )
    assert [(r["entity_type"], r["action"]) for r in rows] == [
        ("segment", "CREATED"),
        ("flag", "CREATED"),
        ("flag", "UPDATED"),
    ]
