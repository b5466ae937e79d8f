"""Rings and sensitive instructions: the price of a ring crossing, over N runs (min / median / max).

- SYSCALL (getppid) vs a near CALL/RET, both looped in machine code (rings.syscall_vs_call);
- each sensitive instruction's cost in ring 3 (trapped and emulated by the kernel under UMIP, or native);
- the wall time of one isolated run (fork + handler + wait), the unit cost of every #GP probe.

Prints a markdown table and writes benchmarks/results/host_rings.json. Nothing is asserted.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from popek.checks.host import rings, sensitive

HERE = Path(__file__).resolve().parent


def one_run(umip: sensitive.Umip) -> dict[str, float]:
    out: dict[str, float] = {}
    ratio = rings.syscall_vs_call()
    out["SYSCALL getppid (ns)"] = ratio.subject_ns
    out["CALL/RET (ns)"] = ratio.reference_ns
    out["SYSCALL / CALL (×)"] = ratio.value
    for ins in sensitive.sensitive_instructions():
        out[f"{ins.mnemonic} in ring 3 (ns)"] = sensitive.cost(ins).median
    t0 = time.perf_counter()
    probes = rings.probe_all()
    out["one isolated #GP probe (ms)"] = (time.perf_counter() - t0) * 1e3 / len(probes)
    out["#GP probes that saw #GP"] = sum(rings.refused_by_cpu(i, f) for i, f in probes)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    umip = sensitive.umip_state()
    series: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for key, value in one_run(umip).items():
            series.setdefault(key, []).append(value)
    print(f"{umip.describe()}\n\n| figure ({args.runs} runs) | min | median | max | spread |\n|---|---:|---:|---:|---:|")
    for key, values in series.items():
        lo, med, hi = min(values), statistics.median(values), max(values)
        spread = f"{(hi / lo - 1) * 100:.0f} %" if lo > 0 else "—"
        print(f"| {key} | {lo:.4g} | {med:.4g} | {hi:.4g} | {spread} |")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "host_rings.json").write_text(json.dumps({"umip": umip.describe(), "figures": series}, indent=2,
                                                    ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
