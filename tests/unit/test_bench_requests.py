"""benchmarks/bench_requests.py: a raw socket the kernel refuses is an error, never a measurement of 0 requests."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_requests.py"


def load():
    spec = importlib.util.spec_from_file_location("bench_requests_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_refused_raw_socket_exits_non_zero_and_writes_nothing(tmp_path, monkeypatch, capsys):
    bench = load()

    def refused(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    ran = tmp_path / "ran"
    monkeypatch.setattr(bench.socket, "socket", refused)
    monkeypatch.setattr(bench, "HERE", tmp_path)
    monkeypatch.setattr(sys, "argv", ["bench_requests.py", "--", sys.executable, "-c", f"open({str(ran)!r}, 'w')"])
    assert bench.main() == 2
    assert not (tmp_path / "results" / "requests.json").exists()
    assert not ran.exists(), "the command ran although nothing could be measured"
    err = capsys.readouterr().err
    assert "nothing measured" in err and "root" in err
