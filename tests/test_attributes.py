"""The attribute catalogue and declared attributes (DESIGN §15), over HTTP against PostgreSQL:
counts kept exact by every profile write and import, the attributes queries, and
strictAttributes refusing rules that name undeclared attributes or do not fit their type."""

import asyncio
import random

import orjson

from db import attributes as db_attributes
from db.pool import connect
from tests.mutations.helpers import CREATE_SEGMENT, ERRORS, UPDATE_SEGMENT, admin_token
from tests.test_cli import run

UPSERT = f"mutation($i: UpsertProfilesInput!) {{ upsertProfiles(input: $i) {{ upsertedCount {ERRORS} }} }}"
DELETE = f"mutation($i: DeleteProfilesInput!) {{ deleteProfiles(input: $i) {{ deletedCount {ERRORS} }} }}"
ATTRIBUTE_FIELDS = """
    path profiles usedBySegments
    types { jsonType profiles }
    definition { type description allowedValues }
"""
ATTRIBUTES = f"""
query($p: String!, $search: String, $first: Int, $after: String) {{
  attributes(projectKey: $p, search: $search, first: $first, after: $after) {{
    totalCount
    pageInfo {{ hasNextPage endCursor }}
    edges {{ cursor node {{ {ATTRIBUTE_FIELDS} }} }}
  }}
}}"""
ATTRIBUTE = f"""
query($p: String!, $path: String!, $top: Int) {{
  attribute(projectKey: $p, path: $path) {{ {ATTRIBUTE_FIELDS} topValues(first: $top) {{ value profiles }} }}
}}"""
DEFINE = f"""
mutation($i: DefineAttributeInput!) {{
  defineAttribute(input: $i) {{ attribute {{ {ATTRIBUTE_FIELDS} }} {ERRORS} }}
}}"""
REMOVE = f"""
mutation($i: RemoveAttributeDefinitionInput!) {{
  removeAttributeDefinition(input: $i) {{ attribute {{ path }} {ERRORS} }}
}}"""
SETTINGS = f"""
mutation($i: UpdateProjectSettingsInput!) {{
  updateProjectSettings(input: $i) {{ project {{ settings {{ strictAttributes }} }} {ERRORS} }}
}}"""
PREVIEW = f"""
query($i: PreviewSegmentInput!) {{ previewSegment(input: $i) {{ memberCount {ERRORS} }} }}"""


async def upsert(gql, project, *profiles: tuple[str, dict]) -> None:
    entries = [{"targetingKey": key, "attributes": attributes} for key, attributes in profiles]
    data = await gql(UPSERT, {"i": {"projectKey": project.key, "profiles": entries}})
    assert data["upsertProfiles"]["userErrors"] == []


async def delete(gql, project, *keys: str) -> None:
    data = await gql(DELETE, {"i": {"projectKey": project.key, "targetingKeys": list(keys)}})
    assert data["deleteProfiles"]["userErrors"] == []


async def catalogue(gql, project) -> dict[str, dict]:
    """path -> {profiles, types} as the attributes query lists them (every page)."""
    found: dict[str, dict] = {}
    after = None
    while True:
        page = (await gql(ATTRIBUTES, {"p": project.key, "first": 100, "after": after}))[
            "attributes"
        ]
        for edge in page["edges"]:
            node = edge["node"]
            found[node["path"]] = {
                "profiles": node["profiles"],
                "types": {t["jsonType"]: t["profiles"] for t in node["types"]},
            }
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def assert_catalogue_is_a_recount(database_url, project) -> None:
    conn = await connect(database_url)
    try:
        stored = await db_attributes.stored_counts(conn, project.id)
        recounted = await db_attributes.recount(conn, project.id)
    finally:
        await conn.close()
    assert sorted(map(tuple, stored)) == sorted(map(tuple, recounted))


