"""Pure logic of the emulation programs (ELF writer, boot sector, ARM64 encoder) and of the /proc parsers."""
import os
import struct

import pytest
from hypothesis import given as h_given
from hypothesis import settings, strategies as st

from popek.checks.host import elf, emulation, guest_process, workload

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)


# --- ELF writer ------------------------------------------------------------------------------------
@pytest.mark.parametrize("machine", [elf.EM_X86_64, elf.EM_AARCH64])
def test_elf_header_names_machine_entry_and_one_segment(machine):
    data = elf.static_executable(b"\x90" * 7, machine)
    info = elf.read_header(data)
    assert (info.machine, info.entry, info.segments) == (machine, elf.BASE + elf.HEADERS, 1)
    assert data[elf.HEADERS:] == b"\x90" * 7
    p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = struct.unpack_from("<IIQQQQQQ", data, 64)
    assert (p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz) == (1, 5, 0, elf.BASE, len(data), len(data))


def test_elf_rejects_unaligned_base_and_garbage():
    with pytest.raises(ValueError):
        elf.static_executable(b"", elf.EM_X86_64, base=0x400010)
    with pytest.raises(ValueError):
        elf.read_header(b"MZ" + bytes(100))


def test_write_executable_sets_the_x_bit(tmp_path):
    path = tmp_path / "p"
    elf.write_executable(path, b"abc")
    assert path.read_bytes() == b"abc" and os.stat(path).st_mode & 0o777 == 0o755


# --- x86-64 user program and boot sector -----------------------------------------------------------
@settings(database=None, max_examples=50)
@h_given(U64)
def test_x86_program_embeds_n_then_the_workload_body(n):
    code = emulation.x86_user_program(n)[elf.HEADERS:]
    assert code[:2] == bytes.fromhex("48bf") and int.from_bytes(code[2:10], "little") == n
    assert code[10:10 + len(workload.BODY)] == workload.BODY
    assert code.endswith(bytes.fromhex("b8e700000031ff0f05"))  # exit_group(0)


@settings(database=None, max_examples=50)
@h_given(U64)
def test_boot_sector_is_one_signed_sector_with_n_and_body(n):
    sector = emulation.boot_sector(n)
    assert len(sector) == 512 and sector[510:] == b"\x55\xaa"
    at = len(emulation._REAL_MODE) + len(emulation._LONG_MODE)
    assert int.from_bytes(sector[at:at + 8], "little") == n
    assert sector[at + 8:at + 8 + len(workload.BODY)] == workload.BODY
    assert emulation.BANNER in sector


def test_boot_sector_long_mode_jump_and_gdt_descriptor_point_where_they_should():
    real = emulation._REAL_MODE
    target = int.from_bytes(real[0x60:0x62], "little")            # jmp 0x08:target
    assert real[0x5F] == 0xEA and target == 0x7C00 + len(real)
    gdtr = int.from_bytes(real[0x2E:0x30], "little")              # lgdt [gdtr]
    limit, base = struct.unpack_from("<HI", real, gdtr - 0x7C00)
    assert limit == 15 and real[base - 0x7C00 + 8:base - 0x7C00 + 16] == bytes.fromhex("00000000009a2000")
    lea = int.from_bytes(emulation._LONG_MODE[3:7], "little", signed=True)  # lea rsi,[rip+disp] -> banner
    assert len(real) + 7 + lea == real.index(emulation.BANNER)


def test_out_of_range_n_is_refused():
    with pytest.raises(ValueError):
        emulation.boot_sector(1 << 64)
    with pytest.raises(ValueError):
        emulation.x86_user_program(-1)


def test_system_command_never_asks_for_kvm():
    cmd = emulation.system_command("/tmp/x.img", "qemu-system-x86_64", name="n")
    assert cmd[cmd.index("-accel") + 1] == "tcg" and "kvm" not in " ".join(cmd)
    assert "n,debug-threads=on" in cmd


# --- ARM64 program ---------------------------------------------------------------------------------
def _words(program: bytes) -> list[int]:
    code = program[elf.HEADERS:-len(emulation.GREETING)]
    return [int.from_bytes(code[i:i + 4], "little") for i in range(0, len(code), 4)]


def test_arm64_encodings_match_the_architecture_manual():
    assert emulation._movz(8, 64) == 0xD2800808           # mov x8, #64
    assert emulation._movz(0, 1) == 0xD2800020            # mov x0, #1
    assert emulation._movk(0, 0x7F4A, 16) == 0xF2AFE940   # movk x0, #0x7f4a, lsl #16
    assert emulation._SVC0 == 0xD4000001


@settings(database=None, max_examples=50)
@h_given(U64)
def test_arm64_program_loads_seed_and_n_then_runs_the_body(n):
    words = _words(emulation.aarch64_program(n))

    def value(ws):
        return sum(((w >> 5) & 0xFFFF) << (16 * ((w >> 21) & 3)) for w in ws)
    assert value(words[0:4]) == workload.SEED and value(words[4:8]) == n
    assert tuple(words[8:8 + len(emulation._A64_BODY)]) == emulation._A64_BODY


