"""Is this host ready to run KVM guests, and with which kind of KVM? (claims C08, C14)

In the spirit of libvirt's `virt-host-validate qemu`, each check is PASS, WARN or FAIL with a French
explanation, but it also says *which* KVM this is: hardware-assisted (VT-x / AMD-V: "ring -1"), or a
/dev/kvm without hardware assistance (PVM, a nested hypervisor running on page tables), which
virt-host-validate reports as a plain failure of "hardware virtualization".

`gather()` reads the host (CPUID in machine code, /proc/cpuinfo, /sys/module, /proc/modules, /dev/kvm
and its ioctls); `evaluate()` is pure and turns those facts into checks.
"""
from __future__ import annotations

import os
import platform
import stat
from dataclasses import dataclass, field

from popek.checks.host import cpuid as cpuid_mod
from popek.checks.host import kvm

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
VENDOR_MODULES = {"kvm_intel": "VT-x", "kvm_amd": "AMD-V", "kvm_pvm": "PVM"}
#: Capabilities without which no VMM (QEMU, Firecracker, ours) can run a guest.
ESSENTIAL_CAPS = ("KVM_CAP_USER_MEMORY", "KVM_CAP_IRQCHIP", "KVM_CAP_HLT", "KVM_CAP_SYNC_MMU")


@dataclass(frozen=True)
class HostFacts:
    """What gather() read. Every field has a plain value so that evaluate() can be tested alone.

    arch: platform.machine(); flags: CPUID's view (None off x86); cpuinfo: /proc/cpuinfo flags;
    modules: kvm-related kernel modules present (from /sys/module and /proc/modules);
    dev_kvm: path; dev_kvm_exists / dev_kvm_access (read+write for us) / dev_kvm_mode ("crw-rw---- 0:108");
    api_version / caps: KVM_GET_API_VERSION and KVM_CHECK_EXTENSION answers (None / {} if not asked);
    api_error: why /dev/kvm could not be queried; tun / vhost_net: device presence;
    iommu_groups: count of /sys/kernel/iommu_groups entries.
    """
    arch: str
    flags: cpuid_mod.VirtFlags | None
    cpuinfo: frozenset[str]
    modules: frozenset[str]
    dev_kvm: str = "/dev/kvm"
    dev_kvm_exists: bool = False
    dev_kvm_access: bool = False
    dev_kvm_mode: str = ""
    api_version: int | None = None
    caps: dict = field(default_factory=dict)
    api_error: str | None = None
    tun: bool = False
    vhost_net: bool = False
    iommu_groups: int = 0


@dataclass(frozen=True)
class Check:
    """One line of the verdict: name (French), status PASS/WARN/FAIL, explanation (French)."""
    name: str
    status: str
    explanation: str


@dataclass(frozen=True)
class Readiness:
    """All checks, the kind of KVM found, and the overall status (worst of the checks)."""
    checks: tuple[Check, ...]
    kind: str

    @property
    def status(self) -> str:
        statuses = {c.status for c in self.checks}
        return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS

    def check(self, name_start: str) -> Check:
        """The check whose name starts with `name_start`."""
        return next(c for c in self.checks if c.name.startswith(name_start))

    def table(self) -> str:
        """Text like virt-host-validate's: one line per check, explanation below when not PASS."""
        width = max(len(c.name) for c in self.checks)
        lines = []
        for c in self.checks:
            lines.append(f"KVM : {c.name:<{width}} : {c.status}")
            lines.append(f"      {c.explanation}")
        lines.append(f"Type de KVM : {self.kind} ; verdict global : {self.status}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "status": self.status,
                "checks": [c.__dict__ for c in self.checks]}


# ---------------------------------------------------------------------------------------------------
def loaded_modules(sys_module: str = "/sys/module", proc_modules: str = "/proc/modules") -> frozenset[str]:
    """kvm-related modules present: built-in ones show only in /sys/module (with parameters),
    loadable ones in both. Either source may be missing (this host has no /proc/modules)."""
    names = set()
    try:
        names.update(n for n in os.listdir(sys_module) if n == "kvm" or n.startswith("kvm_"))
    except OSError:
        pass
    try:
        with open(proc_modules) as f:
            names.update(line.split()[0] for line in f if line.startswith("kvm"))
    except OSError:
        pass
    return frozenset(names)


