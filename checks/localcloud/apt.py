"""popek's one apt helper: installs the Debian packages it is given with the machine's own apt, and
changes nothing else on the machine.

What apt will install (dependencies included) is shown first; no package is removed (`--no-remove`) nor
upgraded (a package of the machine's own that apt would bring to another version refuses the install, naming
it: on a machine not up to date, installing one new package upgrades its installed dependencies — measured on
a Debian 12 behind its point release: `bash-doc` upgrades `bash`, `fuse2fs` five e2fsprogs packages), no
recommends; no service is started (policy-rc.d for the run) nor left enabled at boot. The callers pass
their packages: the API-only cloud's (install.APT_PACKAGES), the dataplane's, the image builds' tools.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable

from popek.checks.localcloud import runcmd
from popek.checks.localcloud.errors import CloudError


class AptError(CloudError):
    """Packages could not be installed: not root, no apt, or apt refused (the message says which, in French)."""


def missing(packages: Iterable[str]) -> list[str]:
    """The Debian packages of `packages` that dpkg does not report as installed."""
    if shutil.which("dpkg-query") is None:
        return list(packages)
    absent = []
    for pkg in packages:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in out.stdout:
            absent.append(pkg)
    return absent


#: Debian's protocol for "no service may be started now": invoke-rc.d and deb-systemd-invoke ask
#: /usr/sbin/policy-rc.d, and exit status 101 means "action forbidden". popek's apt runs install packages
#: whose daemons it runs itself, on 127.0.0.1 and private state directories: Debian must not start (nor
#: enable) the machine-wide ones, listening on every interface.
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
POLICY_RC_D_TEXT = ("#!/bin/sh\n# popek: no service is started by a package popek installs "
                    "(this file goes when popek's apt run ends)\nexit 101\n")
#: Where Debian's maintainer scripts enable a service: systemd's wants links and sysvinit's start links.
ENABLED_GLOBS = ("/etc/systemd/system/*.wants/*", "/etc/rc[2-5].d/S*")
#: One apt run at a time: the image builds and the dataplane install from two threads (dpkg's own lock
#: would fail the second one).
_APT_LOCK = threading.Lock()

#: dpkg's frontend lock: apt and every other frontend (unattended-upgrades, PackageKit, the owner's apt in another
#: terminal) hold it for their whole run. A laptop's unattended-upgrades runs for minutes after it boots; popek's
#: install then failed at once with apt's « Could not get lock /var/lib/dpkg/lock-frontend. It is held by process
#: N (unattended-upgr) » (measured 2026-12-07, hG3: 1.8 s). popek waits for it (apt's DPkg::Lock::Timeout), never
#: touching its holder, and says so first; still held after LOCK_WAIT s: one French message naming the holder.
DPKG_FRONTEND_LOCK = Path("/var/lib/dpkg/lock-frontend")
LOCK_WAIT = 600


def lock_holders(proc_locks: str, dev: tuple[int, int], inode: int) -> list[int]:
    """The PIDs holding a lock of /proc/locks's text (`proc_locks`) on the file of device (major, minor) and
    `inode`; a waiter's line (" -> ") holds nothing; an open-file-description lock has no PID (-1): left out."""
    want = f"{dev[0]:02x}:{dev[1]:02x}:{inode}"
    pids = []
    for line in proc_locks.splitlines():
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[5] != want:
            continue
        if fields[4].isdigit():
            pids.append(int(fields[4]))
    return pids


def dpkg_lock_holder(lock: Path = DPKG_FRONTEND_LOCK) -> str | None:
    """« le processus N (NAME) » holding dpkg's frontend lock now, « un autre processus » when /proc/locks does
    not say which, None when it is free (or cannot be read)."""
    try:
        st = lock.stat()
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    pids = lock_holders(text, (os.major(st.st_dev), os.minor(st.st_dev)), st.st_ino)
    if not pids:
        want = f":{st.st_ino} "
        return "un autre processus" if any(want in l and "->" not in l for l in text.splitlines()) else None
    return process_named(pids[0])


def process_named(pid: int) -> str:
    try:
        return f"le processus {pid} ({Path(f'/proc/{pid}/comm').read_text().strip()})"
    except OSError:
        return f"le processus {pid}"


