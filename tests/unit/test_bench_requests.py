"""benchmarks/bench_requests.py: a raw socket the kernel refuses is an error, never a measurement of 0 requests."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from popek.checks.localcloud.state import PORTS

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
    monkeypatch.setattr(bench, "cloud_ports", lambda: bench.api_ports(PORTS))  # never the host's own map
    monkeypatch.setattr(sys, "argv", ["bench_requests.py", "--", sys.executable, "-c", f"open({str(ran)!r}, 'w')"])
    assert bench.main() == 2
    assert not (tmp_path / "results" / "requests.json").exists()
    assert not ran.exists(), "the command ran although nothing could be measured"
    err = capsys.readouterr().err
    assert "nothing measured" in err and "root" in err


def test_the_ports_listened_to_are_the_clouds_map_a_moved_one_included():
    """A port moved at `up` (keystone 5000 -> 15000: a squatter on 5000) is where keystone's requests go: the
    kernel filter keeps that one, not the standard one (which is someone else's server now)."""
    bench = load()
    ports = bench.api_ports(PORTS | {"keystone": 15000})
    assert ports[15000] == "keystone" and 5000 not in ports
    assert ports[PORTS["metadata"]] == "nova-metadata" and len(ports) == len(bench.API_KEYS)
    compared = {ins[3] for ins in bench.kernel_filter(ports) if ins[0] == 0x15}
    assert 15000 in compared and 5000 not in compared
