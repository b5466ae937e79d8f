"""Exec a program with transparent huge pages off for it and for every process it starts: run by the cloud
venv's Python (`python -I -S nothp.py PROGRAM ARG...`, standard library only) in front of popek's libvirtd,
so that the QEMU of each guest back its RAM with 4 KiB pages. popek itself never imports it.

Why: QEMU madvises all guest RAM MADV_HUGEPAGE, and on a host whose THP mode is `madvise` (Debian's
default) every 2 MiB region a guest touches becomes resident as a whole. Measured (2026-12-06, issue #17):
a tiny guest's RAM 122 MiB resident in huge pages, 114-116 MiB in 4 KiB pages (the guest itself says
~26 MiB in use: the rest was touched during its boot and freed), i.e. 6-8 MiB less per guest.
`prctl(PR_SET_THP_DISABLE)` (prctl(2)) is inherited across fork and kept across execve: it reaches the
QEMU that libvirtd starts, and nothing else on the host (its THP mode is not touched).
"""
from __future__ import annotations

import ctypes
import os
import sys

PR_SET_THP_DISABLE = 41


def main(argv: list[str]) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0:  # not fatal: the program runs as it would without
        print(f"nothp: prctl(PR_SET_THP_DISABLE) failed: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