def _mode(path: str) -> str:
    st = os.stat(path)
    return f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid}"


def gather(dev_kvm: str = "/dev/kvm", cpuinfo_path: str = "/proc/cpuinfo", sys_module: str = "/sys/module",
           proc_modules: str = "/proc/modules", tun: str = "/dev/net/tun", vhost_net: str = "/dev/vhost-net",
           iommu_groups: str = "/sys/kernel/iommu_groups") -> HostFacts:
    """Read this host's facts (each parameter is a path, so that a test can point elsewhere)."""
    arch = platform.machine()
    flags = cpuid_mod.virt_flags() if arch in ("x86_64", "AMD64") else None
    try:
        cpuinfo = frozenset(cpuid_mod.read_cpuinfo_flags(cpuinfo_path))
    except OSError:
        cpuinfo = frozenset()
    exists = os.path.exists(dev_kvm)
    access = exists and os.access(dev_kvm, os.R_OK | os.W_OK)
    api_version, caps, api_error = None, {}, None
    if access:
        try:
            with kvm.Kvm(dev_kvm) as k:
                api_version, caps = k.api_version(), k.capabilities()
        except OSError as exc:
            api_error = str(exc)
    try:
        groups = len(os.listdir(iommu_groups))
    except OSError:
        groups = 0
    return HostFacts(arch=arch, flags=flags, cpuinfo=cpuinfo, modules=loaded_modules(sys_module, proc_modules),
                     dev_kvm=dev_kvm, dev_kvm_exists=exists, dev_kvm_access=access,
                     dev_kvm_mode=_mode(dev_kvm) if exists else "", api_version=api_version, caps=caps,
                     api_error=api_error, tun=os.path.exists(tun), vhost_net=os.path.exists(vhost_net),
                     iommu_groups=groups)


# ---------------------------------------------------------------------------------------------------
def kind_of_kvm(f: HostFacts) -> str:
    """"VT-x", "AMD-V", "PVM", "sans assistance matérielle" (a /dev/kvm with no known backend) or "aucun"."""
    if not f.dev_kvm_exists:
        return "aucun"
    for module, kind in VENDOR_MODULES.items():
        if module in f.modules and kind != "PVM":
            return kind
    if "kvm_pvm" in f.modules:
        return "PVM"
    if f.flags and f.flags.hardware_assist:
        return f.flags.hardware_assist
    return "sans assistance matérielle"


def without_ring_minus_one(f: HostFacts) -> str | None:
    """Why this host has no "ring -1" that KVM uses (French), or None when it has one.

    Ring -1 (C08) is present when CPUID offers VT-x or AMD-V and /dev/kvm is backed by it (kvm_intel
    or kvm_amd): then the guest's ring 0 runs on the processor. A /dev/kvm without it (PVM, a KVM
    under a hypervisor that hides VMX/SVM) runs guest-kernel code by emulation: it is not ring -1.
    """
    assist = f.flags.hardware_assist if f.flags else None
    if "vmx" in f.cpuinfo or "svm" in f.cpuinfo:
        assist = assist or ("VT-x" if "vmx" in f.cpuinfo else "AMD-V")
    kind = kind_of_kvm(f)
    if not assist:
        if kind == "aucun":
            return "pas de VT-x/AMD-V (ni vmx ni svm dans CPUID et /proc/cpuinfo) et pas de /dev/kvm"
        module = next((m for m in ("kvm_pvm",) if m in f.modules), "")
        return (f"pas de VT-x/AMD-V (ni vmx ni svm dans CPUID et /proc/cpuinfo) : /dev/kvm est {kind}"
                + (f" (module {module})" if module else "")
                + ", un KVM sans assistance matérielle qui émule le code noyau de l'invité")
    if kind not in ("VT-x", "AMD-V"):
        return (f"le processeur annonce {assist}, mais /dev/kvm est {kind} : KVM ne s'appuie pas sur "
                f"{assist} (module kvm_intel/kvm_amd absent, ou virtualisation désactivée dans le BIOS/UEFI)")
    return None


