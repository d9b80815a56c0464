"""Who may do what: a token sees its own project only, editors and admins write, and only
admins change a project's settings."""

from db.api_keys import Principal
from rules.problems import Problem, ProblemCode


class Forbidden(Exception):
    """The caller's key may only read. Faces answer FORBIDDEN (GraphQL) or 403 (REST)."""

    def __init__(
        self, message: str = "This API key may only read; writes need an editor key."
    ) -> None:
        super().__init__(message)


def require_editor(principal: Principal) -> None:
    if not principal.can_write:
        raise Forbidden()


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only an admin key may do this.")


def project_id_for(principal: Principal, project_key: str) -> int | None:
    """The caller's project id when it is the one named, else None: another project reads
    exactly like one that does not exist."""
    return principal.project_id if project_key == principal.project_key else None


def project_problems(project_id: int | None) -> list[Problem]:
    """The problem of an input naming a project the caller cannot see, if it does."""
    if project_id is None:
        return [Problem(("input", "projectKey"), ProblemCode.NOT_FOUND, "No such project.")]
    return []
