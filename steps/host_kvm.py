"""Glue for features/hote/popek_goldberg_kvm.feature -> popek.checks.host.vmm (our VMM over KVM)."""
from pytest_bdd import parsers, then, when

from popek.checks.host import vmm, workload


# --- control ---------------------------------------------------------------------------------------
@when("l'invité exécute OUT, IN, une écriture et une lecture MMIO puis HLT en ring 0", target_fixture="probe")
def control(evidence):
    probe = vmm.control_probe()
    evidence.json("sorties KVM vues par le VMM", probe.as_dict())
    evidence.figure("sorties KVM observées", " → ".join(e.name.removeprefix("KVM_EXIT_") for e in probe.exits))
    return probe


@then(parsers.parse("le VMM voit KVM_EXIT_IO en écriture sur le port {port}, {size:d} octets, donnée {data}"))
def io_out(probe, port, size, data):
    ex = probe.out
    assert ex is not None, probe.as_dict()
    assert (ex.port, ex.size, int.from_bytes(ex.data, "little")) == (int(port, 0), size, int(data, 0)), ex


@then(parsers.parse("le VMM voit KVM_EXIT_IO en lecture sur le port {port} et la valeur qu'il fournit arrive dans l'invité"))
def io_in(probe, port):
    assert probe.in_ is not None and probe.in_.port == int(port, 0), probe.as_dict()
    assert probe.in_value_seen == vmm.IN_VALUE, probe.as_dict()


@then(parsers.parse("le VMM voit KVM_EXIT_MMIO en écriture à l'adresse {address} avec les octets écrits par l'invité"))
def mmio_write(probe, address):
    ex = probe.mmio_write
    assert ex is not None and ex.phys_addr == int(address, 0) and ex.size == 4, probe.as_dict()
    assert ex.data == vmm.IN_VALUE.to_bytes(4, "little"), ex


@then(parsers.parse("le VMM voit KVM_EXIT_MMIO en lecture à l'adresse {address} et la valeur qu'il fournit arrive dans l'invité"))
def mmio_read(probe, address):
    assert probe.mmio_read is not None and probe.mmio_read.phys_addr == int(address, 0), probe.as_dict()
    assert probe.mmio_read_seen == vmm.MMIO_READ_VALUE, probe.as_dict()


@then("le VMM voit KVM_EXIT_HLT")
def hlt(probe):
    seen = " → ".join(e.name for e in probe.exits) or "aucune"
    assert probe.hlt is not None, f"le VMM n'a vu aucune sortie KVM_EXIT_HLT ; sorties vues : {seen}"


@then("un HLT exécuté en ring 3 de l'invité arrête l'invité (KVM_EXIT_SHUTDOWN), pas l'hôte")
def user_hlt(probe):
    assert probe.user_cpl == 3 and probe.user_hlt.name == "KVM_EXIT_SHUTDOWN", probe.as_dict()


# --- equivalence -----------------------------------------------------------------------------------
@when(parsers.parse("la charge de travail tourne {n:d} fois en natif et dans l'invité en ring {ring:d}"),
      target_fixture="runs")
def workload_both(n, ring, evidence):
    native, guest = workload.run_native(n, timed=False), vmm.run_workload(n, cpl=ring, timed=False)
    evidence.figure(f"résultat invité ring {ring} (n={n})", hex(guest.result))
    return native, guest, ring


@then("le résultat de l'invité est celui du natif et de la référence")
def same_result(runs):
    native, guest, ring = runs
    assert guest.result == native.result == workload.reference(native.iterations), (hex(native.result), hex(guest.result))
    assert guest.details["cpl"] == ring, guest.details


@when(parsers.parse("{count:d} programmes d'opérations arithmétiques et logiques tirés au hasard tournent "
                    "en natif et dans l'invité en ring {ring:d}"), target_fixture="mismatches")
def generated_programs(count, ring, evidence):
    mismatches = vmm.compare_programs(vmm.random_programs(count, seed=count), cpl=ring)
    evidence.figure("programmes générés comparés", count)
    return mismatches


@then(parsers.parse("les {n:d} registres obtenus sont identiques pour chaque programme"))
def same_registers(mismatches, n, evidence):
    assert len(vmm.PROGRAM_REGS) == n
    evidence.json("programmes divergents", [m.as_dict() for m in mismatches])
    assert not mismatches, [m.as_dict() for m in mismatches[:3]]


# --- efficiency ------------------------------------------------------------------------------------
@when(parsers.re(r"je chronomètre la boucle de travail en natif et dans l'invité en ring (3 et en ring 0|0)"),
      target_fixture="efficiency")
def measure(evidence, host_measures):
    eff = host_measures.kvm_efficiency  # measured once per run, shared with the Popek–Goldberg table
    evidence.json("efficacité (ns/itération)", eff.as_dict())
    for name, (value, unit) in eff.figures().items():
        evidence.figure(name, value, unit)
    return eff


@then("les trois exécutions calculent le résultat de référence")
def all_equivalent(efficiency):
    assert all(efficiency.equivalent(r) for r in efficiency.runs), [(r.executor, hex(r.result)) for r in efficiency.runs]


@then("l'invité en ring 0 calcule le résultat de référence")
def ring0_equivalent(efficiency):
    assert efficiency.equivalent(efficiency.ring0), hex(efficiency.ring0.result)


@then(parsers.parse("le rapport invité ring 3 / natif est inférieur à {bound:d}"))
def ring3_efficient(efficiency, bound):
    assert efficiency.ratio3.value < bound, (f"code utilisateur de l'invité (ring 3) : {efficiency.ratio3}, "
                                             f"attendu moins de ×{bound}")


@then(parsers.parse("le rapport invité ring 0 / natif est inférieur à {bound:d}"))
def ring0_near_native(efficiency, bound, evidence):
    evidence.text("pourquoi ce rapport en ring 0", efficiency.explanation)
    evidence.figure("rapport invité ring 0 / natif", efficiency.ratio0.value, "×")
    assert efficiency.ratio0.value < bound, (f"code noyau de l'invité (ring 0) : {efficiency.ratio0} avec un KVM "
                                             f"{efficiency.kind}, attendu moins de ×{bound}")


@then("le rapport invité ring 0 / natif est rapporté avec son explication")
def ring0_reported(efficiency, evidence):
    evidence.text("pourquoi ce rapport en ring 0", efficiency.explanation)
    assert efficiency.ring0.timing.median > 0 and efficiency.equivalent(efficiency.ring0), efficiency.ring0
    assert efficiency.kind in efficiency.explanation, efficiency.explanation


@then(parsers.parse("le rapport invité ring 0 / natif dépasse {bound:d}"))
def ring0_emulated(efficiency, bound, evidence):
    evidence.text("pourquoi ce rapport en ring 0", efficiency.explanation)
    assert efficiency.ratio0.value > bound, str(efficiency.ratio0)
