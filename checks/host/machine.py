"""x86-64 machine code mapped executable and called through ctypes (System V AMD64 ABI).

Every routine that popek runs natively is written as bytes with its assembly beside it, so that the
same routine can also be copied into a KVM guest, run under qemu-user, or run in a container: one
workload, several executors (as kvm-unit-tests runs one test under KVM and TCG).
"""
from __future__ import annotations

import ctypes
import mmap

PAGE = mmap.PAGESIZE


class MachineCode:
    """`code` mapped read+exec in this process; call it like a C function.

    code: the bytes of the routine (position independent; it must return with RET).
    restype / argtypes: the ctypes signature (default: uint64 f(uint64)).
    """

    def __init__(self, code: bytes, restype=ctypes.c_uint64, argtypes=(ctypes.c_uint64,)):
        size = max(PAGE, -(-len(code) // PAGE) * PAGE)
        self._map = mmap.mmap(-1, size, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._map.write(code)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self._map))
        self._fn = ctypes.CFUNCTYPE(restype, *argtypes)(self.address)
        self.code = bytes(code)

    def __call__(self, *args):
        return self._fn(*args)
