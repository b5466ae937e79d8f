"""popek's apt on a laptop whose unattended-upgrades holds dpkg's lock (it runs for minutes after boot), for real:
a process of the test holds /var/lib/dpkg/lock-frontend as apt's frontends do (a POSIX write lock). Measured before
(2026-12-07 19:52, hG3): apt.install failed in 1.8 s with apt's « E: Could not get lock /var/lib/dpkg/lock-frontend.
It is held by process N (python) ». Now: popek says who holds it and waits (DPkg::Lock::Timeout), then installs;
still held after the wait, one French message naming the holder, nothing installed.

Root with apt and its lists; installs then purges the tiny package `sl` (no dependency, nothing in /etc) from the
machine's mirror; 12-17 s. Skipped when `sl` is installed already (the owner's: not ours to purge)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

PACKAGE = "sl"
HOLDER = ("import fcntl, sys, time\n"
          "f = open('/var/lib/dpkg/lock-frontend', 'w')\n"
          "fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
          "print('held', flush=True)\n"
          "time.sleep(float(sys.argv[1]))\n")


def _status(pkg: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True).stdout


def _hold(seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held", "le verrou de dpkg n'a pas pu être pris (un apt tourne ?)"
    return holder


def test_popeks_apt_waits_for_the_owners_dpkg_lock_then_installs_and_names_it_when_it_stays():
    from popek.checks.localcloud import apt

    if os.geteuid() != 0 or shutil.which("apt-get") is None or not apt.DPKG_FRONTEND_LOCK.exists():
        pytest.skip("il faut être root avec apt-get")
    if not apt.missing([PACKAGE]):
        pytest.skip(f"{PACKAGE} est déjà installé sur cette machine (au propriétaire : le test ne le retirerait pas)")
    if apt.dpkg_lock_holder():
        pytest.skip(f"dpkg est déjà occupé par {apt.dpkg_lock_holder()}")
    before = _status(PACKAGE)
    cache = Path("/var/cache/apt/archives")
    debs = set(cache.glob(f"{PACKAGE}_*.deb"))
    holder, lines = _hold(30), []
    try:
        # 1. held longer than popek waits: one French message naming the holder, nothing installed
        t0 = time.monotonic()
        with pytest.raises(apt.AptError) as refused:
            apt.install([PACKAGE], lines.append, lock_wait=2)
        message = str(refused.value)
        assert message.startswith(f"apt : dpkg est occupé par le processus {holder.pid} ("), message
        assert "depuis plus de 2 s" in message and "Could not get lock" not in message, message
        assert time.monotonic() - t0 >= 1.5
        assert _status(PACKAGE) == before
        assert f"dpkg est occupé par le processus {holder.pid} (" in lines[-1], lines
        holder.kill()
        holder.wait(10)
        # 2. held for 3 s more: popek says so, waits, then installs
        holder, lines = _hold(3), []
        t0 = time.monotonic()
        assert apt.install([PACKAGE], lines.append, lock_wait=60) == [PACKAGE]
        waited = time.monotonic() - t0
        assert waited >= 2.5, f"installé en {waited:.1f} s pendant que le verrou était tenu ?"
        assert any(f"dpkg est occupé par le processus {holder.pid} (" in l for l in lines), lines
        assert "install ok installed" in _status(PACKAGE)
    finally:
        holder.kill()
        holder.wait(10)
        if _status(PACKAGE) != before:
            subprocess.run(["apt-get", "purge", "-y", "-q", PACKAGE], capture_output=True, text=True,
                           env={**os.environ, **apt.NONINTERACTIVE}, timeout=120)
        for deb in set(cache.glob(f"{PACKAGE}_*.deb")) - debs:     # apt's download, not the owner's
            deb.unlink()
        assert _status(PACKAGE) == before, f"{PACKAGE} n'a pas été remis comme avant"
