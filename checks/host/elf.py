"""A minimal static ELF64 executable made from raw machine code: no assembler, no linker, no libc.

One ELF header and one PT_LOAD segment that maps the whole file read+execute at `base`; execution
starts at the first byte after the headers. That is all the Linux loader (and qemu-user's loader)
needs to run a program, whatever the CPU architecture named in e_machine. The code must end the
process itself (exit_group syscall): there is nothing to return to.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

EM_X86_64 = 62
EM_AARCH64 = 183
#: Where the file is mapped; the kernel's default for non-PIE executables, free under qemu-user too.
BASE = 0x400000

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr, 64 bytes
_PHDR = struct.Struct("<IIQQQQQQ")          # Elf64_Phdr, 56 bytes
#: Offset of the first code byte in the file (the entry point is base + HEADERS).
HEADERS = _EHDR.size + _PHDR.size

_IDENT = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)  # ELFCLASS64, little endian, EV_CURRENT, SysV ABI
_ET_EXEC, _PT_LOAD, _PF_R, _PF_X = 2, 1, 4, 1


def static_executable(code: bytes, machine: int, base: int = BASE) -> bytes:
    """The bytes of an executable that runs `code` (position: base + HEADERS) on `machine`.

    code: the program's machine code; it must end with an exit syscall.
    machine: e_machine, e.g. EM_X86_64 or EM_AARCH64.
    base: virtual address where the file is mapped (page aligned).
    """
    if base % 0x1000:
        raise ValueError(f"base {base:#x} is not page aligned")
    size = HEADERS + len(code)
    ehdr = _EHDR.pack(_IDENT, _ET_EXEC, machine, 1, base + HEADERS, _EHDR.size, 0, 0,
                      _EHDR.size, _PHDR.size, 1, 0, 0, 0)
    phdr = _PHDR.pack(_PT_LOAD, _PF_R | _PF_X, 0, base, base, size, size, 0x1000)
    return ehdr + phdr + code


@dataclass(frozen=True)
class ElfInfo:
    """What a reader (the kernel, qemu-user, `file`) sees in an executable's header."""
    machine: int
    entry: int
    segments: int


def read_header(data: bytes) -> ElfInfo:
    """Parse the header of a 64-bit little-endian ELF file (raises ValueError on anything else)."""
    if len(data) < _EHDR.size or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    fields = _EHDR.unpack_from(data)
    return ElfInfo(machine=fields[2], entry=fields[4], segments=fields[10])


def write_executable(path, data: bytes) -> None:
    """Write `data` to `path` with mode 0755 (the loader refuses files without the x bit)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, 0o755)
