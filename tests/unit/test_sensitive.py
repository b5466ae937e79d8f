"""Pure logic of the sensitive-instruction check: UMIP decoding and interpretation, value decoding,
consistency of a reading, POPF outcomes."""
import signal
import struct

import pytest

from popek.checks.host import sensitive
from popek.checks.host.isolate import Fault
from popek.checks.host.sensitive import EMULATED, FAULTED, NATIVE, FlagsChange, Reading, Umip

from popek import paths
from popek.checks import coverage

RETURNED = Fault("returned", returned=0)
GP = Fault("fault", signal.SIGSEGV, 128, 13, 0, offset=0)
ON, OFF = Umip(True, True), Umip(False, False)


@pytest.mark.parametrize("flags, max_leaf, ecx, cpuid, kernel", [
    ({"umip", "fpu"}, 0x10, 1 << 2, True, True),
    ({"fpu"}, 0x10, 1 << 2, True, False),
    ({"fpu"}, 0x10, 0, False, False),
    (set(), 5, 1 << 2, False, False),   # leaf 7 does not exist: its bits mean nothing
])
def test_decode_umip(flags, max_leaf, ecx, cpuid, kernel):
    u = sensitive.decode_umip(flags, max_leaf, ecx)
    assert (u.cpuid, u.kernel) == (cpuid, kernel)
    assert u.active is (cpuid and kernel)


@pytest.mark.parametrize("fault, umip, outcome", [
    (RETURNED, ON, EMULATED), (RETURNED, OFF, NATIVE), (RETURNED, Umip(True, False), NATIVE),
    (GP, ON, FAULTED), (GP, OFF, FAULTED), (Fault("died", exit_status=-9), OFF, FAULTED),
])
def test_interpret(fault, umip, outcome):
    assert sensitive.interpret(fault, umip) == outcome


def test_value_decoding():
    sgdt, smsw = sensitive.instruction("sgdt"), sensitive.instruction("SMSW")
    assert sgdt.value(struct.pack("<HQ", 0x7F, 0xFFFFFE0000001000) + b"\0" * 6) == (0xFFFFFE0000001000, 0x7F)
    assert smsw.value(b"\x33\x00" + b"\x5a" * 8) == (0x33, None)


@pytest.mark.parametrize("mnemonic, value, ok", [
    ("SGDT", 0xFFFFFFFFFFFE0000, True), ("SGDT", 0x00007FFF00000000, False),
    ("SLDT", 0, True), ("SLDT", 0x44, False),
    ("STR", 0x40, True), ("STR", 0, False), ("STR", 0x44, False),
    ("SMSW", 0x33, True), ("SMSW", 0x32, False),
])
def test_plausible_values(mnemonic, value, ok):
    assert sensitive.instruction(mnemonic).plausible(value) is ok


def reading(mnemonic, outcome, value, written=True, umip=ON):
    return Reading(sensitive.instruction(mnemonic), umip, RETURNED, value, 0, written, None, outcome)


def test_an_emulated_sgdt_must_return_the_linux_dummy():
    assert reading("SGDT", EMULATED, 0xFFFFFFFFFFFE0000).problems() == []
    assert "valeur factice" in reading("SGDT", EMULATED, 0xFFFFFE0000001000).problems()[0]


def test_a_native_sgdt_leaks_a_real_kernel_address():
    r = reading("SGDT", NATIVE, 0xFFFFFE0000001000, umip=OFF)
    assert r.problems() == [] and "fuit" in r.describe()


def test_str_dummy_equals_the_real_value_so_only_umip_decides():
    assert reading("STR", NATIVE, 0x40, umip=OFF).problems() == []
    assert reading("STR", EMULATED, 0x40).problems() == []


def test_nothing_written_or_impossible_value_is_a_problem():
    assert "rien écrit" in reading("SMSW", EMULATED, 0x5A5A, written=False).problems()[0]
    assert "impossible" in reading("SMSW", NATIVE, 0x32, umip=OFF).problems()[0]


def _example_column(feature: str, column: str) -> list[str]:
    doc = coverage.parse_feature(paths.FEATURES_DIR / "hote" / feature)
    return [row["cells"][[c["value"] for c in ex["tableHeader"]["cells"]].index(column)]["value"]
            for child in doc["feature"]["children"] for ex in child.get("scenario", {}).get("examples", [])
            if column in [c["value"] for c in ex["tableHeader"]["cells"]] for row in ex["tableBody"]]


def test_the_feature_table_lists_exactly_the_checked_instructions():
    # two outlines (with UMIP, without UMIP), each over every checked instruction
    assert (_example_column("instructions_sensibles.feature", "instruction")
            == [i.mnemonic for i in sensitive.sensitive_instructions()] * 2)
    assert _example_column("instructions_sensibles.feature", "drapeau") == list(sensitive.FLAGS)


@pytest.mark.parametrize("mask, before, after, dropped, applied", [
    (0x200, 0x246, 0x246, True, False),    # IF kept: silently ignored
    (0x200, 0x246, 0x046, False, True),
    (0x3000, 0x246, 0x1246, False, False),  # half of IOPL changed: neither
    (0x400, 0x246, 0x646, False, True),
])
def test_flags_change(mask, before, after, dropped, applied):
    c = FlagsChange("X", mask, before, after, RETURNED)
    assert (c.dropped, c.applied) == (dropped, applied)


def test_a_faulting_popf_is_neither_dropped_nor_applied():
    c = FlagsChange("IF", 0x200, 0x246, 0x246, GP)
    assert not c.dropped and not c.applied
    assert "trappe 13" in c.describe()


def test_popf_code_flips_the_mask_and_restores_rflags():
    code = sensitive._popf_code(0x3000)
    assert bytes.fromhex("4835") + (0x3000).to_bytes(4, "little") in code
    assert code.endswith(bytes.fromhex("ff37" "9d" "c3"))
