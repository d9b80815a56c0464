"""A standard introspection-driven client (Python's gql) works end to end."""

import httpx
from gql import Client, gql
from gql.transport.httpx import HTTPXAsyncTransport


async def test_gql_client_fetches_the_schema_and_runs_a_query_and_a_mutation(app, project):
    transport = HTTPXAsyncTransport(
        url="http://testserver/graphql",
        headers={"Authorization": f"Bearer {project.editor}"},
        transport=httpx.ASGITransport(app=app),
    )
    async with Client(transport=transport, fetch_schema_from_transport=True) as session:
        create = gql(
            """
                mutation Create($input: CreateSegmentInput!) {
                  createSegment(input: $input) {
                    segment { id key createdAt rules { ... on Condition { attribute operator value } } }
                    userErrors { field code message }
                  }
                }
                """
        )
        create.variable_values = {
            "input": {
                "projectKey": project.key,
                "name": "Beta Testers",
                "tags": ["beta"],
                "rules": [{"condition": {"attribute": "beta", "operator": "EQ", "value": True}}],
            }
        }
        created = await session.execute(create)
        listing = gql(
            """
                query List($project: String!) {
                  segments(projectKey: $project, filter: {tags: ["beta"]}) {
                    totalCount
                    edges { cursor node { key usage { usageCount } } }
                  }
                }
                """
        )
        listing.variable_values = {"project": project.key}
        listed = await session.execute(listing)
        # The client validated both documents against the introspected schema.
        assert session.client.schema.get_type("Segment").fields["usage"]
    assert created["createSegment"]["userErrors"] == []
    assert created["createSegment"]["segment"]["key"] == "beta_testers"
    assert listed["segments"]["totalCount"] == 1
    assert listed["segments"]["edges"][0]["node"] == {
        "key": "beta_testers",
        "usage": {"usageCount": 0},
    }
