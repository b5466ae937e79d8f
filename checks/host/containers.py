"""Containers (claim C09): namespaces + cgroups of the host's own kernel, built by hand with libc.

A container is an ordinary process of the host to which the kernel shows a different world
(namespaces: its own PID numbering, hostname, mounts, network, IPC) and which it keeps within limits
(cgroups: number of tasks, memory). Nothing is emulated and no other kernel runs, hence the course's
verdict: equivalence KO (it cannot run another kernel or OS), efficiency OK (native speed), control
OK (limits enforced by the kernel).

Python 3.11 has no os.unshare (3.12+), so unshare/mount/sethostname/prctl go through ctypes.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno as errno_mod
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

from popek.checks.host import workload

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
#: The namespaces of our container, as (flag, name in /proc/PID/ns).
NAMESPACES = ((CLONE_NEWPID, "pid"), (CLONE_NEWUTS, "uts"), (CLONE_NEWNS, "mnt"),
              (CLONE_NEWNET, "net"), (CLONE_NEWIPC, "ipc"))
ALL_NAMESPACES = sum(flag for flag, _ in NAMESPACES)

_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 0x2, 0x4, 0x8, 0x4000, 1 << 18
_PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what} : {os.strerror(err)}")


def unshare(flags: int) -> None:
    """unshare(2): move this process into new namespaces (`flags`: CLONE_NEW* bits)."""
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int) -> None:
    """mount(2) without data."""
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), None), f"mount {target}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, ctypes.c_size_t(len(raw))), "sethostname")


def unshare_probe(flags: int = ALL_NAMESPACES) -> int:
    """Try unshare(flags) in a throwaway child: 0 if it works, else the errno (EPERM when not root)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 0
        try:
            unshare(flags)
        except OSError as exc:
            code = exc.errno or 1
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


# ---------------------------------------------------------------------------------------------------
# Running a function inside a container

class ContainerError(RuntimeError):
    """The function run in the container raised, or the container could not be built."""


def run_in_container(fn: Callable[[], object], hostname: str = "popek-conteneur",
                     flags: int = ALL_NAMESPACES, timeout: float = 60.0):
    """Run `fn()` as PID 1 of a new container and return its (JSON-serialisable) result.

    fn: what to run inside; its return value travels back as JSON through a pipe.
    hostname: the container's own hostname (UTS namespace); flags: the CLONE_NEW* namespaces.
    timeout: seconds before the container is killed (ContainerError).

    Two forks: unshare(CLONE_NEWPID) only affects the caller's *children*, so a first child
    unshares, and its child is PID 1 of the new PID namespace. That one makes / private (so that
    nothing mounted inside leaks out), mounts a fresh /proc (which then shows only the container's
    processes), sets the hostname and runs fn. PR_SET_PDEATHSIG ties it to its parent.
    """
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        _middle(fn, hostname, flags, r, w)
    os.close(w)
    data, deadline = b"", time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                raise ContainerError(f"le conteneur n'a pas répondu en {timeout:.0f} s")
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(r)
        with contextlib.suppress(ProcessLookupError):
            if data == b"" or time.monotonic() >= deadline:
                os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    try:
        payload = json.loads(data)
    except ValueError:
        raise ContainerError(f"le conteneur s'est terminé sans résultat ({data[:200]!r})") from None
    if not payload.get("ok"):
        raise ContainerError(payload.get("error", "erreur inconnue dans le conteneur"))
    return payload["value"]


