"""The VMM's logic without /dev/kvm: ioctl numbers and layouts, guest page tables and segments,
the tiny assembler and the native harness (bytes only), and the efficiency explanation."""
import ctypes
import shutil
import struct
import subprocess

import pytest

from popek.checks.host import kvm, vmm, workload
from popek.checks.host.timing import Timing

# The values of the kernel headers (linux/kvm.h, asm/kvm.h), printed by a C program on x86-64.
HEADER_IOCTLS = {"KVM_GET_API_VERSION": 0xAE00, "KVM_CREATE_VM": 0xAE01, "KVM_CHECK_EXTENSION": 0xAE03,
                 "KVM_GET_VCPU_MMAP_SIZE": 0xAE04, "KVM_SET_USER_MEMORY_REGION": 0x4020AE46,
                 "KVM_CREATE_VCPU": 0xAE41, "KVM_RUN": 0xAE80, "KVM_GET_REGS": 0x8090AE81,
                 "KVM_SET_REGS": 0x4090AE82, "KVM_GET_SREGS": 0x8138AE83, "KVM_SET_SREGS": 0x4138AE84}


@pytest.mark.parametrize("name, value", HEADER_IOCTLS.items())
def test_ioctl_numbers_match_the_kernel_headers(name, value):
    assert getattr(kvm, name) == value


def test_structure_layouts_match_the_kernel_headers():
    assert ctypes.sizeof(kvm.UserspaceMemoryRegion) == 32
    assert ctypes.sizeof(kvm.Regs) == 144 and kvm.Regs.rip.offset == 128
    assert ctypes.sizeof(kvm.Segment) == 24 and ctypes.sizeof(kvm.DTable) == 16
    assert ctypes.sizeof(kvm.Sregs) == 312 and kvm.Sregs.cr0.offset == 224 and kvm.Sregs.efer.offset == 264
    assert kvm.Run.exit_reason.offset == 8 and kvm.Run.exit.offset == 32
    assert kvm._ExitIo.data_offset.offset == 8 and kvm._ExitMmio.len.offset == 16 and kvm._ExitMmio.is_write.offset == 20


def test_page_tables_identity_map_the_first_gib_with_user_2mib_pages():
    tables = vmm.page_tables(user=True)
    assert {len(t) for t in tables.values()} == {4096}
    assert struct.unpack_from("<Q", tables[vmm.PML4])[0] == vmm.PDPT | 7
    assert struct.unpack_from("<Q", tables[vmm.PDPT])[0] == vmm.PD | 7
    pd = struct.unpack("<512Q", tables[vmm.PD])
    assert all(entry == (i << 21) | 0x87 for i, entry in enumerate(pd))
    mmio_entry = pd[vmm.MMIO_ADDR >> 21]
    assert mmio_entry & ~0xFFF == vmm.MMIO_ADDR & ~((1 << 21) - 1)   # mapped, but no memory slot behind it
    assert all(not (e & 4) for e in struct.unpack("<512Q", vmm.page_tables(user=False)[vmm.PD]))


@pytest.mark.parametrize("cpl", [0, 3])
def test_long_mode_segments_carry_the_privilege_level(cpl):
    code, data = vmm.long_mode_segments(cpl)
    assert code["dpl"] == data["dpl"] == cpl
    assert code["selector"] & 3 == data["selector"] & 3 == cpl
    assert code["l"] == 1 and code["db"] == 0 and data["l"] == 0


def test_long_mode_needs_cpl_0_or_3():
    with pytest.raises(ValueError):
        vmm.long_mode_segments(1)


def test_configure_long_mode_sets_paging_and_efer():
    s = vmm.configure_long_mode(kvm.Sregs(), 3)
    assert s.efer & (vmm.EFER_LME | vmm.EFER_LMA) == vmm.EFER_LME | vmm.EFER_LMA
    assert s.cr0 & vmm.CR0_PE and s.cr0 & vmm.CR0_PG and s.cr4 & vmm.CR4_PAE and s.cr3 == vmm.PML4
    assert s.cs.l == 1 and s.cs.dpl == 3 and s.ss.dpl == 3 and s.ds.present == 1


# Checked against GNU objdump (intel syntax) on x86-64.
KNOWN = [
    (vmm.Op("add", "r9", -5), "4981c1fbffffff"), (vmm.Op("or", "rax", 0x7FFFFFFF), "4881c8ffffff7f"),
    (vmm.Op("and", "r15", 3), "4981e703000000"), (vmm.Op("sub", "rbp", 1), "4881ed01000000"),
    (vmm.Op("xor", "rdi", 0x100), "4881f700010000"), (vmm.Op("imul", "r10", 0x11), "4d69d211000000"),
    (vmm.Op("imul", "rax", -3), "4869c0fdffffff"), (vmm.Op("rol", "r12", 7), "49c1c407"),
    (vmm.Op("shl", "rbx", 63), "48c1e33f"), (vmm.Op("not", "r8"), "49f7d0"), (vmm.Op("neg", "rcx"), "48f7d9"),
    (vmm.Op("add", "r13", src="rsi"), "4901f5"), (vmm.Op("xor", "rax", src="r14"), "4c31f0"),
    (vmm.Op("sub", "r11", src="rdx"), "4929d3"), (vmm.Op("and", "rsi", src="r9"), "4c21ce"),
    (vmm.Op("or", "rdx", src="r15"), "4c09fa"), (vmm.Op("imul", "r15", -2**31), "4d69ff00000080"),
]


@pytest.mark.parametrize("op, hexbytes", KNOWN, ids=[str(op) for op, _ in KNOWN])
def test_encode_known_instructions(op, hexbytes):
    assert vmm.encode(op).hex() == hexbytes


