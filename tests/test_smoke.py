async def test_typename(gql):
    assert await gql("{ __typename }") == {"__typename": "Query"}


async def test_project_with_environments(gql, project):
    data = await gql("query($k: String!) { project(key: $k) { key name environments { key name } } }", {"k": project.key})
    assert data["project"]["environments"] == [
        {"key": "production", "name": "Production"},
        {"key": "staging", "name": "Staging"},
    ]
