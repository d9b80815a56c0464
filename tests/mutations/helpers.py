"""GraphQL documents and small helpers shared by the mutation tests."""

from typing import Any

from db.pool import connect

ERRORS = "userErrors { field code message }"

RULES = """
    rules {
      __typename
      ... on Condition { attribute operator value }
      ... on ConditionGroup {
        logicalOp
        rules {
          __typename
          ... on Condition { attribute operator value }
          ... on ConditionGroup { logicalOp }
        }
      }
    }
"""

SEGMENT = f"""
    id key name description tags logicalOp force included excluded
    version createdAt updatedAt deletedAt deleted
    {RULES}
"""

CREATE_SEGMENT = f"""
mutation($i: CreateSegmentInput!) {{
  createSegment(input: $i) {{ segment {{ {SEGMENT} }} {ERRORS} }}
}}"""

UPDATE_SEGMENT = f"""
mutation($i: UpdateSegmentInput!) {{
  updateSegment(input: $i) {{ segment {{ {SEGMENT} }} {ERRORS} }}
}}"""

DELETE_SEGMENT = f"""
mutation($i: DeleteSegmentInput!) {{
  deleteSegment(input: $i) {{
    deletedSegmentId
    {ERRORS}
    blockingUsage {{
      usageCount
      usedInFlags {{ flag {{ key }} environment {{ key }} ruleCount }}
    }}
  }}
}}"""

RESTORE_SEGMENT = f"""
mutation($i: RestoreSegmentInput!) {{
  restoreSegment(input: $i) {{ segment {{ {SEGMENT} }} {ERRORS} }}
}}"""

CREATE_ENVIRONMENT = f"""
mutation($i: CreateEnvironmentInput!) {{
  createEnvironment(input: $i) {{ environment {{ id key name }} {ERRORS} }}
}}"""

FLAG = "id key name description archived"

CREATE_FLAG = f"""
mutation($i: CreateFlagInput!) {{
  createFlag(input: $i) {{ flag {{ {FLAG} }} {ERRORS} }}
}}"""

TARGETING_RULE = f"""
    orderIndex kind segment {{ id key }} logicalOp variationKey rolloutKey
    {RULES}
"""

SET_TARGETING_RULES = f"""
mutation($i: SetTargetingRulesInput!) {{
  setTargetingRules(input: $i) {{
    flag {{ {FLAG} production: targetingRules(environmentKey: "production") {{ {TARGETING_RULE} }} }}
    {ERRORS}
  }}
}}"""

ARCHIVE_FLAG = f"""
mutation($i: ArchiveFlagInput!) {{
  archiveFlag(input: $i) {{ flag {{ {FLAG} }} {ERRORS} }}
}}"""

SEGMENT_BY_KEY = f"""
query($p: String!, $k: String!) {{ segment(projectKey: $p, key: $k) {{ {SEGMENT} }} }}"""

SEGMENT_HISTORY = """
query($id: ID!, $first: Int, $after: String) {
  node(id: $id) {
    ... on Segment {
      history(first: $first, after: $after) {
        totalCount
        pageInfo { hasNextPage endCursor }
        nodes { id action entityType entityId actor createdAt changes { field before after } }
      }
    }
  }
}"""

AUDIT_LOG = """
query($p: String!, $first: Int, $after: String) {
  auditLog(projectKey: $p, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id action entityType entityId actor changes { field before after } }
  }
}"""

FLAG_RULES = f"""
query($p: String!, $k: String!, $env: String!) {{
  flag(projectKey: $p, key: $k) {{ {FLAG} targetingRules(environmentKey: $env) {{ {TARGETING_RULE} }} }}
}}"""

# Everything a mutation could write, as a client sees it: "writes nothing" means this is unchanged.
STATE = f"""
query($p: String!) {{
  segments(projectKey: $p, first: 100, orderBy: {{field: KEY}}, filter: {{includeDeleted: true}}) {{
    totalCount
    nodes {{ {SEGMENT} }}
  }}
  flags(projectKey: $p, first: 100) {{
    totalCount
    nodes {{
      {FLAG}
      production: targetingRules(environmentKey: "production") {{ {TARGETING_RULE} }}
      staging: targetingRules(environmentKey: "staging") {{ {TARGETING_RULE} }}
    }}
  }}
  project(key: $p) {{ environments {{ id key name }} }}
  auditLog(projectKey: $p, first: 1) {{ totalCount nodes {{ id }} }}
}}"""


