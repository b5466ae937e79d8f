"""Glue for features/hote/support_virtualisation.feature -> popek.checks.host.{cpuid, kvm, readiness}."""
from pytest_bdd import parsers, then, when

from popek.checks.host import cpuid, kvm, readiness


@when("j'exécute CPUID en code machine", target_fixture="virt_flags")
def run_cpuid(evidence):
    flags = cpuid.virt_flags()
    evidence.json("CPUID (virtualisation)", flags.__dict__ | {"hyperviseur": flags.hypervisor_name})
    return flags


@then("les drapeaux VMX, SVM et hyperviseur de CPUID concordent avec /proc/cpuinfo")
def flags_agree(virt_flags, evidence):
    seen = cpuid.compare_with_cpuinfo(virt_flags, cpuid.read_cpuinfo_flags())
    evidence.json("CPUID / /proc/cpuinfo", {k: {"CPUID": a, "cpuinfo": b} for k, (a, b) in seen.items()})
    # The kernel may hide VT-x disabled by the firmware, never announce a flag the CPU lacks.
    assert all(by_cpuid or not by_kernel for by_cpuid, by_kernel in seen.values()), seen
    assert seen["hypervisor"][0] == seen["hypervisor"][1], seen


@then("CPUID annonce VT-x (VMX) ou AMD-V (SVM)")
def hardware_assist(virt_flags, evidence):
    evidence.figure("VT-x / AMD-V (CPUID)", virt_flags.hardware_assist or "aucun")
    assert virt_flags.hardware_assist, (f"CPUID n'annonce ni VMX ni SVM (vendeur {virt_flags.vendor}, "
                                        f"hyperviseur {virt_flags.hypervisor_name or 'aucun'})")


@then("si le bit hyperviseur est levé, la feuille 0x40000000 nomme l'hyperviseur sous cet hôte")
def hypervisor_named(virt_flags, evidence):
    evidence.figure("bit hyperviseur (CPUID.1:ECX[31])", int(virt_flags.hypervisor))
    if virt_flags.hypervisor:
        evidence.figure("signature 0x40000000", virt_flags.hypervisor_vendor)
        assert virt_flags.hypervisor_vendor.isprintable() and virt_flags.hypervisor_vendor, virt_flags
        assert virt_flags.hypervisor_max_leaf >= cpuid.HYPERVISOR_LEAF, virt_flags
    else:
        assert virt_flags.hypervisor_vendor == "", virt_flags


@when("j'interroge /dev/kvm par ses ioctl", target_fixture="kvm_api")
def query_kvm(evidence):
    with kvm.Kvm() as k:
        api = {"version": k.api_version(), "caps": k.capabilities()}
    evidence.figure("KVM_GET_API_VERSION", api["version"])
    evidence.json("KVM_CHECK_EXTENSION", api["caps"])
    return api


@then(parsers.parse("la version de l'API KVM est {version:d}"))
def api_version_is(kvm_api, version):
    assert kvm_api["version"] == version, f"KVM_GET_API_VERSION = {kvm_api['version']}, attendu {version}"


@then(parsers.parse("les capacités {names} sont présentes"))
def caps_present(kvm_api, names):
    wanted = [n.strip() for n in names.replace(" et ", ", ").split(",")]
    missing = [n for n in wanted if not kvm_api["caps"][n]]
    assert not missing, f"capacités absentes : {missing}"


@then("KVM_CAP_NR_VCPUS et KVM_CAP_MAX_VCPUS annoncent au moins 1 vCPU par VM")
def vcpus(kvm_api, evidence):
    nr, mx = kvm_api["caps"]["KVM_CAP_NR_VCPUS"], kvm_api["caps"]["KVM_CAP_MAX_VCPUS"]
    evidence.figure("KVM_CAP_NR_VCPUS", nr), evidence.figure("KVM_CAP_MAX_VCPUS", mx)
    assert 1 <= nr <= mx, (nr, mx)


@when("j'évalue la préparation de l'hôte à la virtualisation", target_fixture="host_readiness")
def assess(evidence):
    facts = readiness.gather()
    verdict = readiness.evaluate(facts)
    evidence.text("Préparation de l'hôte (à la virt-host-validate)", verdict.table())
    evidence.figure("type de KVM", verdict.kind)
    return facts, verdict


@then("chaque vérification est PASS, WARN ou FAIL avec une explication en français")
def checks_well_formed(host_readiness):
    _, verdict = host_readiness
    assert len(verdict.checks) >= 10
    assert all(c.status in (readiness.PASS, readiness.WARN, readiness.FAIL) and c.explanation for c in verdict.checks)


@then("aucune vérification de KVM n'est en échec")
def no_kvm_failure(host_readiness):
    _, verdict = host_readiness
    failed = [c for c in verdict.checks if c.status == readiness.FAIL]
    assert not failed, "\n".join(f"{c.name} : {c.explanation}" for c in failed)


@then("le type de KVM annoncé concorde avec CPUID et les modules du noyau")
def kind_consistent(host_readiness):
    facts, verdict = host_readiness
    assert readiness.kind_agrees(facts, verdict), (sorted(facts.modules), facts.flags, verdict.as_dict())
