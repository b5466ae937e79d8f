"""A cloud service whose oslo.privsep contexts run in-process, with no privsep daemon: runs INSIDE the cloud's own
venv (`python -P privsep_inproc.py PROGRAM ARG...`, PROGRAM a Python file: a console script or one of popek's
launchers, run as __main__ with argv [PROGRAM, ARG...]); popek itself never imports it.

Why: the services that call privileged code (the neutron agents, nova-compute with os-vif and os-brick) already
run as root here. Through oslo.privsep, each context they use started a daemon on first use (~20 MiB PSS each,
~12 of them after a main job, plus the two fork servers that forked them, privsep_fork.py until this launcher).
oslo.privsep runs a context's entrypoints in the calling process when the context is not in client mode
(`PrivContext.set_client_mode(False)`, what its daemon does to itself and what nova's and neutron's own tests
do): `_wrap` then calls the function directly. This launcher puts every context in that mode as it is created.

What changes for the calls: they run in the caller's thread (both services use native threads here, not
eventlet: nova-compute is launched with nova's threading backend, neutron 29's agents have no eventlet) with
the service's full root powers instead of the context's capability set, and their results are the function's
own objects instead of a msgpack copy. Network namespaces: neutron's privileged code opens netlink sockets in
a namespace through pyroute2 0.9, which forks a child per socket (a child of a service of 100+ MiB: ~19 ms of
CPU each against ~1.5 ms for a thread, measured for the fork server's daemons this launcher replaces);
`fast_netns_sockets` makes it a short-lived thread that enters the namespace, opens the socket and ends
(setns moves the calling thread only), so no thread of the service is ever left inside a guest's namespace.
Nothing else in neutron, nova, os-vif or os-brick calls setns.

Terminals: each service is a session leader (popek starts it in a session of its own), and a session leader
with no controlling terminal that opens a terminal without O_NOCTTY acquires it. nova's privileged `readpty`
(a guest's console pty, read for `console log`) does just that with `open(path)`; in its daemon (never a
session leader) it was harmless, in nova-compute the pty became its controlling terminal and the guest's
deletion hung it up: SIGHUP, which oslo.service's threading launcher turns into SystemExit in the main
thread — measured (13:26, 2026-12-07), nova-compute left its service loop at the smoke instance's deletion,
its RPC threads still up but the deletion itself never finished, every later build stuck in scheduling.
`readpty` here opens with O_NOCTTY (`no_controlling_tty`): the same read, no terminal acquired.

The hooks are applied when the modules are first imported (an import hook), not by importing them first: nova
must monkey-patch (or refuse eventlet) before anything else is imported.
"""
from __future__ import annotations

import importlib.abc
import os
import runpy
import socket
import sys


def in_process(priv_context) -> bool:
    """Make every `PrivContext` created from now on run its entrypoints in-process (client mode off), and the
    ones that already exist. False when the module has no such API any more (then nothing is changed)."""
    cls = getattr(priv_context, "PrivContext", None)
    if cls is None or not hasattr(cls, "set_client_mode") or getattr(cls.__init__, "popek_in_process", False):
        return False
    init = cls.__init__

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.set_client_mode(False)

    __init__.popek_in_process = True
    __init__.__wrapped__ = init
    cls.__init__ = __init__
    return True


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

    thread = threading.Thread(target=enter_and_open, name="popek-netns", daemon=True)
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


def _open_noctty(path, flags):
    return os.open(path, flags | os.O_NOCTTY)


def no_controlling_tty(module) -> None:
    """`open` in `module` (its own global, found before the builtin) never makes a terminal the process's
    controlling terminal: O_NOCTTY added, nothing else changed."""
    import builtins

    def open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True, opener=None):
        return builtins.open(file, mode, buffering, encoding, errors, newline, closefd,
                             opener if opener is not None else _open_noctty)

    module.open = open


#: module -> what to do with it once it is imported
HOOKS = {"oslo_privsep.priv_context": in_process, "pyroute2.netns": fast_netns_sockets,
         "nova.privsep.libvirt": no_controlling_tty}


class _Loader(importlib.abc.Loader):
    def __init__(self, loader, hook):
        self.loader, self.hook = loader, hook

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.hook(module)

    def __getattr__(self, name):  # get_code, get_resource_reader...: the real loader's
        return getattr(self.loader, name)


class AfterImport(importlib.abc.MetaPathFinder):
    """Runs `hooks[name](module)` right after module `name` is executed, found by the other finders."""

    def __init__(self, hooks: dict):
        self.hooks = dict(hooks)

    def find_spec(self, name, path, target=None):
        hook = self.hooks.get(name)
        if hook is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    del self.hooks[name]
                    spec.loader = _Loader(spec.loader, hook)
                return spec
        return None


def main(argv: list[str]) -> None:
    if not argv:
        print("usage: privsep_inproc.py PROGRAM [ARG...]", file=sys.stderr)
        sys.exit(2)
    sys.meta_path.insert(0, AfterImport(HOOKS))
    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
