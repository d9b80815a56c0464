"""Every `sh` and `graphql` block of README.md runs, in order, in one shell against a fresh
`segments serve`, so the docs cannot rot. A block right after `<!-- not run: reason -->`
is skipped; one after `<!-- expect: CODE -->` must answer that user error code."""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse

from tests.serve import ROOT, Server

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
MARKER = re.compile(r"<!-- (not run|expect): (.+?) -->")
USER_ERRORS = re.compile(r'"userErrors":\s*\[\s*\{')


@dataclass
class Block:
    line: int
    lang: str
    text: str
    not_run: str | None
    expect: str | None


def readme_blocks() -> list[Block]:
    text = README.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        if match[1] not in ("sh", "graphql"):
            continue
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        marker = MARKER.fullmatch(before)
        kind, reason = (marker[1], marker[2]) if marker else (None, None)
        blocks.append(
            Block(
                line=text.count("\n", 0, match.start()) + 1,
                lang=match[1],
                text=match[2],
                not_run=reason if kind == "not run" else None,
                expect=reason if kind == "expect" else None,
            )
        )
    return blocks


def test_every_readme_block_runs_or_says_why_not():
    blocks = readme_blocks()
    run = [b for b in blocks if b.not_run is None]
    assert len(run) >= 15, "the README test found suspiciously few blocks"
    for block in run:
        assert "127.0.0.1:8000" not in block.text and "localhost:8000" not in block.text, (
            f"README line {block.line}: read the port from $PORT / $URL"
        )
        if block.lang == "graphql":
            operations = [
                d for d in parse(block.text).definitions if isinstance(d, OperationDefinitionNode)
            ]
            assert len(operations) == 1, f"README line {block.line}: one operation per block"


def test_every_readme_example_runs_against_a_fresh_server(tmp_path, unused_tcp_port):
    venv = Path(sys.prefix)
    if not (venv / "bin" / "segments").exists():
        pytest.skip(f"the README runs .venv/bin/segments; {venv} has no segments script")
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(venv)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SEGMENTS_DATA_DIR")}
    env["PORT"] = str(unused_tcp_port)
    server = Server(unused_tcp_port, env, cwd=work, command=[".venv/bin/segments"])
    try:
        server.wait_ready()
        blocks = [b for b in readme_blocks() if b.not_run is None]
        script = ["set -euo pipefail"]
        for index, block in enumerate(blocks):
            script.append(f"printf '\\n@@block {index}\\n'")  # after output without a newline
            if block.lang == "sh":
                script.append(block.text)
            else:  # as GraphiQL would send it, with the editor token the shell holds
                payload = work / f"block-{index}.json"
                payload.write_text(json.dumps({"query": block.text}))
                script.append(
                    f'curl -s "$URL" -H "Authorization: Bearer $TOKEN" '
                    f"-H 'Content-Type: application/json' --data-binary @{payload}; echo"
                )
        script.append("printf '\\n@@end\\n'")
        shell = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
    finally:
        server.stop()

    sections = re.split(r"^@@block (\d+)\n", shell.stdout, flags=re.M)[1:]
    outputs = {int(sections[i]): sections[i + 1] for i in range(0, len(sections), 2)}
    ran = max(outputs, default=-1)
    if shell.returncode != 0 or "@@end" not in shell.stdout:
        block = blocks[ran] if ran >= 0 else None
        raise AssertionError(
            f"README block at line {block.line if block else '?'} failed "
            f"(exit {shell.returncode}):\n{block.text if block else ''}\n--- output:\n"
            f"{outputs.get(ran, '')}\n--- stderr:\n{shell.stderr[-3000:]}"
        )
    for index, block in enumerate(blocks):
        out = outputs[index].replace("@@end\n", "")
        where = f"README block at line {block.line}:\n{block.text}\n--- output:\n{out}"
        assert '"errors":' not in out, where
        if block.expect:
            assert re.search(rf'"code":\s*"{block.expect}"', out), where
        else:
            assert not USER_ERRORS.search(out), where
        if block.lang == "graphql":
            assert json.loads(out)["data"], where

    # The examples did what they say: the members export holds the EU premium profiles.
    exported = (work / "members.ndjson").read_text().splitlines()
    assert {json.loads(line)["targetingKey"] for line in exported} == {"user-1", "user-3", "user-5"}
