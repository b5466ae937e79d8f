"""A guest operating system is a process of the host (claim C01).

The course defines virtualisation as running operating systems "comme un simple logiciel". We start
a real guest (QEMU TCG booting emulation.boot_sector, which computes for ever in 64-bit long mode at
CPL 0) and look at it the way the host kernel sees it: a PID in /proc, a command line, a parent (us),
threads (QEMU names its virtual CPU thread "CPU 0/TCG"), and CPU time (utime + stime of
/proc/PID/stat) that grows while the guest computes. Then we stop it like any process.

(The KVM guest of checks/host/vmm.py is even closer to the definition: its virtual CPU is a thread of
popek's own process, entering the guest through the KVM_RUN ioctl.)
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

from popek.checks.host import emulation

_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat (or /proc/PID/task/TID/stat) that say what the host sees."""
    comm: str
    state: str
    ppid: int
    cpu_ns: int  # utime + stime

    @classmethod
    def read(cls, path: str) -> "ProcStat":
        """Parse a stat file (`path`); the name is in parentheses and may itself contain spaces."""
        with open(path) as f:
            raw = f.read()
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2:].split()  # rest[0] is field 3 (state)
        return cls(comm, rest[0], int(rest[1]), (int(rest[11]) + int(rest[12])) * _TICK_NS)


@dataclass(frozen=True)
class GuestProcess:
    """What the host saw of a running guest.

    pid, ppid, cmdline, comm, state: as in /proc; our_pid: the PID of the process that started it;
    threads: {tid: thread name}; cpu_ns_before / cpu_ns_after: the process's CPU time at two
    instants `elapsed_ns` apart; vcpu_thread: the name of the virtual CPU thread ("" if not found) and
    vcpu_cpu_ns_before / _after its own CPU time; banner: what the guest wrote on its debug console
    once in long mode; exited: whether the PID was gone after we stopped it, returncode: its status.
    """
    pid: int
    ppid: int
    our_pid: int
    cmdline: tuple[str, ...]
    comm: str
    state: str
    threads: dict
    cpu_ns_before: int
    cpu_ns_after: int
    elapsed_ns: int
    vcpu_thread: str
    vcpu_cpu_ns_before: int
    vcpu_cpu_ns_after: int
    banner: str
    exited: bool
    returncode: int | None

    @property
    def cpu_share(self) -> float:
        """CPU time gained per unit of wall time while watched (1.0: one host core busy)."""
        return (self.cpu_ns_after - self.cpu_ns_before) / self.elapsed_ns if self.elapsed_ns else 0.0


def _threads(pid: int) -> dict[int, str]:
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                out[int(tid)] = f.read().strip()
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return out


def observe_guest(qemu: str = emulation.QEMU_SYSTEM, watch: float = 0.3, boot_timeout: float = 10.0,
                  name: str = "popek-invite") -> GuestProcess:
    """Boot a guest that computes for ever, look at it from the host for `watch` seconds, stop it.

    qemu: the qemu-system-x86_64 binary; watch: seconds between the two CPU-time readings (at least a
    few clock ticks); boot_timeout: seconds to wait for the guest's banner; name: the guest's name.
    The guest is always killed and reaped, and its image removed, even if something fails.
    """
    with tempfile.TemporaryDirectory(prefix="popek-invite-") as tmp:
        image = os.path.join(tmp, "secteur-amorcage.img")
        with open(image, "wb") as f:
            f.write(emulation.boot_sector(emulation.FOREVER))
        cmd = emulation.system_command(image, emulation._which(qemu), name=name)
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        try:
            banner = _read_banner(proc, boot_timeout)
            pid = proc.pid
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = tuple(a.decode() for a in f.read().split(b"\0") if a)
            threads = _threads(pid)
            vcpu = next((tid for tid, comm in threads.items() if comm.startswith("CPU ")), None)
            vcpu_stat = f"/proc/{pid}/task/{vcpu}/stat"
            t0 = time.monotonic_ns()
            before = ProcStat.read(f"/proc/{pid}/stat")
            vcpu_before = ProcStat.read(vcpu_stat).cpu_ns if vcpu else 0
            time.sleep(watch)
            after = ProcStat.read(f"/proc/{pid}/stat")
            vcpu_after = ProcStat.read(vcpu_stat).cpu_ns if vcpu else 0
            elapsed = time.monotonic_ns() - t0
        finally:
            proc.send_signal(signal.SIGTERM)  # QEMU ends cleanly on SIGTERM, like a host shutting it down
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    return GuestProcess(pid, before.ppid, os.getpid(), cmdline, before.comm, after.state, threads,
                        before.cpu_ns, after.cpu_ns, elapsed, threads.get(vcpu, ""), vcpu_before, vcpu_after,
                        banner, not os.path.exists(f"/proc/{pid}"), proc.returncode)


def _read_banner(proc: subprocess.Popen, timeout: float) -> str:
    """Read the guest's banner from its debug console (QEMU's stdout), waiting at most `timeout` s."""
    want, got = emulation.BANNER, b""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while len(got) < len(want):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError(f"l'invité n'a rien écrit en {timeout:.0f} s (reçu {got!r})")
        chunk = os.read(fd, len(want) - len(got))
        if not chunk:
            raise RuntimeError(f"QEMU s'est arrêté avant la bannière de l'invité (reçu {got!r}, code {proc.wait()})")
        got += chunk
    return got.decode("utf-8", "replace")
