"""The privsep fork server's protocol, with a stand-in for oslo.privsep's `daemon.helper_main` (no cloud).

The stand-in behaves like the real helper: it writes to stderr, forks a long-lived "daemon" and returns
in the parent. The real one runs in CI's embedded cloud, where every neutron agent's and nova-compute's
privsep daemon is forked this way."""
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from popek.checks.localcloud import dataplane

SCRIPT = str(dataplane.PRIVSEP_FORK_SCRIPT)

STANDIN = textwrap.dedent('''
    import os, sys, time
    def helper_main():
        print("helper argv:", " ".join(sys.argv[1:]), file=sys.stderr, flush=True)
        if "--fail" in sys.argv:
            sys.exit(3)
        if os.fork() == 0:  # the "daemon": outlives the helper, as privsep's does
            open(os.environ["DAEMON_PIDFILE"], "w").write(str(os.getpid()))
            time.sleep(30)
            os._exit(0)
''')


@pytest.fixture
def server(tmp_path):
    pkg = tmp_path / "lib" / "oslo_privsep"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "daemon.py").write_text(STANDIN)
    sock = tmp_path / "fork.sock"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "lib"), "DAEMON_PIDFILE": str(tmp_path / "daemon.pid")}
    proc = subprocess.Popen([sys.executable, SCRIPT, "serve", str(sock)], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield sock, tmp_path / "daemon.pid"
    proc.terminate()
    proc.wait(10)
    if (tmp_path / "daemon.pid").exists():
        try:
            os.kill(int((tmp_path / "daemon.pid").read_text()), 9)
        except ProcessLookupError:
            pass


def helper(sock: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the helper command. Its stderr goes to a file, not a pipe: the daemon keeps the caller's stderr
    open, as the exec'd privsep-helper's daemon does (oslo.privsep reads it line by line, never to EOF)."""
    err = sock.parent / f"stderr-{time.monotonic_ns()}"
    with open(err, "w") as f:
        done = subprocess.run([sys.executable, "-I", "-S", SCRIPT, str(sock), *args], stdin=subprocess.DEVNULL,
                              stdout=f, stderr=f, timeout=20)
    done.stderr = err.read_text()
    return done


def test_the_helper_gets_the_argv_and_the_callers_stderr_and_returns_while_its_daemon_lives(server):
    sock, pidfile = server
    done = helper(sock, "--config-file", "/x.conf", "--privsep_context", "a.b", "--privsep_sock_path", "/tmp/s")
    assert done.returncode == 0, done.stderr
    assert "helper argv: --config-file /x.conf --privsep_context a.b --privsep_sock_path /tmp/s" in done.stderr
    deadline = time.monotonic() + 5
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(int(pidfile.read_text()), 0)  # the daemon runs on after the helper returned


def test_the_helpers_exit_status_is_the_callers(server):
    sock, _ = server
    assert helper(sock, "--fail").returncode == 3


def test_a_liveness_probe_is_not_a_helper_and_the_server_keeps_serving(server):
    sock, _ = server
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(str(sock))
    assert helper(sock, "--fail").returncode == 3


def test_no_server_is_one_clear_message_and_a_failure(tmp_path):
    done = helper(tmp_path / "absent.sock", "--privsep_context", "a.b")
    assert done.returncode == 1
    assert "no fork server at" in done.stderr