def locked_refusal(absent: list[str], apt_says: str, waited: float, holder: str | None = None) -> str:
    """The French message when dpkg's lock stayed held for `waited` s; `holder`: dpkg_lock_holder() then, else the
    holder apt named in `apt_says` (its text: after a wait apt's last words name none, « Unable to acquire »)."""
    import re

    held = re.search(r"held by process (\d+) \(([^)]*)\)", apt_says)
    who = holder or (f"le processus {held.group(1)} ({held.group(2)})" if held else "un autre gestionnaire de paquets")
    return (f"apt : dpkg est occupé par {who} depuis plus de {waited:.0f} s (mises à jour automatiques, "
            f"PackageKit ou un autre apt) ; popek n'y touche pas : relancez quand il a fini, ou installez "
            f"vous-même : apt-get install --no-install-recommends {' '.join(absent)}")


@contextmanager
def services_held_back(path: Path = POLICY_RC_D):
    """For the duration, `path` forbids every service start; afterwards the machine's own policy-rc.d is
    back byte for byte with its mode, or there is none if there was none."""
    before = path.read_bytes() if path.is_file() else None
    mode = path.stat().st_mode & 0o7777 if before is not None else None
    tmp = path.with_name(path.name + ".popek-tmp")
    tmp.write_text(POLICY_RC_D_TEXT)
    tmp.chmod(0o755)
    os.replace(tmp, path)
    try:
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            tmp.write_bytes(before)
            tmp.chmod(mode)
            os.replace(tmp, path)


def enabled_links(globs=ENABLED_GLOBS) -> set[str]:
    """The links by which services are enabled at boot (systemd wants, sysvinit rc2-5 start links)."""
    return {p for g in globs for p in glob.glob(g)}


def planned_installs(simulation: str) -> list[str]:
    """The packages `apt-get install -s` (its stdout, `simulation`) would install or upgrade."""
    return [line.split()[1] for line in simulation.splitlines() if line.startswith("Inst ")]


def planned_upgrades(simulation: str) -> list[tuple[str, str, str]]:
    """The packages of the machine that `apt-get install -s` (`simulation`) would bring to another version:
    (name, installed version, new version). apt writes the installed version in brackets:
    `Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])`."""
    found = []
    for line in simulation.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "Inst" and parts[2].startswith("[") and parts[2].endswith("]") \
                and parts[3].startswith("("):
            found.append((parts[1], parts[2][1:-1], parts[3][1:]))
    return found


def held() -> set[str]:
    """The packages the machine's owner holds (`apt-mark hold`)."""
    if shutil.which("apt-mark") is None:
        return set()
    return set(subprocess.run(["apt-mark", "showhold"], capture_output=True, text=True).stdout.split())


def upgrades_refused(absent: list[str], upgrades: list[tuple[str, str, str]], holds: set[str]) -> str:
    """The French message that refuses an install which would upgrade packages of the machine's own."""
    listed = ", ".join(f"{name} {old} → {new}" + (" (retenu par apt-mark hold)" if name in holds else "")
                       for name, old, new in upgrades)
    return (f"paquets Debian manquants : {' '.join(absent)} ; apt mettrait aussi à jour {len(upgrades)} paquet(s) "
            f"déjà installé(s) sur cette machine : {listed} ; popek ne change pas les paquets de la machine : "
            f"mettez-la à jour vous-même (apt-get upgrade), ou installez ces paquets vous-même : "
            f"apt-get install --no-install-recommends {' '.join(absent)}")


def disable_new(before: set[str], log: Callable[[str], None], globs=ENABLED_GLOBS) -> list[str]:
    """Disable, the Debian way, every service a package script enabled since `before` was taken
    (deb-systemd-helper for systemd units, update-rc.d for init scripts). Returns their names."""
    names = []
    for link in sorted(enabled_links(globs) - before):
        name = Path(link).name
        if "/systemd/" in link:
            cmd = ["deb-systemd-helper", "disable", name] if shutil.which("deb-systemd-helper") else None
        else:
            name = name[3:]  # S01foo -> foo
            cmd = ["update-rc.d", name, "disable"] if shutil.which("update-rc.d") else None
        if name in names:
            continue
        if cmd is None or subprocess.run(cmd, capture_output=True).returncode != 0:
            Path(link).unlink(missing_ok=True)
        names.append(name)
    if names:
        log(f"apt : services désactivés au démarrage de la machine (popek lance les siens) : {' '.join(names)}")
    return names


