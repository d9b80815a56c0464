"""The profile and member API tests share one database and app per module (tests/module_app.py)."""

from tests.module_app import database_url, gql, other_project, project, shared  # noqa: F401