def condition(attribute: str, operator: str, value: Any = None) -> dict[str, Any]:
    return {"condition": {"attribute": attribute, "operator": operator, "value": value}}


def ref(key: str, negate: bool = False) -> dict[str, Any]:
    """A SegmentMatch rule: in (or, negated, not in) the segment with that key."""
    return {"segment": {"segmentKey": key, "negate": negate}}


def group(*rules: dict[str, Any], logical_op: str = "AND") -> dict[str, Any]:
    return {"group": {"logicalOp": logical_op, "rules": list(rules)}}


def errors_of(payload: dict[str, Any]) -> list[tuple[tuple[str, ...] | None, str]]:
    """(field path, code) of every user error, in the order given."""
    return [
        (tuple(e["field"]) if e["field"] is not None else None, e["code"])
        for e in payload["userErrors"]
    ]


async def create_segment(
    gql: Any, project_key: str, token: str | None = None, **fields: Any
) -> dict:
    """The createSegment payload."""
    data = await gql(CREATE_SEGMENT, {"i": {"projectKey": project_key, **fields}}, token=token)
    return data["createSegment"]


async def new_segment(
    gql: Any, project_key: str, name: str = "Beta testers", **fields: Any
) -> dict:
    """A created segment; fails the test on any user error."""
    payload = await create_segment(gql, project_key, name=name, **fields)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["segment"]


async def update_segment(
    gql: Any, segment_id: str, token: str | None = None, **fields: Any
) -> dict:
    data = await gql(UPDATE_SEGMENT, {"i": {"id": segment_id, **fields}}, token=token)
    return data["updateSegment"]


async def delete_segment(
    gql: Any, segment_id: str, token: str | None = None, **fields: Any
) -> dict:
    data = await gql(DELETE_SEGMENT, {"i": {"id": segment_id, **fields}}, token=token)
    return data["deleteSegment"]


async def restore_segment(gql: Any, segment_id: str, token: str | None = None) -> dict:
    data = await gql(RESTORE_SEGMENT, {"i": {"id": segment_id}}, token=token)
    return data["restoreSegment"]


async def create_flag(gql: Any, project_key: str, key: str = "new-checkout", **fields: Any) -> dict:
    data = await gql(
        CREATE_FLAG, {"i": {"projectKey": project_key, "key": key, "name": key.title(), **fields}}
    )
    return data["createFlag"]


async def new_flag(gql: Any, project_key: str, key: str = "new-checkout", **fields: Any) -> dict:
    payload = await create_flag(gql, project_key, key, **fields)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["flag"]


async def set_rules(
    gql: Any,
    flag_id: str,
    rules: list[dict[str, Any]],
    environment: str = "production",
    token: str | None = None,
) -> dict:
    data = await gql(
        SET_TARGETING_RULES,
        {"i": {"flagId": flag_id, "environmentKey": environment, "rules": rules}},
        token=token,
    )
    return data["setTargetingRules"]


async def attach(gql: Any, flag_id: str, segment_id: str, environment: str = "production") -> dict:
    """Point the flag's only rule in `environment` at the segment; fails on user errors."""
    payload = await set_rules(
        gql, flag_id, [{"segmentId": segment_id, "variationKey": "on"}], environment
    )
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["flag"]


async def archive_flag(gql: Any, flag_id: str, token: str | None = None) -> dict:
    data = await gql(ARCHIVE_FLAG, {"i": {"flagId": flag_id}}, token=token)
    return data["archiveFlag"]


async def segment_by_key(gql: Any, project_key: str, key: str) -> dict | None:
    return (await gql(SEGMENT_BY_KEY, {"p": project_key, "k": key}))["segment"]


