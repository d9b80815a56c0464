"""The GraphiQL page and its assets come from this server, long-cached, under a same-origin
Content-Security-Policy; the package ships them (the browser itself: test_graphiql_browser)."""

import re
import shutil
import subprocess
import sys
import zipfile

from api.assets import ASSETS, PAGE_FILES
from tests.serve import ROOT

HTML = {"Accept": "text/html"}


async def page_assets(client) -> list[str]:
    page = await client.get("/graphql", headers=HTML)
    assert page.status_code == 200
    return re.findall(r'(?:src|href)="([^"]+)"', page.text)


async def test_the_page_loads_nothing_from_another_origin(client):
    page = await client.get("/graphql", headers=HTML)
    references = await page_assets(client)
    assert len(references) == len(PAGE_FILES)
    assert all(ref.startswith("/static/") for ref in references), references
    assert "http" not in page.text.replace("http-equiv", "")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "<script>" not in page.text  # no inline script: the policy would block it
    assert page.headers["cache-control"] == "no-cache"


async def test_every_asset_is_served_with_an_immutable_versioned_url(client):
    for ref in await page_assets(client):
        response = await client.get(ref)
        assert response.status_code == 200, ref
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        expected = "text/css" if ref.endswith(".css") else "text/javascript"
        assert response.headers["content-type"].startswith(expected), (ref, response.headers)
        name = ref.split("/", 3)[3]
        assert response.content == ASSETS[name].body


async def test_an_asset_under_an_old_digest_or_unknown_name_is_not_found(client):
    assert (await client.get("/static/0000000000000000/graphiql.js")).status_code == 404
    digest = ASSETS["graphiql.js"].digest
    assert (await client.get(f"/static/{digest}/vendor/README.md")).status_code == 404
    assert (await client.get(f"/static/{digest}/..%2Fsettings.py")).status_code == 404


def test_the_example_uses_props_that_graphiql_3_8_3_has():
    script = (ROOT / "api/static/graphiql.js").read_text()
    bundle = ASSETS["vendor/graphiql-3.8.3/graphiql.min.js"].body.decode()
    props = set(
        re.findall(
            r"^\s+(?:\.\.\.\(\w+ \? \{ )?(\w+)(?=[:,]| \})",
            script.split("createElement(GraphiQL,")[1],
            re.M,
        )
    )
    assert {"defaultQuery", "variables", "defaultHeaders", "shouldPersistHeaders"} <= props
    for prop in props - {"fetcher"}:
        assert re.search(rf"\b{prop}\b", bundle), f"graphiql 3.8.3 has no prop {prop}"
    assert "defaultVariables" not in props
    assert "shouldPersistHeaders: false" in script


def test_the_built_package_ships_the_page_its_assets_and_their_licences(tmp_path):
    # From a copy: setuptools leaves build/ behind, and a stale build/lib could hide a file
    # that package-data no longer lists.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv",
            ".data",
            "build",
            "*.egg-info",
            "__pycache__",
            ".git",
            "node_modules",
            ".hypothesis",
        ),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"api/static/{name}" for name in (*PAGE_FILES, "graphiql.html")}
    licences = {
        f"api/static/vendor/{folder}/LICENSE"
        for folder in ("react-18.3.1", "react-dom-18.3.1", "graphiql-3.8.3")
    }
    assert expected | licences <= names, (expected | licences) - names
