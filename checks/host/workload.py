"""The one workload every executor runs: native, KVM guest, QEMU TCG (user and system), container.

A multiply-xor hash loop, position independent, no memory access, no stack use, so that the same bytes
run anywhere a 64-bit x86 CPU (real or emulated) does. Its result is a checksum (equivalence) and its
time per iteration is the efficiency figure.

    u64 workload(u64 n)          ; rdi = n, returns rax
        mov   rax, 0x9E3779B97F4A7C15
        test  rdi, rdi
        jz    done
    loop:
        imul  rax, rax, 0x2545F491
        xor   rax, rdi
        dec   rdi
        jnz   loop
    done:
        ret
"""
from __future__ import annotations

SEED = 0x9E3779B97F4A7C15
MULTIPLIER = 0x2545F491
MASK = (1 << 64) - 1

#: The routine's body without the final RET (executors that embed it append their own ending).
BODY = (bytes.fromhex("48b8") + SEED.to_bytes(8, "little")
        + bytes.fromhex("4885ff" "740f")
        + bytes.fromhex("4869c0") + MULTIPLIER.to_bytes(4, "little")
        + bytes.fromhex("4831f8" "48ffcf" "75f1"))
#: The routine as a callable function (System V: n in rdi, result in rax).
CODE = BODY + b"\xc3"


def reference(n: int) -> int:
    """What the routine returns for `n`, computed in Python (for equivalence checks)."""
    x = SEED
    while n:
        x = ((x * MULTIPLIER) & MASK) ^ n
        n -= 1
    return x
