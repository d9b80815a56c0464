"""Revisions and revert (DESIGN §14): every version a write makes is stored with its full
definition in the input shapes, listed newest first with what changed, and revertSegment
writes an earlier one again as an ordinary update."""

import pytest

from db.migrate import migration_files
from db.pool import connect
from tests.mutations.helpers import (
    ERRORS,
    SEGMENT,
    condition,
    delete_segment,
    errors_of,
    group,
    new_segment,
    ref,
    restore_segment,
    state,
    update_segment,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

REVISIONS = """
query($id: ID!, $first: Int, $after: String) {
  node(id: $id) {
    ... on Segment {
      revisions(first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { version actor createdAt snapshot changes { field before after } }
      }
    }
  }
}"""

REVISION = """
query($id: ID!, $v: Int!) {
  node(id: $id) { ... on Segment { revision(version: $v) { version actor snapshot changes { field } } } }
}"""

REVERT = f"""
mutation($i: RevertSegmentInput!) {{
  revertSegment(input: $i) {{ segment {{ {SEGMENT} }} {ERRORS} }}
}}"""

SNAPSHOT_FIELDS = [
    "key", "name", "description", "tags", "logicalOp", "rules", "force", "included",
    "excluded", "salt", "deleted",
]  # fmt: skip


async def revisions(gql, segment_id, **page):
    data = await gql(REVISIONS, {"id": segment_id, **page})
    return data["node"]["revisions"]


async def revert(gql, segment_id, to_version, token=None, **fields):
    data = await gql(
        REVERT, {"i": {"id": segment_id, "toVersion": to_version, **fields}}, token=token
    )
    return data["revertSegment"]


async def test_every_version_bump_stores_a_revision_newest_first(gql, project):
    segment = await new_segment(
        gql, project.key, key="beta", rules=[condition("plan", "EQ", "pro")]
    )
    await update_segment(gql, segment["id"], name="Beta 2")
    await delete_segment(gql, segment["id"])
    await restore_segment(gql, segment["id"])
    found = await revisions(gql, segment["id"])
    assert found["totalCount"] == 4
    assert [r["version"] for r in found["nodes"]] == [4, 3, 2, 1]
    assert {r["actor"] for r in found["nodes"]} == {f"{project.key} editor"}
    restored, deleted, renamed, created = found["nodes"]
    assert created["snapshot"] == {
        "key": "beta",
        "name": "Beta testers",
        "description": None,
        "tags": [],
        "logicalOp": "AND",
        "rules": [{"condition": {"attribute": "plan", "operator": "EQ", "value": "pro"}}],
        "force": False,
        "included": [],
        "excluded": [],
        "salt": "beta",
        "deleted": False,
    }
    assert [c["field"] for c in created["changes"]] == SNAPSHOT_FIELDS
    assert all(c["before"] is None for c in created["changes"])
    assert renamed["changes"] == [{"field": "name", "before": "Beta testers", "after": "Beta 2"}]
    assert deleted["changes"] == [{"field": "deleted", "before": False, "after": True}]
    assert restored["changes"] == [{"field": "deleted", "before": True, "after": False}]


async def test_an_update_that_changes_nothing_stores_no_revision(gql, project):
    segment = await new_segment(gql, project.key, name="Same")
    await update_segment(gql, segment["id"], name="Same")
    assert (await revisions(gql, segment["id"]))["totalCount"] == 1


async def test_a_refused_write_stores_no_revision(gql, project):
    segment = await new_segment(gql, project.key)
    payload = await update_segment(gql, segment["id"], name="x", expectedVersion=7)
    assert errors_of(payload) == [(("input", "expectedVersion"), "VERSION_CONFLICT")]
    assert (await revisions(gql, segment["id"]))["totalCount"] == 1


async def test_revisions_page_by_cursor(gql, project):
    segment = await new_segment(gql, project.key)
    for n in range(4):
        await update_segment(gql, segment["id"], name=f"Name {n}")
    first = await revisions(gql, segment["id"], first=2)
    assert [r["version"] for r in first["nodes"]] == [5, 4]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await revisions(gql, segment["id"], first=10, after=first["pageInfo"]["endCursor"])
    assert [r["version"] for r in rest["nodes"]] == [3, 2, 1]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_revision_by_version_and_missing_version(gql, project):
    segment = await new_segment(gql, project.key, name="One")
    await update_segment(gql, segment["id"], tags=["a"])
    data = await gql(REVISION, {"id": segment["id"], "v": 2})
    assert data["node"]["revision"]["snapshot"]["tags"] == ["a"]
    assert data["node"]["revision"]["changes"] == [{"field": "tags"}]
    missing = await gql(REVISION, {"id": segment["id"], "v": 3})
    assert missing["node"]["revision"] is None


async def test_snapshot_rules_are_input_shapes_and_can_be_sent_back(gql, project):
    await new_segment(gql, project.key, name="Staff", key="staff")
    rules = [
        group(
            condition("email", "ENDS_WITH", "@acme.io"),
            ref("staff", negate=True),
            logical_op="OR",
        ),
        {
            "condition": {
                "attribute": "country",
                "operator": "EQ",
                "value": "de",
                "caseInsensitive": True,
            }
        },
    ]
    segment = await new_segment(gql, project.key, name="Mixed", rules=rules)
    snapshot = (await revisions(gql, segment["id"]))["nodes"][0]["snapshot"]
    assert snapshot["rules"] == [
        {
            "group": {
                "logicalOp": "OR",
                "rules": [
                    {
                        "condition": {
                            "attribute": "email",
                            "operator": "ENDS_WITH",
                            "value": "@acme.io",
                        }
                    },
                    {"segment": {"segmentKey": "staff", "negate": True}},
                ],
            }
        },
        rules[1],
    ]
    fields = {k: v for k, v in snapshot.items() if k not in ("deleted", "key")}
    again = await update_segment(gql, segment["id"], **fields)
    assert again["userErrors"] == []
    assert again["segment"]["version"] == 1  # the same definition: nothing written


async def test_revert_writes_the_old_definition_as_a_new_version(gql, project):
    segment = await new_segment(
        gql, project.key, name="Old", tags=["t"], rules=[condition("a", "EQ", 1)]
    )
    await update_segment(gql, segment["id"], name="New", tags=[], rules=[], force=True)
    payload = await revert(gql, segment["id"], 1)
    assert payload["userErrors"] == []
    reverted = payload["segment"]
    assert reverted["version"] == 3
    assert (reverted["name"], reverted["tags"], reverted["force"]) == ("Old", ["t"], False)
    assert reverted["rules"] == [
        {"__typename": "Condition", "attribute": "a", "operator": "EQ", "value": 1}
    ]
    latest = (await revisions(gql, segment["id"], first=1))["nodes"][0]
    assert latest["version"] == 3
    assert {c["field"] for c in latest["changes"]} == {"name", "tags", "rules", "force"}


async def test_revert_checks_the_expected_version(gql, project):
    segment = await new_segment(gql, project.key, name="Old")
    await update_segment(gql, segment["id"], name="New")
    before = await state(gql, project.key)
    payload = await revert(gql, segment["id"], 1, expectedVersion=1)
    assert errors_of(payload) == [(("input", "expectedVersion"), "VERSION_CONFLICT")]
    assert await state(gql, project.key) == before


async def test_revert_to_a_version_that_does_not_exist_is_not_found(gql, project):
    segment = await new_segment(gql, project.key)
    payload = await revert(gql, segment["id"], 9)
    assert errors_of(payload) == [(("input", "toVersion"), "NOT_FOUND")]


async def test_revert_refuses_a_reference_to_a_segment_deleted_since(gql, project):
    staff = await new_segment(gql, project.key, name="Staff", key="staff")
    segment = await new_segment(gql, project.key, name="Uses", rules=[ref("staff")])
    await update_segment(gql, segment["id"], rules=[])
    await delete_segment(gql, staff["id"])
    before = await state(gql, project.key)
    payload = await revert(gql, segment["id"], 1)
    assert errors_of(payload) == [(("input", "toVersion"), "NOT_FOUND")]
    assert "staff" in payload["userErrors"][0]["message"]
    assert await state(gql, project.key) == before


REFERENCED = """
query($id: ID!) {
  node(id: $id) { ... on Segment { rules { ... on SegmentMatch { segment { id key } negate } } } }
}"""


async def referenced(gql, segment_id):
    """The (id, key, negate) of each segment the segment's rules reference."""
    rules = (await gql(REFERENCED, {"id": segment_id}))["node"]["rules"]
    return [(r["segment"]["id"], r["segment"]["key"], r["negate"]) for r in rules if r]


async def test_revert_keeps_referencing_a_segment_renamed_since(gql, project):
    staff = await new_segment(gql, project.key, name="Staff", key="staff")
    segment = await new_segment(gql, project.key, name="Uses", rules=[ref("staff", True)])
    await update_segment(gql, segment["id"], rules=[])
    await update_segment(gql, staff["id"], key="employees")
    payload = await revert(gql, segment["id"], 1)
    assert payload["userErrors"] == []
    assert await referenced(gql, segment["id"]) == [(staff["id"], "employees", True)]
    # The revision shows the reference by the key it has at the new version.
    latest = (await revisions(gql, segment["id"], first=1))["nodes"][0]
    assert latest["snapshot"]["rules"] == [{"segment": {"segmentKey": "employees", "negate": True}}]


async def test_revert_never_follows_a_key_another_segment_took_since(gql, project):
    staff = await new_segment(gql, project.key, name="Staff", key="staff")
    segment = await new_segment(gql, project.key, name="Uses", rules=[ref("staff")])
    await update_segment(gql, segment["id"], rules=[])
    await update_segment(gql, staff["id"], key="former-staff")
    await new_segment(gql, project.key, name="New staff", key="staff")
    payload = await revert(gql, segment["id"], 1)
    assert payload["userErrors"] == []
    assert await referenced(gql, segment["id"]) == [(staff["id"], "former-staff", False)]


async def test_revert_refuses_a_deleted_reference_even_when_its_key_was_taken(gql, project):
    staff = await new_segment(gql, project.key, name="Staff", key="staff")
    segment = await new_segment(gql, project.key, name="Uses", rules=[group(ref("staff"))])
    await update_segment(gql, segment["id"], rules=[])
    await delete_segment(gql, staff["id"])
    await new_segment(gql, project.key, name="New staff", key="staff")
    before = await state(gql, project.key)
    payload = await revert(gql, segment["id"], 1)
    assert errors_of(payload) == [(("input", "toVersion"), "NOT_FOUND")]
    assert "staff" in payload["userErrors"][0]["message"]
    assert await state(gql, project.key) == before


async def test_revert_refuses_a_key_taken_since(gql, project):
    segment = await new_segment(gql, project.key, name="A", key="first")
    await update_segment(gql, segment["id"], key="second")
    await new_segment(gql, project.key, name="B", key="first")
    before = await state(gql, project.key)
    payload = await revert(gql, segment["id"], 1)
    assert errors_of(payload) == [(("input", "toVersion"), "KEY_TAKEN")]
    assert await state(gql, project.key) == before


async def test_revert_of_a_deleted_segment_is_refused(gql, project):
    segment = await new_segment(gql, project.key, name="A")
    await update_segment(gql, segment["id"], name="B")
    await delete_segment(gql, segment["id"])
    payload = await revert(gql, segment["id"], 1)
    assert errors_of(payload) == [(("input", "id"), "SEGMENT_DELETED")]


async def test_revert_needs_an_editor(gql, project):
    segment = await new_segment(gql, project.key, name="A")
    errors = await gql.errors(
        REVERT, {"i": {"id": segment["id"], "toVersion": 1}}, token=project.viewer
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_revisions_of_another_projects_segment_are_not_visible(gql, project, other_project):
    segment = await new_segment(gql, project.key, name="Mine")
    data = await gql(REVISIONS, {"id": segment["id"]}, token=other_project.editor)
    assert data["node"] is None
    payload = await revert(gql, segment["id"], 1, token=other_project.editor)
    assert errors_of(payload) == [(("input", "id"), "NOT_FOUND")]


async def test_the_migration_gives_every_existing_segment_a_revision(database_url, project):
    conn = await connect(database_url)
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("DROP TABLE segment_revisions")
        await conn.execute("ALTER TABLE change_requests DROP COLUMN proposed_rules")
        staff = await conn.fetchval(
            """
            INSERT INTO segments (project_id, key, name, salt, version)
            VALUES ($1, 'staff', 'Staff', 'staff', 3) RETURNING id
            """,
            project.id,
        )
        stored = [
            {"logicalOp": "NOT", "rules": [{"segmentId": staff, "negate": False}]},
            {"attribute": "a", "operator": "EQ", "value": 1},
        ]
        await conn.execute(
            """
            INSERT INTO segments (project_id, key, name, salt, rules, tags, deleted_at)
            VALUES ($1, 'uses', 'Uses', 's', $2, '{x}', now())
            """,
            project.id,
            stored,
        )
        migrations = dict(migration_files())
        await conn.execute(migrations["0010_segment_revisions"])
        await conn.execute(migrations["0017_stored_rules_beside_snapshots"])
        rows = await conn.fetch(
            """
            SELECT s.key, r.version, r.actor, r.snapshot, r.rules
            FROM segment_revisions r
            JOIN segments s ON s.project_id = r.project_id AND s.id = r.segment_id
            WHERE r.project_id = $1
            ORDER BY s.key
            """,
            project.id,
        )
    finally:
        await transaction.rollback()  # the tables as the migrations left them
        await conn.close()
    # sql/0017 gives the revision of each segment's current version its stored rules.
    assert [r["rules"] for r in rows] == [[], stored]
    assert [(r["key"], r["version"], r["actor"]) for r in rows] == [
        ("staff", 3, "migration"),
        ("uses", 1, "migration"),
    ]
    assert rows[1]["snapshot"] == {
        "key": "uses",
        "name": "Uses",
        "description": None,
        "tags": ["x"],
        "logicalOp": "AND",
        "rules": [
            {
                "group": {
                    "logicalOp": "NOT",
                    "rules": [{"segment": {"segmentKey": "staff", "negate": False}}],
                }
            },
            {"condition": {"attribute": "a", "operator": "EQ", "value": 1}},
        ],
        "force": False,
        "included": [],
        "excluded": [],
        "salt": "s",
        "deleted": True,
    }