def _middle(fn, hostname, flags, r, w):  # pragma: no cover - runs in the child
    status = 1
    try:
        os.close(r)
        unshare(flags)
        inner = os.fork()
        if inner == 0:
            _inner(fn, hostname, flags, w)
        os.close(w)
        status = os.waitstatus_to_exitcode(os.waitpid(inner, 0)[1]) & 0xFF
    except BaseException as exc:
        _send(w, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    finally:
        os._exit(status)


def _inner(fn, hostname, flags, w):  # pragma: no cover - runs in the container
    code = 1
    try:
        try:
            _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if flags & CLONE_NEWUTS:
                sethostname(hostname)
            if flags & CLONE_NEWNS:
                mount(None, "/", None, _MS_REC | _MS_PRIVATE)
                if flags & CLONE_NEWPID:
                    mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
            payload = {"ok": True, "value": fn()}
        except BaseException as exc:
            payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        _send(w, payload)
        code = 0
    finally:
        os._exit(code)


def _send(w: int, payload: dict) -> None:
    data = json.dumps(payload, default=str).encode()
    while data:
        data = data[os.write(w, data):]


# ---------------------------------------------------------------------------------------------------
# What a process sees (inside or outside)

def view() -> dict:
    """What the calling process sees of its world: PID, hostname, processes, interfaces, kernel, namespaces."""
    uname = os.uname()
    return {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "processes": sorted(int(d) for d in os.listdir("/proc") if d.isdigit()),
        "interfaces": sorted(name for _, name in socket.if_nameindex()),
        "kernel_release": uname.release,
        "kernel_version": uname.version,
        "namespaces": {name: os.readlink(f"/proc/self/ns/{name}") for _, name in NAMESPACES},
    }


@dataclass(frozen=True)
class Comparison:
    """The host's view and the container's view side by side."""
    host: dict
    container: dict

    @property
    def separate_namespaces(self) -> list[str]:
        return [n for n in self.host["namespaces"] if self.host["namespaces"][n] != self.container["namespaces"][n]]

    @property
    def same_kernel(self) -> bool:
        return (self.host["kernel_release"], self.host["kernel_version"]) == \
            (self.container["kernel_release"], self.container["kernel_version"])


def compare(hostname: str = "popek-conteneur") -> Comparison:
    """view() on the host and in a fresh container (all five namespaces) named `hostname`."""
    return Comparison(view(), run_in_container(view, hostname))


# ---------------------------------------------------------------------------------------------------
# Efficiency: the workload inside the container

def _workload_inside(iterations: int, samples: int) -> dict:
    run = workload.run_native(iterations, samples, clock=time.thread_time_ns)
    return {"result": run.result, "samples": list(run.timing.samples), "pid": os.getpid()}


def run_workload(iterations: int = 20_000_000, samples: int = 5) -> workload.WorkloadRun:
    """workload.CODE run natively by PID 1 of a container (all five namespaces).

    iterations: n for the result and the timing (the short count is n // 10); samples: timing samples.
    The clock is the thread's CPU time (time.thread_time_ns): compare with
    workload.run_native(..., clock=time.thread_time_ns) on the host.
    """
    from popek.checks.host.timing import Timing
    out = run_in_container(lambda: _workload_inside(iterations, samples))
    return workload.WorkloadRun("conteneur", iterations, int(out["result"]), Timing(tuple(out["samples"])),
                                "le code tourne directement sur le processeur, dans des espaces de noms",
                                {"pid_in_container": out["pid"], "clock": "thread_time_ns"})


def against_native(iterations: int = 20_000_000, samples: int = 5):
    """Time the workload on the host and in a container, both with the thread's CPU time.

    Returns (native run, container run, timing.Ratio container / native).
    """
    from popek.checks.host.timing import Ratio
    native = workload.run_native(iterations, samples, clock=time.thread_time_ns)
    inside = run_workload(iterations, samples)
    return native, inside, Ratio(inside.executor, native.executor, inside.timing.median, native.timing.median)


# ---------------------------------------------------------------------------------------------------
# Control: cgroups (v1 controller hierarchies, or the v2 unified hierarchy)

@dataclass(frozen=True)
class Hierarchy:
    """Where a cgroup controller is mounted: version 1 (its own hierarchy) or 2 (unified)."""
    controller: str
    version: int
    root: str


def find_hierarchy(controller: str, mounts: str = "/proc/self/mounts") -> Hierarchy | None:
    """The hierarchy holding `controller` ("pids", "memory"), or None if it is not mounted anywhere.

    controller: cgroup controller name; mounts: the mount table to read.
    A v1 hierarchy lists its controllers in its mount options; a v2 one in cgroup.controllers.
    """
    try:
        with open(mounts) as f:
            lines = [line.split() for line in f]
    except OSError:
        return None
    for fields in lines:
        if len(fields) >= 4 and fields[2] == "cgroup" and controller in fields[3].split(","):
            return Hierarchy(controller, 1, _unescape(fields[1]))
    for fields in lines:
        if len(fields) >= 4 and fields[2] == "cgroup2":
            root = _unescape(fields[1])
            try:
                with open(os.path.join(root, "cgroup.controllers")) as f:
                    if controller in f.read().split():
                        return Hierarchy(controller, 2, root)
            except OSError:
                continue
    return None


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


#: Limit files per (controller, version); swap limits keep the memory test honest on hosts with swap.
_LIMIT_FILES = {("pids", 1): ["pids.max"], ("pids", 2): ["pids.max"],
                ("memory", 1): ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
                ("memory", 2): ["memory.max", "memory.swap.max"]}


@dataclass(frozen=True)
class Cgroup:
    """A cgroup of ours: its directory and hierarchy."""
    path: str
    hierarchy: Hierarchy

    def read(self, name: str) -> str:
        with open(os.path.join(self.path, name)) as f:
            return f.read()

    def counters(self, name: str) -> dict[str, int]:
        """A flat keyed file ("oom_kill 1\\nmax 3") as a dict."""
        try:
            return {k: int(v) for k, v in (line.split() for line in self.read(name).splitlines()
                                           if len(line.split()) == 2 and line.split()[1].lstrip("-").isdigit())}
        except OSError:
            return {}

    def join(self, pid: int = 0) -> None:
        """Move process `pid` (0: the caller) into this cgroup."""
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))


