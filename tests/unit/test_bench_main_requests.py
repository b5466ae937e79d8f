"""benchmarks/bench_main_requests.py: a call is counted by its shape (no host, ids, popek's names or query
values), and two runs' files compare by scenario and by call."""
import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_main_requests.py"


def load():
    spec = importlib.util.spec_from_file_location("bench_main_requests_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_call_is_counted_by_its_shape():
    bench = load()
    assert bench.shape("GET", "http://127.0.0.1:9696/v2.0/networks?router%3Aexternal=True&limit=5") == \
        "GET /v2.0/networks?limit&router%3Aexternal"
    assert bench.shape("DELETE", "http://h:8774/v2.1/servers/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0") == \
        "DELETE /v2.1/servers/<id>"
    assert bench.shape("GET", "http://h:8774/v2.1/os-keypairs/popek-0a1b2c3d-gw0-key-12") == \
        "GET /v2.1/os-keypairs/<popek-name>"
    assert bench.command(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows"]) == "ovs-ofctl -O"
    assert bench.command(["/usr/bin/ping", "-c", "1"]) == "ping"


def test_two_runs_compare_by_scenario_and_by_call(tmp_path):
    bench = load()
    for side, n in (("a", 3), ("b", 1)):
        (tmp_path / side).mkdir()
        (tmp_path / side / "gw0.json").write_text(json.dumps({"steps/test_cloud.py::test_x": {
            "n": n, "t": 0.5 * n, "calls": {"GET /v2.0/subnets": n}, "sub": {}}}))
    lines = bench.compare(bench.load(str(tmp_path / "a")), bench.load(str(tmp_path / "b")))
    assert any(line.startswith("test_x") and line.split()[1:3] == ["3", "1"] for line in lines)
    assert "total: A 3 requests, 1.5 s; B 1 requests, 0.5 s" in lines
    assert "     -2  A    3  B    1  GET /v2.0/subnets" in lines
