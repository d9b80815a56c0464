async def test_typename(gql):
    assert await gql("{ __typename }") == {"__typename": "Query"}


async def test_create_and_list(gql, project):
    data = await gql(
        """mutation($i: CreateSegmentInput!) { createSegment(input: $i) {
            segment { id key name version rules { __typename ... on Condition { attribute operator value } } }
            userErrors { field code message } } }""",
        {"i": {"projectKey": project.key, "name": "EU Premium Users", "rules": [
            {"condition": {"attribute": "country", "operator": "IN", "value": ["DE", "FR"]}}]}},
    )
    print(data)
    seg = data["createSegment"]["segment"]
    assert seg["key"] == "eu_premium_users"
    data = await gql("query($p: String!) { segments(projectKey: $p) { totalCount pageInfo { hasNextPage hasPreviousPage } nodes { key usage { usageCount } history { nodes { action changes { field after } } } } } }", {"p": project.key})
    print(data)
