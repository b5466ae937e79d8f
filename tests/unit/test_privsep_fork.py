"""The privsep fork server's protocol, with a stand-in for oslo.privsep's `daemon.helper_main` (no cloud).

The stand-in behaves like the real helper: it writes to stderr, forks a long-lived "daemon" and returns
in the parent. The real one runs in CI's embedded cloud, where every neutron agent's and nova-compute's
privsep daemon is forked this way."""
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from popek.checks.localcloud import dataplane, privsep_fork

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


# --- namespace sockets: made by a thread that enters the namespace, not by a forked child ---

SIOCGSKNS = 0x894C  # linux/sockios.h: an fd of the socket's network namespace


def fake_netns(run_dir):
    calls = []

    def create_socket(**kwargs):
        calls.append(kwargs)
        return "original"

    return types.SimpleNamespace(create_socket=create_socket, NETNS_RUN_DIR=str(run_dir)), calls


def test_only_an_existing_named_namespace_takes_the_thread_path(tmp_path, monkeypatch):
    (tmp_path / "qdhcp-1").write_text("")
    module, calls = fake_netns(tmp_path)
    made = []
    monkeypatch.setattr(privsep_fork, "netns_socket", lambda path, *a: made.append((path, *a)) or "thread")
    assert privsep_fork.fast_netns_sockets(module) is True
    assert privsep_fork.fast_netns_sockets(module) is False  # wrapped once only
    create = module.create_socket
    assert create(netns="qdhcp-1", family=16, socket_type=2, proto=0, flags=0) == "thread"
    assert made == [(str(tmp_path / "qdhcp-1"), 16, 2, 0)]
    # no namespace, an fd, a namespace that does not exist, one to create exclusively: pyroute2's own way
    assert create(netns=None, family=16) == "original"
    assert create(fileno=7) == "original"
    assert create(netns="qrouter-2", flags=0) == "original"
    assert create(netns="qdhcp-1", flags=os.O_CREAT | os.O_EXCL) == "original"
    assert [c["netns"] for c in calls] == [None, None, "qrouter-2", "qdhcp-1"] and len(made) == 1


def test_a_failed_thread_path_falls_back_to_the_original(tmp_path, monkeypatch):
    (tmp_path / "qrouter-1").write_text("")
    module, calls = fake_netns(tmp_path)

    def refused(*_):
        raise PermissionError(1, "setns")

    monkeypatch.setattr(privsep_fork, "netns_socket", refused)
    privsep_fork.fast_netns_sockets(module)
    assert module.create_socket(netns="qrouter-1", flags=0, libc="c") == "original"
    assert calls == [{"netns": "qrouter-1", "family": socket.AF_INET, "socket_type": socket.SOCK_STREAM,
                      "proto": 0, "fileno": None, "flags": 0, "libc": "c"}]


def test_the_socket_lives_in_the_namespace_and_no_thread_of_ours_moves():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("entering a network namespace needs root and unshare(1)")
    holder = subprocess.Popen(["unshare", "--net", "sleep", "30"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        for _ in range(100):  # until unshare has exec'd sleep in the new namespace
            if os.stat(path).st_ino != os.stat("/proc/self/ns/net").st_ino:
                break
            subprocess.run(["sleep", "0.02"])
        ours = os.stat("/proc/thread-self/ns/net").st_ino
        sock = privsep_fork.netns_socket(path, socket.AF_INET, socket.SOCK_DGRAM, 0)
        with sock:
            ns_fd = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
            try:
                assert os.fstat(ns_fd).st_ino == os.stat(path).st_ino != ours
            finally:
                os.close(ns_fd)
        assert os.stat("/proc/thread-self/ns/net").st_ino == ours
        with pytest.raises(OSError):
            privsep_fork.netns_socket("/nonexistent/ns", socket.AF_INET, socket.SOCK_DGRAM, 0)
    finally:
        holder.kill()
        holder.wait()
