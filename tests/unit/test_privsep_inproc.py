"""privsep_inproc.py, the launcher that runs a service's oslo.privsep contexts in-process: with stand-ins for
oslo.privsep's PrivContext and pyroute2.netns (no cloud, no root)."""
from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import types

import pytest

from popek.checks.localcloud import dataplane, privsep_inproc

SCRIPT = str(dataplane.PRIVSEP_INPROC_SCRIPT)


class FakeContext:
    """What oslo.privsep 3.12's PrivContext does with client mode: `_wrap` sends the call to its daemon."""

    def __init__(self, prefix, cfg_section="privsep", capabilities=None):
        self.prefix, self.client_mode, self.started = prefix, True, False

    def set_client_mode(self, enabled):
        self.client_mode = enabled

    def call(self, func, *args):
        if self.client_mode:
            self.started = True
            return "sent to a daemon"
        return func(*args)


def test_contexts_created_after_the_hook_run_their_calls_in_process():
    module = types.SimpleNamespace(PrivContext=type("PrivContext", (FakeContext,), {}))
    assert privsep_inproc.in_process(module) is True
    assert privsep_inproc.in_process(module) is False  # wrapped once only
    ctx = module.PrivContext("neutron.privileged", cfg_section="privsep", capabilities=[12])
    assert ctx.client_mode is False and ctx.prefix == "neutron.privileged"
    assert ctx.call(lambda a: a * 2, 21) == 42 and not ctx.started


def test_an_oslo_privsep_without_the_api_is_left_alone():
    module = types.SimpleNamespace(PrivContext=type("PrivContext", (), {"__init__": lambda self: None}))
    assert privsep_inproc.in_process(module) is False
    assert privsep_inproc.in_process(types.SimpleNamespace()) is False


def test_the_launcher_runs_the_program_as_main_with_hooks_applied_at_import(tmp_path):
    """In a fresh interpreter: the program gets its argv, and the hooked modules (imported by the program,
    not by the launcher) are changed once imported; the launcher imports neither itself."""
    lib = tmp_path / "lib"
    (lib / "oslo_privsep").mkdir(parents=True)
    (lib / "oslo_privsep" / "__init__.py").write_text("")
    (lib / "oslo_privsep" / "priv_context.py").write_text(textwrap.dedent("""
        class PrivContext:
            def __init__(self, prefix):
                self.client_mode = True
            def set_client_mode(self, enabled):
                self.client_mode = enabled
    """))
    (lib / "pyroute2").mkdir()
    (lib / "pyroute2" / "__init__.py").write_text("")
    (lib / "pyroute2" / "netns.py").write_text("NETNS_RUN_DIR = '/run/netns'\ndef create_socket(netns=None, **kw):\n"
                                               "    return 'forked child'\n")
    program = tmp_path / "service.py"
    program.write_text(textwrap.dedent("""
        import sys
        print("hooked before:", "oslo_privsep.priv_context" in sys.modules, "pyroute2.netns" in sys.modules)
        from oslo_privsep import priv_context
        import pyroute2.netns
        print("client_mode:", priv_context.PrivContext("x").client_mode)
        print("fast:", getattr(pyroute2.netns.create_socket, "popek_fast_netns", False))
        print("argv:", sys.argv, __name__)
        sys.exit(3)
    """))
    proc = subprocess.run([sys.executable, "-P", SCRIPT, str(program), "--config-file", "a.conf"],
                          env={"PYTHONPATH": str(lib)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert "hooked before: False False" in proc.stdout
    assert "client_mode: False" in proc.stdout and "fast: True" in proc.stdout
    assert f"argv: ['{program}', '--config-file', 'a.conf'] __main__" in proc.stdout


def test_without_a_program_it_says_how_to_call_it():
    proc = subprocess.run([sys.executable, "-P", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_a_terminal_opened_by_a_hooked_module_never_becomes_the_controlling_terminal():
    """nova's readpty opens a guest's pty with open(): in a session leader without a terminal (every service
    here), that pty became nova-compute's controlling terminal and its hangup a SIGHUP that ended it. In a
    new session (setsid: a leader, no terminal), a pty opened through the hooked module's `open` is not
    acquired; the unhooked builtin open is (the control: the hazard is real on this kernel)."""
    code = textwrap.dedent(f"""
        import os, sys, types
        sys.path.insert(0, {str(dataplane.PRIVSEP_INPROC_SCRIPT.parent)!r})
        import privsep_inproc
        os.setsid()
        master, slave = os.openpty()
        name = os.ttyname(slave)
        os.close(slave)
        module = types.ModuleType("nova.privsep.libvirt")
        if sys.argv[1] == "hooked":
            privsep_inproc.no_controlling_tty(module)
        opener = getattr(module, "open", open)
        with opener(name, "r") as f:
            pass
        try:
            os.close(os.open("/dev/tty", os.O_RDONLY))
            print("controlling terminal: yes")
        except OSError:
            print("controlling terminal: no")
    """)
    results = {}
    for arm in ("hooked", "builtin"):  # a fresh child: setsid needs a process that leads no group
        out = subprocess.run([sys.executable, "-c", code, arm], capture_output=True, text=True, timeout=60)
        results[arm] = out.stdout + out.stderr
    assert "controlling terminal: no" in results["hooked"], results
    assert "controlling terminal: yes" in results["builtin"], results


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
    monkeypatch.setattr(privsep_inproc, "netns_socket", lambda path, *a: made.append((path, *a)) or "thread")
    assert privsep_inproc.fast_netns_sockets(module) is True
    assert privsep_inproc.fast_netns_sockets(module) is False  # wrapped once only
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

    monkeypatch.setattr(privsep_inproc, "netns_socket", refused)
    privsep_inproc.fast_netns_sockets(module)
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
        sock = privsep_inproc.netns_socket(path, socket.AF_INET, socket.SOCK_DGRAM, 0)
        with sock:
            ns_fd = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
            try:
                assert os.fstat(ns_fd).st_ino == os.stat(path).st_ino != ours
            finally:
                os.close(ns_fd)
        assert os.stat("/proc/thread-self/ns/net").st_ino == ours
        with pytest.raises(OSError):
            privsep_inproc.netns_socket("/nonexistent/ns", socket.AF_INET, socket.SOCK_DGRAM, 0)
    finally:
        holder.kill()
        holder.wait()