def _a64_branch_target(index: int, w: int) -> int | None:
    """The word index an ARM64 branch at `index` jumps to (B, B.cond, CBZ/CBNZ, TBZ/TBNZ), else None."""
    def signed(v, bits):
        return v - (1 << bits) if v >> (bits - 1) else v
    if w >> 26 == 0b000101:                       # B imm26
        return index + signed(w & 0x3FFFFFF, 26)
    if w >> 24 in (0x54, 0xB4, 0xB5):             # B.cond / CBZ / CBNZ imm19
        return index + signed((w >> 5) & 0x7FFFF, 19)
    if w >> 24 in (0x36, 0x37):                   # TBZ / TBNZ imm14
        return index + signed((w >> 5) & 0x3FFF, 14)
    return None


def test_arm64_body_branches_land_on_their_labels():
    body = emulation._A64_BODY
    targets = {i: _a64_branch_target(i, w) for i, w in enumerate(body) if _a64_branch_target(i, w) is not None}
    fill, loop, odd, nxt, done = 3, 10, 20, 21, 25       # see the comments of _A64_BODY
    assert targets == {6: fill, 9: done, 17: odd, 19: nxt, 24: loop}
    assert body[fill] == 0xF8257BE6 and body[loop] == 0x92400825 and body[done] == 0xCA030000


def test_boot_sector_puts_the_workloads_table_in_a_page_without_code():
    lm = emulation._LONG_MODE
    at = lm.index(b"\xbc")                                # mov esp, imm32 (zero-extended into rsp)
    assert int.from_bytes(lm[at + 1:at + 5], "little") == emulation.BOOT_STACK
    low, high = emulation.BOOT_STACK - workload.STACK_BYTES, emulation.BOOT_STACK - 1
    assert low >> 12 == high >> 12                         # one page…
    assert low >> 12 != emulation._LOAD >> 12 and high < emulation._LOAD  # …not the code's
    assert low >= 0x4000                                   # above the page tables (0x1000-0x3fff)


def test_arm64_adr_points_at_the_greeting():
    program = emulation.aarch64_program(7)
    words = _words(program)
    index = next(i for i, w in enumerate(words) if w & 0x9F000000 == 0x10000000)  # the ADR
    w = words[index]
    offset = ((w >> 5) & 0x7FFFF) << 2 | (w >> 29) & 3
    start = elf.HEADERS + 4 * index + offset
    assert program[start:start + len(emulation.GREETING)] == emulation.GREETING


# --- outputs and /proc parsers ---------------------------------------------------------------------
def test_program_run_splits_text_and_result():
    run = emulation.ProgramRun(("q",), 0, b"bonjour\n" + (0x1122).to_bytes(8, "little"), "")
    assert run.text == "bonjour\n" and run.result == 0x1122
    assert emulation.ProgramRun(("q",), 0, b"abc", "").result is None


def test_read_maps_parses_permissions_and_paths(tmp_path, monkeypatch):
    maps = tmp_path / "maps"
    maps.write_text("00400000-00401000 r--p 00000000 fe:00 12 /tmp/a b\n7f00-7f10 rwxp 0 00:00 0 \n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda p, *a, **k: real_open(maps if p == "/proc/1/maps" else p, *a, **k))
    m = emulation.read_maps(1)
    assert (m[0].perms, m[0].path, m[0].size, m[0].executable) == ("r--p", "/tmp/a b", 0x1000, False)
    assert (m[1].path, m[1].executable) == ("", True)


def test_binfmt_handler_matches_with_mask(tmp_path):
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "qemu-aarch64").write_text(
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\n"
        "magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n")
    assert emulation._binfmt_interpreter(emulation.aarch64_program(1), str(tmp_path)).endswith("aarch64-binfmt-P")
    assert emulation._binfmt_interpreter(emulation.x86_user_program(1), str(tmp_path)) == ""
    assert emulation._binfmt_interpreter(b"", str(tmp_path / "absent")) == ""


def test_proc_stat_parses_names_with_spaces_and_parentheses(tmp_path):
    fields = ["R", "42"] + ["0"] * 9 + ["7", "3"] + ["0"] * 30
    path = tmp_path / "stat"
    path.write_text("1234 (CPU 0/TCG (x)) " + " ".join(fields) + "\n")
    st_ = guest_process.ProcStat.read(str(path))
    assert (st_.comm, st_.state, st_.ppid, st_.cpu_ns) == ("CPU 0/TCG (x)", "R", 42, 10 * guest_process._TICK_NS)


def test_the_isolation_sector_holds_its_own_mark_and_the_hosts_only_when_leaked():
    own, host, mask = b"a1b2c3d4", b"e5f6a7b8", 0x0123456789ABCDEF
    sector = emulation.isolation_sector(own, host, mask)
    assert len(sector) == 512 and sector.endswith(b"\x55\xaa")
    assert sector.count(own) == 1 and sector.index(own) == emulation.OWN_MARK_AT
    assert host not in sector  # only host XOR mask is in the code
    leaked = emulation.isolation_sector(own, host, mask, leak=True)
    assert leaked.index(host) == emulation.LEAK_MARK_AT and leaked[:emulation.OWN_MARK_AT] == sector[:emulation.OWN_MARK_AT]
    # the scan reads up to the last 8 bytes of the 16 MiB of RAM that system_command gives the guest
    assert "16" == emulation.system_command("x")[emulation.system_command("x").index("-m") + 1]
    assert emulation.GUEST_RAM == 16 << 20