@contextlib.contextmanager
def limited_cgroup(controller: str, limit: int, prefix: str = "popek-"):
    """Create a cgroup limiting `controller` to `limit`, yield it, then kill what is left in it and remove it.

    controller: "pids" (limit: number of tasks) or "memory" (limit: bytes, swap limited likewise
    or to 0); prefix: name prefix of the directory (a random suffix keeps parallel runs apart).
    """
    h = find_hierarchy(controller)
    if h is None:
        raise FileNotFoundError(f"contrôleur cgroup {controller} introuvable (ni v1 ni v2)")
    if h.version == 2:  # the controller must be enabled for the root's children
        with open(os.path.join(h.root, "cgroup.subtree_control"), "w") as f:
            f.write(f"+{controller}")
    path = os.path.join(h.root, f"{prefix}{controller}-{os.getpid()}-{secrets.token_hex(3)}")
    os.mkdir(path)
    cg = Cgroup(path, h)
    try:
        files = _LIMIT_FILES[(controller, h.version)]
        for i, name in enumerate(files):
            target = os.path.join(path, name)
            if i and not os.path.exists(target):
                continue  # swap accounting off: no swap limit file, nothing to limit
            with open(target, "w") as f:
                f.write("0" if (controller, h.version, i) == ("memory", 2, 1) else str(limit))
        yield cg
    finally:
        remove_cgroup(path)


def remove_cgroup(path: str, timeout: float = 5.0) -> None:
    """Kill every process left in cgroup `path` and remove it (tolerates "already gone")."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(os.path.join(path, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except FileNotFoundError:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:  # EBUSY while the killed tasks are being reaped
            if exc.errno != errno_mod.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _fork_until_refused(cg_path: str, version: int, ceiling: int) -> dict:
    """Inside the container: join the pids cgroup, fork sleeping children until fork() fails."""
    cg = Cgroup(cg_path, Hierarchy("pids", version, ""))
    cg.join()
    children, refusal = [], None
    try:
        while len(children) < ceiling:
            try:
                pid = os.fork()
            except OSError as exc:
                refusal = exc
                break
            if pid == 0:  # pragma: no cover - the sleeping child
                try:
                    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
                    signal.pause()
                finally:
                    os._exit(0)
            children.append(pid)
        current = int(cg.read("pids.current"))
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in children:
            os.waitpid(pid, 0)
    return {"forks": len(children), "tasks_at_refusal": current,
            "errno": refusal.errno if refusal else None,
            "errno_name": errno_mod.errorcode.get(refusal.errno, "") if refusal else "",
            "error": refusal.strerror if refusal else ""}


def pids_limit(limit: int = 16, ceiling: int = 256) -> dict:
    """A container whose PID 1 joins a cgroup with pids.max = `limit` and forks until refused.

    limit: pids.max; ceiling: forks after which we give up (the limit was not enforced).
    Returns forks (successful), tasks_at_refusal (pids.current then), errno / errno_name / error
    of the refused fork (None if none was refused), limit, cgroup version, the cgroup's counters,
    its path and whether it was removed afterwards.
    """
    with limited_cgroup("pids", limit) as cg:
        out = run_in_container(lambda: _fork_until_refused(cg.path, cg.hierarchy.version, ceiling))
        out["events"] = cg.counters("pids.events")
    out.update(limit=limit, cgroup_version=cg.hierarchy.version, cgroup=cg.path,
               cgroup_removed=not os.path.exists(cg.path))
    return out


_TOUCHER = "import sys; data = b'\\x01' * int(sys.argv[1]); print(len(data))"


def _touch_inside(cg_path: str, version: int, size: int) -> dict:
    """Inside the container: a fresh Python process joins the memory cgroup (alone) and writes `size` bytes."""
    cg = Cgroup(cg_path, Hierarchy("memory", version, ""))
    proc = subprocess.run([sys.executable, "-c", _TOUCHER, str(size)], preexec_fn=cg.join,
                          capture_output=True, text=True, timeout=60)
    return {"returncode": proc.returncode, "stdout": proc.stdout.strip(), "pid1": os.getpid()}


def memory_limit(limit: int = 64 << 20, size: int = 256 << 20) -> dict:
    """In a container, a process limited to `limit` bytes of memory tries to fill `size` bytes.

    limit: the cgroup's memory limit (swap limited too); size: how much the process writes.
    Returns returncode (-9: killed by SIGKILL), signal name, the cgroup's OOM counters, limit, size,
    cgroup version, its path and whether it was removed afterwards.
    """
    with limited_cgroup("memory", limit) as cg:
        out = run_in_container(lambda: _touch_inside(cg.path, cg.hierarchy.version, size))
        events = cg.counters("memory.events") if cg.hierarchy.version == 2 else cg.counters("memory.oom_control")
        if cg.hierarchy.version == 1:
            with contextlib.suppress(OSError, ValueError):
                events["max_usage_in_bytes"] = int(cg.read("memory.max_usage_in_bytes"))
    rc = out["returncode"]
    out.update(limit=limit, size=size, cgroup_version=cg.hierarchy.version, events=events,
               signal=signal.Signals(-rc).name if rc < 0 else "", cgroup=cg.path,
               cgroup_removed=not os.path.exists(cg.path))
    return out
