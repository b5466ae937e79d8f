"""benchmarks/bench_dataplane.py --memory-diff: where the cloud's PSS went between two --memory-only files."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load():
    sys.path.insert(0, str(BENCHMARKS))  # bench_dataplane imports its sibling bench_cloud
    try:
        spec = importlib.util.spec_from_file_location("bench_dataplane_under_test", BENCHMARKS / "bench_dataplane.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def proc(pid, start, pss, cpu, cmd):
    return {"pid": pid, "start_s": start, "pss_mib": pss, "cpu_s": cpu, "cmd": cmd}


def test_growth_first_and_a_reused_pid_is_another_process():
    bench = load()
    before = {"pss_mib": 300.0, "processes": 3, "per_process": [
        proc(10, 5.0, 100.0, 1.0, "gunicorn: worker [neutron-api]"), proc(11, 5.0, 150.0, 2.0, "nova-conductor"),
        proc(12, 6.0, 50.0, 0.5, "privsep daemon A")]}
    after = {"pss_mib": 371.0, "processes": 4, "per_process": [
        proc(10, 5.0, 140.0, 31.0, "gunicorn: worker [neutron-api]"), proc(11, 5.0, 151.0, 4.0, "nova-conductor"),
        proc(12, 90.0, 20.0, 0.1, "privsep daemon B"), proc(13, 91.0, 60.0, 0.2, "privsep daemon C")]}
    lines = bench.memory_diff(before, after)
    assert lines[0].startswith("PSS 300 -> 371 MiB (+71), 3 -> 4")
    assert "+40.0 MiB" in lines[1] and "neutron-api" in lines[1] and "+30.0 CPU-s" in lines[1]
    assert "+1.0 MiB" in lines[2] and "nova-conductor" in lines[2]
    new = [line for line in lines if line.lstrip().startswith("nouveau")]
    gone = [line for line in lines if line.lstrip().startswith("parti")]
    assert sorted(line.split()[-1] for line in new) == ["B", "C"]
    assert [line.split()[-1] for line in gone] == ["A"]
