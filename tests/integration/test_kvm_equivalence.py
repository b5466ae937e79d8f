"""Equivalence (Popek–Goldberg) for real: generated machine code gives the same registers natively and
in a KVM guest run by our VMM, at CPL 3 (run directly by the CPU) and at CPL 0 (under PVM: emulated)."""
import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis import given as h_given

from popek.checks.host import needs
from popek.checks.host import vmm, workload

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(bool(needs.unmet("kvm") or needs.unmet("x86_64")),
                                 reason=f"KVM : {needs.unmet('kvm') or needs.unmet('x86_64')}")]

REG = st.sampled_from(vmm.PROGRAM_REGS)
IMM32 = st.integers(-2**31, 2**31 - 1)
OP = st.one_of(
    st.builds(vmm.Op, st.sampled_from(["add", "sub", "xor", "and", "or", "imul"]), REG, IMM32),
    st.builds(vmm.Op, st.sampled_from(["rol", "shl"]), REG, st.integers(0, 63)),
    st.builds(vmm.Op, st.sampled_from(["not", "neg"]), REG),
    st.builds(lambda m, d, s: vmm.Op(m, d, src=s), st.sampled_from(["add", "sub", "xor", "and", "or"]), REG, REG),
)
REGS = st.fixed_dictionaries({r: st.integers(0, 2**64 - 1) for r in vmm.PROGRAM_REGS})
SETTINGS = settings(max_examples=50, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def guest():
    with vmm.Guest() as g:
        yield g


@pytest.mark.parametrize("cpl", [3, 0])
def test_generated_programs_give_the_same_registers_natively_and_in_the_guest(guest, cpl):
    @SETTINGS
    @h_given(st.lists(OP, min_size=1, max_size=32), REGS)
    def prop(ops, regs):
        code = vmm.assemble(ops)
        native = vmm.run_native(code, regs)
        assert guest.run_code(code, regs, cpl) == native, [str(o) for o in ops]
        assert guest.cpl() == cpl
    prop()


@SETTINGS
@h_given(st.integers(0, 5000), st.sampled_from([3, 0]))
def test_the_workload_gives_the_reference_in_the_guest(n, cpl):
    run = vmm.run_workload(n, cpl=cpl, timed=False)
    assert run.result == workload.reference(n) == workload.run_native(n, timed=False).result
    assert run.details["cpl"] == cpl


def test_a_wrong_program_is_seen_as_a_mismatch(guest):
    """The comparison is not vacuous: the guest's registers really come from the guest."""
    ops = [vmm.Op("add", "rax", 1)]
    regs = {r: 0 for r in vmm.PROGRAM_REGS}
    assert guest.run_code(vmm.assemble(ops), regs, 3)["rax"] == 1
    assert vmm.run_native(vmm.assemble(ops + ops), regs)["rax"] == 2


def test_control_probe_sees_every_exit():
    probe = vmm.control_probe()
    assert [e.name for e in probe.exits] == ["KVM_EXIT_IO", "KVM_EXIT_IO", "KVM_EXIT_MMIO", "KVM_EXIT_MMIO",
                                             "KVM_EXIT_HLT", "KVM_EXIT_SHUTDOWN"]
    assert probe.in_value_seen == vmm.IN_VALUE and probe.mmio_read_seen == vmm.MMIO_READ_VALUE


def test_the_guest_is_reusable_after_a_triple_fault(guest):
    guest.enter(guest.load(vmm.HLT), cpl=3)          # HLT at CPL 3: #GP, no IDT -> triple fault
    assert guest.step().name == "KVM_EXIT_SHUTDOWN"
    regs = {r: 7 for r in vmm.PROGRAM_REGS}
    assert guest.run_code(vmm.assemble([vmm.Op("imul", "rbx", 6)]), regs, 3)["rbx"] == 42
