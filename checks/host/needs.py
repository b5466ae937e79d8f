"""The host's needs (`@needs:kvm`, `@needs:root`, `@needs:qemu-system`, `@needs:unshare`, …): each takes no
argument and returns None when met, else the French reason why not; registered in popek.checks.needs'
table when this module is imported. Cached: a host does not change during a run."""
from __future__ import annotations

import functools
import os
import platform
import shutil

from popek.checks import needs as registry
from popek.checks.needs import Reason, requirement

#: The registry's own: a caller asking for a host need imports this module, so the host's needs are registered.
unmet = registry.unmet


@requirement("x86_64")
@functools.cache
def _x86_64() -> Reason:
    machine = platform.machine()
    return None if machine in ("x86_64", "AMD64") else f"processeur {machine}, pas x86-64"


@requirement("linux")
@functools.cache
def _linux() -> Reason:
    return None if platform.system() == "Linux" else f"système {platform.system()}, pas Linux"


@requirement("root")
@functools.cache
def _root() -> Reason:
    return None if os.geteuid() == 0 else "il faut être root (uid 0) pour cette vérification"


@requirement("kvm")
@functools.cache
def _kvm() -> Reason:
    if not os.path.exists("/dev/kvm"):
        return "pas de /dev/kvm sur cet hôte (module KVM absent ou virtualisation matérielle non exposée)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm existe mais n'est pas accessible en lecture/écriture pour cet utilisateur (groupe kvm ?)"
    return None


def _binary(name: str, package: str) -> Reason:
    return None if shutil.which(name) else f"{name} introuvable (paquet Debian {package})"


@requirement("qemu-system")
@functools.cache
def _qemu_system() -> Reason:
    return _binary("qemu-system-x86_64", "qemu-system-x86")


@requirement("qemu-user")
@functools.cache
def _qemu_user() -> Reason:
    return _binary("qemu-aarch64-static", "qemu-user-static") or _binary("qemu-x86_64-static", "qemu-user-static")


@requirement("gcc")
@functools.cache
def _gcc() -> Reason:
    return _binary("gcc", "gcc")


@requirement("kvm-sans-vtx")
@functools.cache
def _kvm_without_hardware_assist() -> Reason:
    """A /dev/kvm that runs guest-kernel code by emulation (PVM), where emulation can be measured."""
    if _kvm():
        return _kvm()
    from popek.checks.host import readiness
    kind = readiness.kind_of_kvm(readiness.gather())
    if kind in ("VT-x", "AMD-V"):
        return (f"ce KVM s'appuie sur {kind} : le code noyau de l'invité tourne sur le processeur "
                "(« ring -1 »), il n'est pas émulé")
    return None


@requirement("ring-1")
@functools.cache
def _ring_minus_one() -> Reason:
    """VT-x/AMD-V offered by the CPU and used by /dev/kvm (C08's "ring -1"); PVM is not."""
    from popek.checks.host import readiness
    return readiness.without_ring_minus_one(readiness.gather())


@requirement("unshare")
@functools.cache
def _unshare() -> Reason:
    """New PID, UTS, mount, network and IPC namespaces can be created (probed in a throwaway child)."""
    from popek.checks.host import containers
    err = containers.unshare_probe()
    if err == 0:
        return None
    if os.geteuid() != 0:
        return ("il faut être root (CAP_SYS_ADMIN) pour créer des espaces de noms PID, UTS, mount, "
                f"réseau et IPC (unshare : {os.strerror(err)})")
    return f"le noyau refuse unshare(PID|UTS|mount|réseau|IPC) : {os.strerror(err)}"


def _cgroup(controller: str) -> Reason:
    from popek.checks.host import containers
    h = containers.find_hierarchy(controller)
    if h is None:
        return (f"contrôleur cgroup « {controller} » absent : ni hiérarchie v1 qui le monte, ni "
                f"« {controller} » dans cgroup.controllers d'une hiérarchie v2")
    if not os.access(h.root, os.W_OK):
        return f"la hiérarchie cgroup v{h.version} {h.root} n'est pas modifiable par cet utilisateur (il faut être root)"
    return None


@requirement("cgroup-pids")
@functools.cache
def _cgroup_pids() -> Reason:
    return _cgroup("pids")


@requirement("cgroup-memory")
@functools.cache
def _cgroup_memory() -> Reason:
    return _cgroup("memory")