async def test_upserts_updates_and_deletes_keep_counts_per_path_and_type_exact(
    gql, project, database_url
):
    await upsert(
        gql,
        project,
        ("u1", {"plan": "pro", "user": {"age": 30, "tags": ["a", "b"]}, "gone": None}),
        ("u2", {"plan": "free", "user": {"age": "thirty"}}),
        ("u3", {"plan": None, "empty": {}}),
    )
    assert await catalogue(gql, project) == {
        "gone": {"profiles": 0, "types": {"null": 1}},
        "plan": {"profiles": 2, "types": {"string": 2, "null": 1}},
        "user.age": {"profiles": 2, "types": {"number": 1, "string": 1}},
        "user.tags": {"profiles": 1, "types": {"array": 1}},
    }
    # Replacing changes types and drops paths; a path nobody holds any more disappears.
    await upsert(gql, project, ("u1", {"plan": 3, "user": {"age": 31}}), ("u2", {"plan": "free"}))
    await delete(gql, project, "u3", "nobody")
    assert await catalogue(gql, project) == {
        "plan": {"profiles": 2, "types": {"number": 1, "string": 1}},
        "user.age": {"profiles": 1, "types": {"number": 1}},
    }
    # An upsert that changes nothing keeps the counts.
    await upsert(gql, project, ("u2", {"plan": "free"}))
    assert (await catalogue(gql, project))["plan"]["profiles"] == 2
    await assert_catalogue_is_a_recount(database_url, project)


