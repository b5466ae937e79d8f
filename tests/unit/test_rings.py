"""Pure logic of the rings check and its fault probe: decoding the shared page, classifying faults,
the machine-code loop builder, the instruction table against its feature."""
import signal
import struct

import pytest
from hypothesis import given as h_given, settings, strategies as st

from popek import paths
from popek.checks import coverage
from popek.checks.host import isolate, rings
from popek.checks.host.isolate import Fault


def page(state, signo=0, si_code=0, trapno=0, err=0, rip=0, addr=0, base=0, returned=0, scratch=b""):
    buf = bytearray(4096)
    struct.pack_into("<QQqQQQQQQ", buf, 0, state, signo, si_code, trapno, err, rip, addr, base, returned)
    buf[isolate.SCRATCH:isolate.SCRATCH + len(scratch)] = scratch
    return bytes(buf)


def test_decode_a_fault_gives_signal_trap_error_and_offset_from_the_code_start():
    f = isolate.decode(page(isolate.FAULTED, signal.SIGSEGV, 128, 13, 0, rip=0x7000_0005, base=0x7000_0000), 0)
    assert (f.outcome, f.signal, f.si_code, f.trapno, f.error_code, f.offset) == ("fault", 11, 128, 13, 0, 5)
    assert f.is_general_protection and f.exception == "#GP" and f.signal_name == "SIGSEGV"
    assert "#GP" in f.summary() and "trappe 13" in f.describe()


def test_decode_keeps_a_negative_si_code():
    f = isolate.decode(page(isolate.FAULTED, signal.SIGSEGV, -6, 13), 0)  # SI_TKILL: sent by a process
    assert f.si_code == -6 and not f.is_general_protection


def test_decode_a_return_needs_a_clean_exit():
    ok = isolate.decode(page(isolate.RETURNED, returned=42, scratch=b"\x01\x02"), 0)
    assert ok.outcome == "returned" and ok.returned == 42 and ok.scratch[:2] == b"\x01\x02"
    assert not ok.faulted and ok.summary() == "aucune faute"
    assert isolate.decode(page(isolate.RETURNED, returned=42), 3).outcome == "died"


def test_decode_a_child_that_died_or_hung():
    assert isolate.decode(page(isolate.STARTED), -9).outcome == "died"
    assert isolate.decode(page(isolate.STARTED), -9, timed_out=True).outcome == "timeout"
    assert isolate.decode(page(0), 3).exit_status == 3


@pytest.mark.parametrize("fault, gp", [
    (Fault("fault", signal.SIGSEGV, 128, 13, 0), True),
    (Fault("fault", signal.SIGSEGV, 1, 14, 6), False),     # a page fault, not a refusal
    (Fault("fault", signal.SIGILL, 2, 6, 0), False),       # #UD: the instruction does not exist here
    (Fault("fault", signal.SIGSEGV, 0, 13, 0), False),     # SIGSEGV sent by kill(), not by the CPU
    (Fault("returned", returned=0), False),
    (Fault("died", exit_status=-11), False),
])
def test_general_protection_needs_signal_trap_and_si_code(fault, gp):
    assert fault.is_general_protection is gp


def test_refused_by_cpu_also_needs_the_fault_on_the_instruction_itself():
    ins = rings.instruction("MOV CR3")
    assert ins.at == 2
    assert rings.refused_by_cpu(ins, Fault("fault", signal.SIGSEGV, 128, 13, 0, offset=2))
    assert not rings.refused_by_cpu(ins, Fault("fault", signal.SIGSEGV, 128, 13, 0, offset=0))


def test_mismatches_lists_expected_and_observed():
    f = Fault("fault", signal.SIGSEGV, 1, 14, 4)
    assert isolate.mismatches(f, {"trapno": 14, "error_code": 6}) == {"error_code": (6, 4)}


def test_calibrations_expect_distinct_exceptions():
    assert {c.expected["trapno"] for c in isolate.CALIBRATIONS} == {14, 6, 3}


def test_handler_reads_trapno_err_and_rip_from_the_documented_gregs():
    code = isolate._handler_code(0x1122334455667788)
    assert code[2:10] == (0x1122334455667788).to_bytes(8, "little")
    for reg in (isolate.REG_TRAPNO, isolate.REG_ERR, isolate.REG_RIP):
        assert bytes.fromhex("488b82") + (40 + 8 * reg).to_bytes(4, "little") in code
    assert code.endswith(bytes.fromhex("b8e7000000" "31ff" "0f05"))  # exit_group(0)


@settings(database=None)
@h_given(st.binary(min_size=0, max_size=122))
def test_loop_jumps_land_on_ret_and_on_the_body(body):
    code = rings.loop(body)
    jz_target = 5 + code[4]                       # after test (3) + jz (2)
    jnz_end = len(code) - 1
    jnz_target = jnz_end + struct.unpack("b", code[-2:-1])[0]
    assert code[jz_target] == 0xC3 and jz_target == len(code) - 1
    assert jnz_target == 5 and code[5:5 + len(body)] == body


def test_loop_refuses_a_body_too_long_for_a_short_jump():
    with pytest.raises(ValueError):
        rings.loop(b"\x90" * 123)


def test_the_table_covers_the_course_minimum_and_each_routine_ends_with_ret():
    table = rings.privileged_instructions()
    names = [i.mnemonic for i in table]
    assert len(set(names)) == len(names)
    assert {"HLT", "CLI", "STI", "MOV CR0", "MOV CR3", "IN", "OUT", "RDMSR", "LGDT", "INVD"} <= set(names)
    for i in table:
        assert i.code.endswith(b"\xc3") and 0 <= i.at < len(i.code) - 1 and i.role


def test_instruction_lookup():
    assert rings.instruction(" hlt ").code == b"\xf4\xc3"
    with pytest.raises(KeyError, match="HLT"):
        rings.instruction("VMLAUNCH")


def _example_column(feature: str, column: str) -> list[str]:
    doc = coverage.parse_feature(paths.FEATURES_DIR / "hote" / feature)
    for child in doc["feature"]["children"]:
        for ex in child.get("scenario", {}).get("examples", []):
            header = [c["value"] for c in ex["tableHeader"]["cells"]]
            if column in header:
                return [row["cells"][header.index(column)]["value"] for row in ex["tableBody"]]
    return []


def test_the_feature_table_lists_exactly_the_checked_instructions():
    assert _example_column("anneaux.feature", "instruction") == [i.mnemonic for i in rings.privileged_instructions()]


def test_syscall_and_call_loops_run_the_same_number_of_instructions():
    assert rings.SYSCALL_LOOP[5:10] == rings.CALL_LOOP[5:10] == bytes.fromhex("b86e000000")
    assert rings.CALL_LOOP.endswith(b"\xc3\xc3")  # the loop's RET, then the callee
