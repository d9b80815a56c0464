"""Domain services: one module per domain, one function per use case.

Each use case owns its transaction and locks, checks the caller's role and the limits, and
returns its result or a `Refused` (rules/problems.py). The GraphQL schema (`schema/`), the
REST API (`api/rest/`) and the command line call these functions; SQL stays in `db/`.
"""
