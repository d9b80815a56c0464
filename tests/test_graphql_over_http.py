"""GraphQL over HTTP conformance, checked by the official audit of the graphql-http package."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.serve import live_server

AUDIT = Path(__file__).resolve().parent / "audit"


def _install_audit() -> None:
    if (AUDIT / "node_modules" / "graphql-http").exists():
        return
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "graphql-http@1", "graphql@16"],
        cwd=AUDIT,
        check=True,
        capture_output=True,
        timeout=180,
    )


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js"
)
async def test_graphql_http_audit_reports_no_error_and_no_warning(database_url, project):
    try:
        _install_audit()
    except (subprocess.SubprocessError, OSError) as exc:
        pytest.skip(f"graphql-http could not be installed from the npm registry: {exc}")
    with live_server(database_url) as server:
        url = f"{server.url}/graphql"
        audit = subprocess.run(
            ["node", "graphql_http_audit.mjs", url, project.viewer],
            cwd=AUDIT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert audit.returncode == 0, audit.stderr
        summary = json.loads(audit.stdout.strip().splitlines()[-1])
        assert (summary["error"], summary["warn"]) == (0, 0), summary["problems"]
        assert summary["ok"] > 40