async def history(
    gql: Any, segment_id: str, first: int | None = None, after: str | None = None
) -> dict:
    # Unset variables, not nulls, so the field's own default page size applies.
    variables = {"id": segment_id, "first": first, "after": after}
    data = await gql(SEGMENT_HISTORY, {k: v for k, v in variables.items() if v is not None})
    assert data["node"] is not None, "history is read through node(); the segment must be live"
    return data["node"]["history"]


async def audit_log(
    gql: Any, project_key: str, first: int | None = None, after: str | None = None
) -> dict:
    variables = {"p": project_key, "first": first, "after": after}
    return (await gql(AUDIT_LOG, {k: v for k, v in variables.items() if v is not None}))["auditLog"]


async def state(gql: Any, project_key: str, token: str | None = None) -> dict:
    """A snapshot of everything the project holds, to compare before and after a mutation."""
    return await gql(STATE, {"p": project_key}, token=token)


async def sql_fetch(database_url: str, query: str, *args: Any) -> list[Any]:
    """Rows straight from PostgreSQL, bypassing the API."""
    conn = await connect(database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def admin_token(database_url: str, project: Any, name: str = "admin") -> str:
    """A new admin key of the project (the CLI's `api-key create --role admin`)."""
    from db import api_keys

    conn = await connect(database_url)
    try:
        return await api_keys.create_api_key(conn, project.id, "admin", name)
    finally:
        await conn.close()


# Change requests (DESIGN §14).
CHANGE_REQUEST = """
    id state author note baseVersion deletes appliedVersion applyAt conflict
    changes { field before after }
    reviews { reviewer decision comment }
    segment { id key name version deleted }
"""

PROPOSE = f"""
mutation($i: ProposeSegmentChangeInput!) {{
  proposeSegmentChange(input: $i) {{ changeRequest {{ {CHANGE_REQUEST} }} {ERRORS} }}
}}"""

REVIEW = f"""
mutation($i: ReviewChangeRequestInput!) {{
  reviewChangeRequest(input: $i) {{ changeRequest {{ {CHANGE_REQUEST} }} {ERRORS} }}
}}"""

APPLY = f"""
mutation($i: ApplyChangeRequestInput!) {{
  applyChangeRequest(input: $i) {{ changeRequest {{ {CHANGE_REQUEST} }} {ERRORS} }}
}}"""

WITHDRAW = f"""
mutation($i: WithdrawChangeRequestInput!) {{
  withdrawChangeRequest(input: $i) {{ changeRequest {{ {CHANGE_REQUEST} }} {ERRORS} }}
}}"""

CHANGE_REQUEST_BY_ID = f"""
query($id: ID!) {{ node(id: $id) {{ ... on ChangeRequest {{ {CHANGE_REQUEST} }} }} }}"""


async def propose(gql: Any, token: str | None = None, **input: Any) -> dict:
    return (await gql(PROPOSE, {"i": input}, token=token))["proposeSegmentChange"]


async def review(
    gql: Any, request_id: str, decision: str, token: str | None = None, **extra: Any
) -> dict:
    variables = {"i": {"id": request_id, "decision": decision, **extra}}
    return (await gql(REVIEW, variables, token=token))["reviewChangeRequest"]


async def apply_request(gql: Any, request_id: str, token: str | None = None, **extra: Any) -> dict:
    return (await gql(APPLY, {"i": {"id": request_id, **extra}}, token=token))["applyChangeRequest"]


async def withdraw(gql: Any, request_id: str, token: str | None = None) -> dict:
    return (await gql(WITHDRAW, {"i": {"id": request_id}}, token=token))["withdrawChangeRequest"]


async def change_request(gql: Any, request_id: str, token: str | None = None) -> dict | None:
    return (await gql(CHANGE_REQUEST_BY_ID, {"id": request_id}, token=token))["node"]


async def editor_token(database_url: str, project: Any, name: str) -> str:
    """Another editor key of the project, with its own name (a distinct reviewer)."""
    from db import api_keys

    conn = await connect(database_url)
    try:
        return await api_keys.create_api_key(conn, project.id, "editor", name)
    finally:
        await conn.close()
