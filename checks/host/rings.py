"""x86 protection rings (claim C05): the privilege level user code runs at."""
from __future__ import annotations

from popek.checks.machine import MachineCode

# mov eax, cs ; and eax, 3 ; ret   -> the current privilege level (CPL) is CS's two low bits
_READ_CPL = bytes.fromhex("8cc8" "83e003" "c3")


def current_privilege_level() -> int:
    """The CPL this process runs at, read from the CS selector (3 for user code)."""
    return int(MachineCode(_READ_CPL, argtypes=())())