def test_unknown_mnemonic_is_an_error():
    with pytest.raises(ValueError, match="mul"):
        vmm.encode(vmm.Op("mul", "rax", 3))


def _all_ops():
    for m in vmm.MNEMONICS:
        for reg in vmm.PROGRAM_REGS:
            if m in ("not", "neg"):
                yield vmm.Op(m, reg)
            elif m in ("rol", "shl"):
                yield vmm.Op(m, reg, 13)
            else:
                yield vmm.Op(m, reg, -0x12345)
                if m != "imul":
                    yield vmm.Op(m, reg, src=vmm.PROGRAM_REGS[-1 - vmm.PROGRAM_REGS.index(reg)])


@pytest.mark.skipif(not shutil.which("objdump"), reason="objdump absent (paquet binutils)")
def test_every_op_on_every_register_disassembles_to_itself(tmp_path):
    ops = list(_all_ops())
    blob = tmp_path / "ops.bin"
    blob.write_bytes(vmm.assemble(ops))
    out = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", str(blob)],
                         capture_output=True, text=True, check=True).stdout
    lines = [ln.split("\t")[-1].split() for ln in out.splitlines() if ln.count("\t") >= 2]
    assert len(lines) == len(ops)
    for op, words in zip(ops, lines):
        text = " ".join(words).replace(",", ", ")
        expected = str(op)
        if op.imm is not None and op.mnemonic not in ("rol", "shl"):
            # objdump prints the sign-extended 64-bit immediate
            expected = expected.rsplit(", ", 1)[0] + f", {op.imm & workload.MASK:#x}"
        assert text == expected, (op, words)


def test_native_harness_wraps_the_program_between_load_and_store():
    program = vmm.assemble([vmm.Op("not", "rax")])
    code = vmm.native_harness(program)
    pushes, pops = bytes.fromhex("53554154415541564157" "57"), bytes.fromhex("415f415e415d415c5d5bc3")
    assert code.startswith(pushes) and code.endswith(pops)
    loads = len(vmm.PROGRAM_REGS) * 7
    assert code[len(pushes) + loads:len(pushes) + loads + len(program)] == program
    # rdi (the block pointer) is loaded last, from its own slot
    assert code[len(pushes) + loads - 7:len(pushes) + loads] == vmm._mem_op(0x8B, "rdi", 8 * vmm.PROGRAM_REGS.index("rdi"))


def test_random_programs_are_reproducible_and_encodable():
    a, b = vmm.random_programs(20, seed=5), vmm.random_programs(20, seed=5)
    assert [[str(o) for o in ops] for ops, _ in a] == [[str(o) for o in ops] for ops, _ in b]
    for ops, regs in a:
        assert 1 <= len(ops) <= 24 and set(regs) == set(vmm.PROGRAM_REGS)
        assert "rsp" not in {o.dst for o in ops} | {o.src for o in ops}
        vmm.assemble(ops)
    assert {o.mnemonic for ops, _ in vmm.random_programs(200, seed=1) for o in ops} == set(vmm.MNEMONICS)


def test_mismatch_lists_only_the_differing_registers():
    same = {r: 1 for r in vmm.PROGRAM_REGS}
    m = vmm.Mismatch([vmm.Op("not", "rax")], same, same | {"rax": 2}, same | {"rax": 3})
    assert m.as_dict() == {"program": ["not rax"], "differing": {"rax": {"natif": "0x2", "invité": "0x3"}}}


def test_exit_as_dict_shows_hex_data_and_address():
    ex = vmm.Exit(6, "KVM_EXIT_MMIO", size=4, data=b"\x42\xee\xff\xc0", phys_addr=0x10000000, is_write=True)
    assert ex.as_dict() == {"reason": 6, "name": "KVM_EXIT_MMIO", "size": 4, "data": "42eeffc0",
                            "phys_addr": "0x10000000", "is_write": True}


def test_control_program_signals_in_the_documented_order():
    p = vmm.CONTROL_PROGRAM
    assert p.endswith(vmm.HLT)
    assert p.index(struct.pack("<I", vmm.OUT_VALUE)) < p.index(b"\xed") < p.index(b"\xa3" + struct.pack("<Q", vmm.MMIO_ADDR))


def _run(executor, n, ns):
    return workload.WorkloadRun(executor, n, workload.reference(n), Timing((ns,)))


@pytest.mark.parametrize("kind, words", [("PVM", ["PVM émule", "pas un échec", "×2000"]),
                                         ("VT-x", ["avec VT-x", "plus lente qu'attendu"]),
                                         ("sans assistance matérielle", ["ni VT-x"])])
def test_efficiency_explains_the_ring0_ratio_by_the_kind_of_kvm(kind, words):
    eff = vmm.Efficiency(_run("natif", 100, 1.0), _run("KVM invité ring 3", 100, 1.05),
                         _run("KVM invité ring 0", 10, 2000.0), kind)
    assert eff.ratio3.value == pytest.approx(1.05) and eff.ratio0.value == pytest.approx(2000)
    assert all(eff.equivalent(r) for r in eff.runs)
    for word in words:
        assert word in eff.explanation
    assert eff.as_dict()["ratio_ring0"] == pytest.approx(2000)


def test_efficiency_detects_a_wrong_result():
    wrong = workload.WorkloadRun("KVM invité ring 3", 100, 0, Timing((1.0,)))
    eff = vmm.Efficiency(_run("natif", 100, 1.0), wrong, _run("KVM invité ring 0", 10, 2.0), "VT-x")
    assert not eff.equivalent(wrong) and eff.equivalent(eff.ring0)
