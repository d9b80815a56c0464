"""What rule warnings cost in SQL statements: a list page asks for no member counts, only
one read of the attribute catalogue whatever the number of segments; a preview (which
counts anyway) adds that read and one of the project's profile counter, and a single
segment's warnings add those reads and one count."""

from tests.mutations.helpers import condition
from tests.test_read_usage import create_segment, statements_for, warm_pool  # noqa: F401

UPSERT = "mutation($i: UpsertProfilesInput!) { upsertProfiles(input: $i) { upsertedCount } }"
PAGE = """
query($p: String!) { segments(projectKey: $p, first: 50) { nodes { key %s } } }"""
ONE = """
query($p: String!, $k: String!) { segment(projectKey: $p, key: $k) { key %s } }"""
PREVIEW = """
query($i: PreviewSegmentInput!) { previewSegment(input: $i) { memberCount %s } }"""
WARNINGS = "warnings { code field }"


async def test_warnings_cost_no_count_on_a_page_and_one_on_a_single_read(
    gql,
    statements,
    database_url,
    project,
    warm_pool,  # noqa: F811
):
    profiles = [{"targetingKey": f"u{n}", "attributes": {"plan": "pro"}} for n in range(5)]
    await gql(UPSERT, {"i": {"projectKey": project.key, "profiles": profiles}})
    rules = [condition("plan", "IN", ["pro"]), condition("plan", "NIN", ["pro"])]
    for number in range(20):
        await create_segment(gql, project.key, f"s{number}", rules=rules)

    async def count(query: str, variables: dict) -> tuple[int, int, dict]:
        without, _ = await statements_for(
            gql, statements, database_url, project, query % "", variables
        )
        with_warnings, data = await statements_for(
            gql, statements, database_url, project, query % WARNINGS, variables
        )
        return without, with_warnings, data

    without, with_warnings, data = await count(PAGE, {"p": project.key})
    assert with_warnings == without + 1  # the catalogue, once for the page
    nodes = data["segments"]["nodes"]
    assert len(nodes) == 20
    assert all(
        node["warnings"] == [{"code": "CONTRADICTION", "field": ["rules"]}] for node in nodes
    )

    without, with_warnings, data = await count(ONE, {"p": project.key, "k": "s0"})
    assert with_warnings == without + 3  # the catalogue, the profile counter, one count
    assert [w["code"] for w in data["segment"]["warnings"]] == ["CONTRADICTION", "MATCHES_NO_ONE"]

    preview = {"i": {"projectKey": project.key, "rules": rules, "sampleSize": 0}}
    without, with_warnings, data = await count(PREVIEW, preview)
    assert with_warnings == without + 2  # catalogue and profile counter; the count is the preview's
    assert [w["code"] for w in data["previewSegment"]["warnings"]] == [
        "CONTRADICTION",
        "MATCHES_NO_ONE",
    ]
