"""GraphiQL in a real browser with every network but loopback blocked: the page loads, a
pasted token runs the prefilled example, and no request leaves this machine."""

import json
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from api.seed import DEMO_PROJECT, seed_demo
from db.pool import connect
from tests.serve import Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _missing() -> str | None:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return (
            "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (pip install -e '.[test]')"
    return None


@pytest.fixture
def browser(tmp_path):
    missing = _missing()
    if missing:
        if os.environ.get("CI"):  # .ci/run installs all of it: a skip there would hide a gap
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'chromium'}",
        # Offline but for loopback: no name resolves except 127.0.0.1, and anything else
        # goes to a proxy on a port where nothing listens (loopback bypasses proxies).
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(what: str, check, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# The tool pane holds the variables and headers editors; the one not hidden is shown.
HEADERS_EDITOR = """
const editors = [...document.querySelectorAll('.graphiql-editor-tool .graphiql-editor')]
  .filter(e => !e.classList.contains('hidden')).map(e => e.querySelector('.CodeMirror'));
return editors.length === 1 && editors[0] ? editors[0] : null;
"""


async def test_graphiql_runs_the_example_offline_with_a_pasted_token(
    database_url, unused_tcp_port, browser, tmp_path
):
    conn = await connect(database_url)
    try:
        token = await seed_demo(conn, DEMO_PROJECT)
    finally:
        await conn.close()
    server = Server(unused_tcp_port, {**os.environ, "DATABASE_URL": database_url})
    started = time.monotonic()
    try:
        server.wait_ready()
        base = server.url
        browser.get(f"{base}/graphql")
        headers_editor = _wait(
            "GraphiQL's headers editor", lambda: browser.execute_script(HEADERS_EDITOR)
        )
        # The example is prefilled: query, variables and a headers stub to complete.
        query = browser.execute_script(
            "return document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.getValue()"
        )
        assert "query Start($project: String!)" in query
        assert query.index("attributes(projectKey: $project") < query.index("segments(")
        assert json.loads(
            browser.execute_script("return arguments[0].CodeMirror.getValue()", headers_editor)
        ) == {"Authorization": "Bearer "}

        # Put the cursor after "Bearer " and type the token, as a person pasting it would.
        browser.execute_script(
            """const cm = arguments[0].CodeMirror; cm.focus();
               const line = cm.getValue().split('\\n').findIndex(l => l.includes('Bearer'));
               cm.setCursor({line, ch: cm.getLine(line).indexOf('Bearer ') + 7});""",
            headers_editor,
        )
        browser.switch_to.active_element.send_keys(token)
        browser.find_element("css selector", ".graphiql-execute-button").click()

        def result():
            text = browser.execute_script(
                "const r = document.querySelector('.result-window .CodeMirror');"
                "return r ? r.CodeMirror.getValue() : ''"
            )
            return text if '"data"' in text or '"errors"' in text else None

        answer = json.loads(_wait("the result pane", result))
        assert "errors" not in answer, answer
        assert answer["data"]["attributes"]["totalCount"] > 0
        segments = answer["data"]["segments"]
        assert segments["totalCount"] == 9
        assert "eu_premium_users" in {node["key"] for node in segments["nodes"]}
        elapsed = time.monotonic() - started

        time.sleep(1)  # GraphiQL writes its tabs to localStorage after 500 ms
        stored = browser.execute_script("return JSON.stringify(window.localStorage)")
        assert token not in stored, "the pasted token was persisted"

        requests = [
            json.loads(entry["message"])["message"]["params"]["request"]["url"]
            for entry in browser.get_log("performance")
            if '"Network.requestWillBeSent"' in entry["message"]
        ]
        # Network requests only (not data: fonts, not chrome:// pages of the blank start tab).
        network = [
            url for url in requests if urlsplit(url).scheme in ("http", "https", "ws", "wss")
        ]
        assert {urlsplit(url).hostname for url in network} == {"127.0.0.1"}, network
        assert any(url.endswith("/graphql") for url in requests)
        # Blocked loads and CSP violations are logged to the console. (Not the 401 of the
        # schema request GraphiQL sends before a token is pasted, nor /favicon.ico's 404.)
        problems = [
            e["message"]
            for e in browser.get_log("browser")
            if "Content Security Policy" in e["message"] or "net::ERR" in e["message"]
        ]
        assert problems == [], problems
        print(f"GraphiQL loaded and answered in {elapsed:.1f} s")
    finally:
        server.stop()
