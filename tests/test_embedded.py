"""The embedded PostgreSQL lives and dies with the `segments serve` that started it."""

import json
import signal
import subprocess

import pytest

from tests.serve import Server, embedded_env, gone_soon, postmaster_pid
from tests.test_cli import run


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl_c"])
def test_stopping_serve_stops_its_embedded_postgres(tmp_path, unused_tcp_port, sig):
    data = tmp_path / "data"
    server = Server(unused_tcp_port, embedded_env(data))
    server.wait_ready()
    postmaster = postmaster_pid(data)

    server.stop(sig)

    assert gone_soon(postmaster), "the embedded PostgreSQL outlived its server"
    assert "Traceback" not in server.stderr, server.stderr


def test_a_dead_servers_pid_does_not_keep_the_next_server_from_stopping_postgres(
    tmp_path, unused_tcp_port
):
    data = tmp_path / "data"
    assert run("migrate", database_url=None, env={"SEGMENTS_DATA_DIR": str(data)}).returncode == 0
    # A server killed with SIGKILL never deregisters: its pid stays in the owners' list.
    dead = subprocess.Popen(["true"])
    dead.wait()
    (data / "pg" / ".handle_pids.json").write_text(json.dumps([dead.pid]))
    server = Server(unused_tcp_port, embedded_env(data))
    server.wait_ready()
    postmaster = postmaster_pid(data)

    server.stop()

    assert gone_soon(postmaster), "a stale pid kept the embedded PostgreSQL running"