#: apt-get asks nothing (no debconf prompt).
NONINTERACTIVE = {"DEBIAN_FRONTEND": "noninteractive"}


def _apt_plan(packages: list[str]) -> subprocess.CompletedProcess:
    return runcmd.run(["apt-get", "install", "-s", "--no-install-recommends", "--no-remove", *packages],
                      env=NONINTERACTIVE, check=False)


def install(packages: Iterable[str], log: Callable[[str], None] = print, upgrades_ok: bool = False,
            lock_wait: float = LOCK_WAIT) -> list[str]:
    """Install the missing ones of `packages` with the machine's apt, changing nothing else: what will be
    installed (dependencies included) is shown first, no package is removed (`--no-remove`) nor upgraded
    (refused with the list of what apt would upgrade, before anything is installed), no recommends,
    no service is started (policy-rc.d) nor left enabled at boot. Returns the packages installed.

    `upgrades_ok`: the machine's owner asks for the install themselves (a test harness playing the owner,
    who installs their own libvirt: on a fresh machine of this kind `libvirt-daemon-system` upgrades
    systemd's packages, apt's log of 2026-12-07 07:24): apt's upgrades go ahead, each named in the log.

    `lock_wait`: how long to wait for dpkg's lock held by another frontend (see DPKG_FRONTEND_LOCK).

    Raises AptError (one French sentence) when not root, without apt, when apt would upgrade a package of the
    machine's, when dpkg's lock stays held, or when apt refuses."""
    absent = missing(packages)
    if not absent:
        return []
    if shutil.which("apt-get") is None:
        raise AptError(f"paquets Debian manquants : {' '.join(absent)} ; apt-get est introuvable sur cette "
                       "machine, installez-les autrement")
    if os.geteuid() != 0:
        raise AptError(f"paquets Debian manquants : {' '.join(absent)} ; relancez en root ou installez-les : "
                       f"apt-get install --no-install-recommends {' '.join(absent)}")
    with _APT_LOCK:
        plan = _apt_plan(absent)
        if plan.returncode != 0:  # stale package lists: refresh once, then plan again
            runcmd.run(["apt-get", "update"], env=NONINTERACTIVE, check=False)
            plan = _apt_plan(absent)
        if plan.returncode != 0:
            raise AptError(f"apt-get install {' '.join(absent)} impossible sans retirer de paquet ou "
                           f"autrement : {(plan.stderr or plan.stdout).strip()[-400:]}")
        # not a change of the machine's: one of `absent` (half-installed), or the same version (a reinstall)
        upgrades = [u for u in planned_upgrades(plan.stdout) if u[0] not in absent and u[1] != u[2]]
        if upgrades and not upgrades_ok:
            raise AptError(upgrades_refused(absent, upgrades, held()))
        installs = planned_installs(plan.stdout)
        log(f"apt : installation de {len(installs)} paquet(s) : {' '.join(installs)}"
            + (f" ; dont {len(upgrades)} mise(s) à jour : " + ", ".join(f"{n} {a} → {b}" for n, a, b in upgrades)
               if upgrades else ""))
        holder = dpkg_lock_holder()
        if holder:
            log(f"apt : dpkg est occupé par {holder} : popek attend qu'il ait fini ({lock_wait:.0f} s au plus)")
        enabled = enabled_links()
        with services_held_back():
            try:
                runcmd.run(["apt-get", "install", "-y", "--no-install-recommends", "--no-remove",
                            "-o", f"DPkg::Lock::Timeout={lock_wait:.0f}", *absent], AptError,
                           env=NONINTERACTIVE, what="apt : ")
            except AptError as exc:
                if "Could not get lock" in str(exc) or "Unable to acquire the dpkg frontend lock" in str(exc):
                    raise AptError(locked_refusal(absent, str(exc), lock_wait, dpkg_lock_holder())) from None
                raise
            finally:
                disable_new(enabled, log)
    return installs