async def test_random_profile_writes_leave_the_catalogue_equal_to_a_recount(
    gql, project, database_url
):
    rng = random.Random(18)
    values = [None, 1, 2.5, "x", "y", True, [1], ["a", "b"], {"deep": 1}, {"deep": "z"}, {}]
    paths = ["a", "b", "c.d", "e"]
    for _ in range(25):
        keys = [f"u{rng.randrange(12)}" for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.25:
            await delete(gql, project, *keys)
        else:
            await upsert(
                gql,
                project,
                *(
                    (key, {p: rng.choice(values) for p in rng.sample(paths, rng.randint(0, 4))})
                    for key in keys
                ),
            )
    await assert_catalogue_is_a_recount(database_url, project)


async def test_concurrent_upserts_of_the_same_profile_keep_counts_exact(gql, project, database_url):
    shapes = [{"n": i} if i % 3 else {"s": str(i), "n": None} for i in range(16)]
    await asyncio.gather(*(upsert(gql, project, ("same", shape)) for shape in shapes))
    await asyncio.gather(
        *(upsert(gql, project, ("same", shape), ("other", shape)) for shape in reversed(shapes))
    )
    await assert_catalogue_is_a_recount(database_url, project)
    listed = await catalogue(gql, project)
    assert sum(sum(entry["types"].values()) for entry in listed.values()) in (2, 4)


async def test_the_cli_import_keeps_the_catalogue_exact(gql, project, database_url, tmp_path):
    await upsert(gql, project, ("u1", {"plan": "free", "old": True}), ("u2", {"plan": "pro"}))
    file = tmp_path / "people.ndjson"
    lines = [
        {"targetingKey": "u1", "attributes": {"plan": "pro", "org": {"seats": 5}}},
        {"targetingKey": "u3", "attributes": {"plan": 7}},
        {"targetingKey": "u1", "attributes": {"plan": "team"}},
    ]
    file.write_text("".join(orjson.dumps(line).decode() + "\n" for line in lines))
    result = run(
        "profiles", "import", "--project", project.key, str(file), database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    assert await catalogue(gql, project) == {
        "plan": {"profiles": 3, "types": {"string": 2, "number": 1}},
    }
    await assert_catalogue_is_a_recount(database_url, project)


async def test_random_imports_over_stored_profiles_keep_the_catalogue_a_recount(
    gql, project, database_url
):
    """An import counts the paths of the rows it writes itself and the triggers subtract what
    replaced rows held (sql/0015): keys new and stored, repeated in one chunk and across
    chunks, with nested, empty, array, null and "targetingKey" attributes."""
    from db import profiles as db_profiles

    rng = random.Random(15)
    values = [None, 0, 1.5, "x", True, [], ["a"], {"deep": 1}, {"deep": [2]}, {}, {"a": {}}]
    paths = ["a", "b", "c.d", "targetingKey", "e"]

    def attributes() -> dict:
        return {p: rng.choice(values) for p in rng.sample(paths, rng.randint(0, 4))}

    await upsert(gql, project, *((f"u{i}", attributes()) for i in range(0, 20, 2)))
    conn = await connect(database_url)
    try:
        for _ in range(6):
            chunks = []
            for _ in range(rng.randint(1, 4)):
                chunk = db_profiles.ImportChunk()
                for _ in range(rng.randint(1, 8)):
                    chunk.add(f"u{rng.randrange(24)}", attributes())
                chunks.append(chunk.pack())
            await db_profiles.copy_import_chunks(conn, project.id, chunks)
            if rng.random() < 0.5:
                await delete(gql, project, *(f"u{rng.randrange(24)}" for _ in range(3)))
            await assert_catalogue_is_a_recount(database_url, project)
    finally:
        await conn.close()


async def test_attributes_are_listed_by_path_with_search_cursors_and_declared_ones(gql, project):
    await upsert(gql, project, ("u1", {"b": 1, "a": {"x": "v"}, "plan": "pro"}))
    await gql(DEFINE, {"i": {"projectKey": project.key, "path": "declared.only", "type": "NUMBER"}})
    first = (await gql(ATTRIBUTES, {"p": project.key, "first": 2}))["attributes"]
    assert [e["node"]["path"] for e in first["edges"]] == ["a.x", "b"]
    assert first["totalCount"] == 4
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (
        await gql(
            ATTRIBUTES, {"p": project.key, "first": 10, "after": first["pageInfo"]["endCursor"]}
        )
    )["attributes"]
    assert [e["node"]["path"] for e in rest["edges"]] == ["declared.only", "plan"]
    declared = rest["edges"][0]["node"]
    assert declared["profiles"] == 0 and declared["types"] == []
    assert declared["definition"] == {"type": "NUMBER", "description": None, "allowedValues": None}
    searched = (await gql(ATTRIBUTES, {"p": project.key, "search": "LA"}))["attributes"]
    assert [e["node"]["path"] for e in searched["edges"]] == ["declared.only", "plan"]
    assert searched["totalCount"] == 2


async def test_other_projects_attributes_are_invisible(gql, project, other_project):
    await upsert(gql, project, ("u1", {"plan": "pro"}))
    other = await gql(ATTRIBUTES, {"p": project.key}, token=other_project.editor)
    assert other["attributes"]["totalCount"] == 0
    assert (await gql(ATTRIBUTE, {"p": project.key, "path": "plan"}, token=other_project.editor))[
        "attribute"
    ] is None


async def test_an_attribute_shows_top_values_and_the_live_segments_naming_it(gql, project):
    await upsert(
        gql,
        project,
        *(
            (f"u{i}", {"plan": ["pro", "pro", "free", None][i % 4], "tags": ["a"]})
            for i in range(8)
        ),
    )
    nested = [
        {
            "group": {
                "logicalOp": "OR",
                "rules": [{"condition": {"attribute": "plan", "operator": "EXISTS"}}],
            }
        }
    ]
    for key, rules in (
        ("nested", nested),
        ("flat", [{"condition": {"attribute": "plan", "operator": "EQ", "value": "pro"}}]),
    ):
        await gql(
            CREATE_SEGMENT,
            {"i": {"projectKey": project.key, "key": key, "name": key, "rules": rules}},
        )
    await gql(
        CREATE_SEGMENT,
        {
            "i": {
                "projectKey": project.key,
                "key": "other",
                "name": "o",
                "rules": [
                    {"condition": {"attribute": "tags", "operator": "CONTAINS", "value": "a"}}
                ],
            }
        },
    )
    found = (await gql(ATTRIBUTE, {"p": project.key, "path": "plan", "top": 5}))["attribute"]
    assert found["profiles"] == 6
    assert found["usedBySegments"] == 2
    assert found["topValues"] == [{"value": "pro", "profiles": 4}, {"value": "free", "profiles": 2}]
    top_one = (await gql(ATTRIBUTE, {"p": project.key, "path": "tags", "top": 1}))["attribute"]
    assert top_one["topValues"] == [{"value": ["a"], "profiles": 8}]
    errors = await gql.errors(ATTRIBUTE, {"p": project.key, "path": "plan", "top": 51})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert (await gql(ATTRIBUTE, {"p": project.key, "path": "nope"}))["attribute"] is None


async def test_used_by_segments_is_one_statement_per_page(gql, project, statements):
    await upsert(gql, project, *((f"u{i}", {f"p{j}": j for j in range(5)}) for i in range(3)))
    query = "query($p: String!) { attributes(projectKey: $p) { nodes { path usedBySegments } } }"
    async with statements.block() as counted:
        data = await gql(query, {"p": project.key})
    assert len(data["attributes"]["nodes"]) == 5
    assert counted.count <= 3  # the token, the page, every usedBySegments


async def test_define_attribute_needs_an_editor_and_checks_allowed_values(gql, project):
    define = {"projectKey": project.key, "path": "plan", "type": "STRING"}
    errors = await gql.errors(DEFINE, {"i": define}, token=project.viewer)
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    bad = (
        await gql(DEFINE, {"i": {**define, "type": "NUMBER", "allowedValues": [1, "two", True]}})
    )["defineAttribute"]
    assert bad["attribute"] is None
    assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [
        (["input", "allowedValues", "1"], "INVALID_INPUT"),
        (["input", "allowedValues", "2"], "INVALID_INPUT"),
    ]
    too_many = await gql(DEFINE, {"i": {**define, "allowedValues": [str(i) for i in range(101)]}})
    assert too_many["defineAttribute"]["userErrors"][0]["field"] == ["input", "allowedValues"]
    assert (await gql(ATTRIBUTE, {"p": project.key, "path": "plan"}))["attribute"] is None
    ok = await gql(
        DEFINE, {"i": {**define, "description": "Billing plan", "allowedValues": ["free", "pro"]}}
    )
    assert ok["defineAttribute"]["attribute"]["definition"] == {
        "type": "STRING",
        "description": "Billing plan",
        "allowedValues": ["free", "pro"],
    }
    removed = await gql(REMOVE, {"i": {"projectKey": project.key, "path": "plan"}})
    assert removed["removeAttributeDefinition"] == {"attribute": None, "userErrors": []}
    again = await gql(REMOVE, {"i": {"projectKey": project.key, "path": "plan"}})
    assert again["removeAttributeDefinition"]["userErrors"][0]["code"] == "NOT_FOUND"


async def _strict(gql, project, database_url) -> None:
    admin = await admin_token(database_url, project)
    data = await gql(
        SETTINGS, {"i": {"projectKey": project.key, "strictAttributes": True}}, token=admin
    )
    assert data["updateProjectSettings"]["project"]["settings"] == {"strictAttributes": True}
    for path, kind, allowed in (
        ("user.plan", "STRING", ["free", "pro"]),
        ("user.age", "NUMBER", None),
        ("app", "SEMVER", None),
        ("tags", "STRING_LIST", ["vip"]),
    ):
        await gql(
            DEFINE,
            {
                "i": {
                    "projectKey": project.key,
                    "path": path,
                    "type": kind,
                    "allowedValues": allowed,
                }
            },
        )


def _condition(attribute, operator, value=None):
    return {"condition": {"attribute": attribute, "operator": operator, "value": value}}


async def test_strict_attributes_refuse_unknown_attributes_naming_the_closest(
    gql, project, database_url
):
    await _strict(gql, project, database_url)
    rules = [
        _condition("user.age", "GT", 18),
        {"group": {"logicalOp": "OR", "rules": [_condition("user.plna", "EQ", "pro")]}},
    ]
    payload = (
        await gql(
            CREATE_SEGMENT,
            {"i": {"projectKey": project.key, "key": "s", "name": "s", "rules": rules}},
        )
    )["createSegment"]
    assert payload["segment"] is None
    [error] = payload["userErrors"]
    assert error["code"] == "UNKNOWN_ATTRIBUTE"
    assert error["field"] == [
        "input",
        "rules",
        "1",
        "group",
        "rules",
        "0",
        "condition",
        "attribute",
    ]
    assert "'user.plan'" in error["message"]
    assert (await gql(ATTRIBUTE, {"p": project.key, "path": "user.age"}))["attribute"][
        "usedBySegments"
    ] == 0
    preview = (await gql(PREVIEW, {"i": {"projectKey": project.key, "rules": rules}}))[
        "previewSegment"
    ]
    assert preview["userErrors"][0]["code"] == "UNKNOWN_ATTRIBUTE"
    # targetingKey is always there.
    ok = [_condition("targetingKey", "STARTS_WITH", "u"), _condition("user.plan", "IN", ["pro"])]
    created = await gql(
        CREATE_SEGMENT, {"i": {"projectKey": project.key, "key": "s", "name": "s", "rules": ok}}
    )
    assert created["createSegment"]["userErrors"] == []


async def test_strict_attributes_refuse_operators_and_values_that_do_not_fit(
    gql, project, database_url
):
    await _strict(gql, project, database_url)
    cases = [
        (_condition("user.plan", "GT", 3), "operator"),
        (_condition("user.plan", "EQ", "gold"), "value"),
        (_condition("user.age", "EQ", "old"), "value"),
        (_condition("user.age", "BEFORE", "2026-01-01"), "operator"),
        (_condition("app", "GT", 2), "operator"),
        (_condition("tags", "CONTAINS", "nobody"), "value"),
    ]
    for condition, field in cases:
        payload = (
            await gql(
                CREATE_SEGMENT,
                {"i": {"projectKey": project.key, "key": "s", "name": "s", "rules": [condition]}},
            )
        )["createSegment"]
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
            ("INVALID_RULE", ["input", "rules", "0", "condition", field])
        ], condition
    fitting = [
        _condition("app", "SEMVER_GT", "1.2.0"),
        _condition("tags", "CONTAINS", "vip"),
        _condition("user.age", "LTE", 60),
        _condition("user.plan", "EXISTS"),
    ]
    created = await gql(
        CREATE_SEGMENT,
        {"i": {"projectKey": project.key, "key": "s", "name": "s", "rules": fitting}},
    )
    segment = created["createSegment"]["segment"]
    assert created["createSegment"]["userErrors"] == []
    updated = await gql(
        UPDATE_SEGMENT, {"i": {"id": segment["id"], "rules": [_condition("user.plan", "LT", 1)]}}
    )
    assert updated["updateSegment"]["userErrors"][0]["code"] == "INVALID_RULE"


async def test_without_strict_attributes_undeclared_attributes_are_accepted(gql, project):
    rules = [_condition("user.plna", "GT", 1)]
    created = await gql(
        CREATE_SEGMENT, {"i": {"projectKey": project.key, "key": "s", "name": "s", "rules": rules}}
    )
    assert created["createSegment"]["userErrors"] == []


async def test_strict_attributes_apply_to_the_rest_api(client, gql, project, database_url):
    await _strict(gql, project, database_url)
    response = await client.post(
        f"/projects/{project.key}/segments",
        json={
            "name": "Typo",
            "rules": [{"type": "rule", "attribute": "user.plna", "operator": "eq", "value": "pro"}],
        },
        headers={"Authorization": f"Bearer {project.editor}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "UNKNOWN_ATTRIBUTE"