def evaluate(f: HostFacts) -> Readiness:
    """The checks for facts `f` (pure)."""
    checks = []
    add = lambda name, status, text: checks.append(Check(name, status, text))  # noqa: E731
    kind = kind_of_kvm(f)
    hv = f.flags.hypervisor_name if f.flags else None

    if f.arch in ("x86_64", "AMD64"):
        add("Architecture x86-64", PASS, f"processeur {f.arch} : VT-x / AMD-V sont les extensions concernées")
    else:
        add("Architecture x86-64", WARN, f"processeur {f.arch} : les vérifications CPUID x86 ne s'appliquent pas")

    # Hardware assistance: the "ring -1" of the course.
    assist = f.flags.hardware_assist if f.flags else None
    name = "Extensions matérielles de virtualisation (VT-x / AMD-V)"
    if assist:
        add(name, PASS, f"CPUID annonce {assist} : les invités peuvent tourner en ring 0 sous le contrôle de "
                        "l'hyperviseur en « ring -1 »")
    elif f.dev_kvm_exists:
        impl = "PVM ici : module kvm_pvm" if "kvm_pvm" in f.modules else f"ici sous {hv or 'un hyperviseur'}"
        add(name, WARN, "KVM présent mais pas de VT-x/AMD-V : ce /dev/kvm est une implémentation "
                        f"paravirtuelle/imbriquée ({impl}). Le code noyau de l'invité est émulé, son code "
                        "utilisateur tourne directement sur le processeur")
    else:
        add(name, FAIL, "ni VT-x ni AMD-V dans CPUID, et pas de /dev/kvm : seule l'émulation (QEMU TCG) est "
                        "possible (activer la virtualisation dans le BIOS/UEFI ?)")

    # Are we ourselves a guest?
    name = "Bit hyperviseur (CPUID.1:ECX[31])"
    if f.flags is None:
        add(name, WARN, "non vérifiable hors x86")
    elif f.flags.hypervisor:
        add(name, WARN, f"cet hôte est lui-même une machine virtuelle (signature « {f.flags.hypervisor_vendor} »"
                        f" = {hv}) : les VM qu'il lance sont imbriquées")
    else:
        add(name, PASS, "bit à 0 : machine physique (aucun hyperviseur sous ce noyau)")

    # CPUID against the kernel's view.
    name = "Cohérence CPUID / /proc/cpuinfo"
    if f.flags is None:
        add(name, WARN, "non vérifiable hors x86")
    else:
        hidden = [flag for flag, (by_cpuid, by_kernel) in cpuid_mod.compare_with_cpuinfo(f.flags, f.cpuinfo).items()
                  if by_cpuid and not by_kernel]
        invented = [flag for flag, (by_cpuid, by_kernel) in cpuid_mod.compare_with_cpuinfo(f.flags, f.cpuinfo).items()
                    if by_kernel and not by_cpuid]
        if invented:
            add(name, FAIL, f"/proc/cpuinfo annonce {', '.join(invented)} que CPUID n'annonce pas")
        elif hidden:
            add(name, WARN, f"CPUID annonce {', '.join(hidden)} mais le noyau le masque : désactivé par le "
                            "BIOS/UEFI (MSR IA32_FEATURE_CONTROL) ou par le noyau")
        else:
            add(name, PASS, "vmx, svm et hypervisor : CPUID et /proc/cpuinfo concordent")

    # Kernel modules.
    if "kvm" in f.modules:
        add("Module noyau kvm", PASS, "présent (/sys/module/kvm)")
    else:
        add("Module noyau kvm", FAIL, "absent de /sys/module et /proc/modules (modprobe kvm)")
    vendors = sorted(m for m in f.modules if m in VENDOR_MODULES)
    name = "Module fournisseur (kvm_intel / kvm_amd / kvm_pvm)"
    if any(m in ("kvm_intel", "kvm_amd") for m in vendors):
        add(name, PASS, f"{', '.join(vendors)} : KVM s'appuie sur {kind}")
    elif "kvm_pvm" in vendors:
        add(name, WARN, "kvm_pvm : « Pagetable-based Virtual Machine », KVM sans VT-x/AMD-V (hyperviseur "
                        "imbriqué paravirtuel) ; les invités non adaptés à PVM ont leur code noyau émulé")
    else:
        add(name, FAIL, "aucun module fournisseur : modprobe kvm_intel ou kvm_amd (selon le processeur)")

    # The device.
    if f.dev_kvm_exists:
        add("Périphérique /dev/kvm présent", PASS, f"{f.dev_kvm} ({f.dev_kvm_mode})")
    else:
        add("Périphérique /dev/kvm présent", FAIL, f"{f.dev_kvm} absent : KVM non chargé ou non exposé")
    if f.dev_kvm_access:
        add("Périphérique /dev/kvm accessible", PASS, f"lecture/écriture autorisées ({f.dev_kvm_mode})")
    elif f.dev_kvm_exists:
        add("Périphérique /dev/kvm accessible", FAIL, f"pas de lecture/écriture pour cet utilisateur "
                                                      f"({f.dev_kvm_mode}) : ajouter l'utilisateur au groupe kvm")
    else:
        add("Périphérique /dev/kvm accessible", FAIL, "pas de /dev/kvm")

    # The API.
    name = "API KVM (KVM_GET_API_VERSION = 12)"
    if f.api_version == kvm.KVM_API_VERSION:
        add(name, PASS, "version 12, la seule depuis Linux 2.6.22")
    elif f.api_version is not None:
        add(name, FAIL, f"version {f.api_version} : incompatible avec QEMU et les VMM actuels (attendu 12)")
    else:
        add(name, FAIL, f"non interrogeable : {f.api_error or 'pas de /dev/kvm accessible'}")
    name = "Capacités KVM essentielles"
    if f.caps:
        missing = [c for c in ESSENTIAL_CAPS if not f.caps.get(c)]
        counts = (f"{f.caps.get('KVM_CAP_NR_VCPUS', 0)} vCPU recommandés, {f.caps.get('KVM_CAP_MAX_VCPUS', 0)} "
                  f"au plus par VM, {f.caps.get('KVM_CAP_NR_MEMSLOTS', 0)} slots mémoire")
        if missing:
            add(name, FAIL, f"manquantes : {', '.join(missing)} ({counts})")
        else:
            add(name, PASS, f"{', '.join(c.removeprefix('KVM_CAP_') for c in ESSENTIAL_CAPS)} ; {counts}")
    else:
        add(name, FAIL, "non interrogées (pas d'accès à /dev/kvm)")

    # What QEMU/libvirt use around KVM.
    add("Périphérique /dev/net/tun", PASS if f.tun else WARN,
        "présent : interfaces tap pour le réseau des VM" if f.tun else "absent : pas d'interface tap pour les VM")
    add("Périphérique /dev/vhost-net", PASS if f.vhost_net else WARN,
        "présent : virtio-net accéléré dans le noyau" if f.vhost_net
        else "absent : le réseau virtio passe par QEMU en espace utilisateur (modprobe vhost_net)")
    add("IOMMU (affectation de périphériques PCI)", PASS if f.iommu_groups else WARN,
        f"{f.iommu_groups} groupes IOMMU" if f.iommu_groups
        else "aucun groupe IOMMU : pas de passthrough PCI (VFIO) ; activer intel_iommu/amd_iommu")
    return Readiness(tuple(checks), kind)


def kind_agrees(f: HostFacts, r: Readiness) -> bool:
    """The announced kind of KVM agrees with CPUID and the modules: VT-x/AMD-V only with the CPUID flag
    (and a PASS), otherwise no flag, a WARN saying "paravirtuelle/imbriquée", and PVM iff kvm_pvm."""
    assist = r.check("Extensions matérielles")
    if r.kind in ("VT-x", "AMD-V"):
        return bool(f.flags) and f.flags.hardware_assist == r.kind and assist.status == PASS
    return ((not f.flags or f.flags.hardware_assist is None) and assist.status == WARN
            and "paravirtuelle/imbriquée" in assist.explanation
            and (r.kind == "PVM") == ("kvm_pvm" in f.modules))


def assess(**paths) -> Readiness:
    """gather() then evaluate(): this host's readiness."""
    return evaluate(gather(**paths))
