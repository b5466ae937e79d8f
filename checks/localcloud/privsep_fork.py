"""A fork server for oslo.privsep daemons: one preloaded interpreter forks them instead of each being exec'd.

Run by the cloud venv's Python, never imported by popek (the cloud venv has no popek; this file uses
the standard library until `serve` imports oslo.privsep and the packages it preloads).

Why: every neutron agent starts up to four privsep daemons (contexts default, namespace, link,
dhcp_release, ovs_vsctl). Each one, exec'd as `privsep-helper`, imports neutron anew: 2 300 modules and
~107 MiB of private memory per daemon, ~800 MiB for the dataplane's eleven (measured, PSS). Forked from a
server that has imported them once, with `gc.freeze()`, they share those pages copy-on-write.

What runs in the fork is oslo.privsep's own `daemon.helper_main()`, unchanged, with the argv the agent's
`helper_command` gives (config files, `--privsep_context`, `--privsep_sock_path`): it connects back to
the agent's socket, forks the daemon and returns; the fork then exits 0, as `privsep-helper` would.

Netlink sockets in a namespace (`fast_netns_sockets`): pyroute2 0.9 opens each one in a forked child that
enters the namespace and hands the socket back, and neutron opens a new one for nearly every privileged
call in a qrouter-/qdhcp- namespace. Forking a daemon of ~115 MiB costs ~19 ms of CPU (parent and child,
measured here), against ~1.5 ms for a short-lived thread that enters the namespace (setns moves the calling
thread only) and makes the same socket there. The daemons forked by this server take that path for a
namespace that exists; anything else goes to pyroute2's own.

- `python privsep_fork.py serve SOCKET PACKAGE...`: preload every module of each PACKAGE, then serve.
- `python -I -S privsep_fork.py SOCKET ARG...`: the helper command. It hands its stdin/stdout/stderr and
  ARGs to the server, and exits with the forked helper's status (1 if the server cannot be reached).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time

#: the longest a forked helper may take to connect back and fork its daemon
HELPER_TIMEOUT_S = 60


def client(path: str, args: list[str]) -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(path)
        except OSError as e:
            print(f"privsep_fork: no fork server at {path}: {e}", file=sys.stderr)
            return 1
        socket.send_fds(sock, [json.dumps(args).encode()], [0, 1, 2])
        sock.shutdown(socket.SHUT_WR)
        reply = b""  # the status, one line ("0\n"); read to the newline, not to EOF
        while not reply.endswith(b"\n") and (chunk := sock.recv(64)):
            reply += chunk
    try:
        return int(reply)
    except ValueError:
        print("privsep_fork: the fork server closed without a status", file=sys.stderr)
        return 1


def _preload(packages: list[str]) -> None:
    import importlib
    import pkgutil

    importlib.import_module("oslo_privsep.daemon")
    for name in packages:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(getattr(package, "__path__", []), prefix=name + "."):
            if ".tests" in info.name:
                continue
            try:
                importlib.import_module(info.name)
            except Exception as e:  # noqa: BLE001 - the daemon imports it lazily anyway, as privsep-helper does
                print(f"privsep_fork: not preloaded: {info.name}: {e}", file=sys.stderr)


CLONE_NEWNET = 0x40000000


def netns_socket(path: str, family: int, type_: int, proto: int) -> socket.socket:
    """A socket made in the network namespace bound at `path` (a file under /run/netns), by a thread of
    its own that enters the namespace and ends: setns(CLONE_NEWNET) moves the calling thread only, so no
    other thread of this process changes namespace. OSError when the namespace cannot be entered."""
    import ctypes
    import threading

    libc = ctypes.CDLL(None, use_errno=True)
    result: dict = {}

    def enter_and_open() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err), path)
                result["sock"] = socket.socket(family, type_, proto)
            finally:
                os.close(fd)
        except BaseException as e:  # noqa: BLE001 - raised again in the caller's thread
            result["error"] = e

    thread = threading.Thread(target=enter_and_open, name="privsep_fork-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["sock"]


def fast_netns_sockets(netns_module) -> bool:
    """Make `netns_module.create_socket` (pyroute2.netns's) open a socket in an existing named namespace
    with `netns_socket` instead of a forked child; every other case (no namespace, an fd, a namespace
    to create or that does not exist, eventlet's green threads) and any failure of the fast path go to
    the original, which then does and raises what it always did. False when there is nothing to wrap."""
    original = getattr(netns_module, "create_socket", None)
    run_dir = getattr(netns_module, "NETNS_RUN_DIR", None)
    if original is None or run_dir is None or getattr(original, "popek_fast_netns", False):
        return False

    def create_socket(netns=None, family=socket.AF_INET, socket_type=socket.SOCK_STREAM, proto=0,
                      fileno=None, flags=os.O_CREAT, libc=None, **kwargs):
        if fileno is None and isinstance(netns, str) and netns and not flags & os.O_EXCL and not _green():
            path = netns if os.path.dirname(netns) else os.path.join(run_dir, netns)
            if os.path.exists(path):
                try:
                    return netns_socket(path, family, socket_type, proto)
                except OSError:
                    pass
        return original(netns=netns, family=family, socket_type=socket_type, proto=proto, fileno=fileno,
                        flags=flags, libc=libc, **kwargs)

    create_socket.popek_fast_netns = True
    create_socket.__wrapped__ = original
    netns_module.create_socket = create_socket
    return True


def _green() -> bool:
    """Whether eventlet made threads green here (a green thread's setns would move the real one)."""
    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher and patcher.is_monkey_patched("thread"))


def _run_helper(conn: socket.socket, listener: socket.socket) -> None:
    """In the fork: become the helper the agent asked for, with its fds and argv."""
    try:
        msg, fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
        if not msg:  # a liveness probe (popek's health check connects and closes)
            os._exit(0)
        args = json.loads(msg)
        conn.close()  # or the daemon forked below would hold the agent's side open
        listener.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        sys.argv = ["privsep-helper", *args]
        from oslo_privsep import daemon

        # Returns in the parent half of its own fork (code 0). The daemon half ends in sys.exit(), which
        # lands in the SystemExit branch below: both halves leave through os._exit, never into serve().
        daemon.helper_main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # noqa: BLE001 - report and exit, as the exec'd helper would
        print(f"privsep_fork: helper failed: {e!r}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _wait(pid: int) -> int:
    deadline = time.monotonic() + HELPER_TIMEOUT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return 1


def serve(path: str, packages: list[str]) -> None:
    import gc

    _preload(packages)
    if "pyroute2.netns" in sys.modules:  # what the preloaded packages use: the forked daemons inherit it
        fast_netns_sockets(sys.modules["pyroute2.netns"])
    gc.collect()
    gc.freeze()  # keep the preloaded objects' pages shared: the collector would write to every one of them
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(16)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"privsep_fork: serving {path}, preloaded {len(sys.modules)} modules", file=sys.stderr, flush=True)
    while True:
        conn, _ = listener.accept()
        with conn:
            pid = os.fork()
            if pid == 0:
                _run_helper(conn, listener)
            code = _wait(pid)
            try:
                conn.sendall(f"{code}\n".encode())
            except OSError:
                pass


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(client(sys.argv[1], sys.argv[2:]))
