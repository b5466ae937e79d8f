"""popek's own API requests and subprocesses, per scenario, in a real `popek run` (a pytest plugin), and the
comparison of two such runs (e.g. two trees, or before/after a change).

Counting (the plugin, given to `popek run` after `--`):

    REQCOUNT_DIR=/tmp/a PYTHONPATH=benchmarks .venv/bin/popek run -n 2 --no-cloud-up --no-report -- -p bench_main_requests

Each process of the run (controller, each xdist worker) writes REQCOUNT_DIR/<worker>.json at its end:
{scenario node id: {"n": requests, "t": seconds spent in them, "wall", "cpu": this process's CPU-s during
the scenario, "calls": {"GET /v2.0/networks?router:external=": n}, "ctime": {call: s}, "sub": {command: n},
"subt": {command: s (subprocess.run only)}}}, "<process>": the process's CPU-s. A request is one
keystoneauth `Session.request` (every openstacksdk call of popek's connections; the `openstack` client's
own requests, in its subprocess, are not counted); ids in paths become `<id>`, query values are dropped.
What a fixture does is counted in the scenario that set it up first (the cloud's connection, the sweep).

Comparing: `.venv/bin/python benchmarks/bench_main_requests.py DIR_A DIR_B` prints per scenario the
requests and their seconds (A, B), the calls whose count changed most, and the subprocesses.
Counts are exact; seconds depend on the host's load (measured: 405-545 ms a request at load 7.8, 83-129 ms
at load 0.1-1.9, 2026-12-07). Polls (`GET /servers`) grow with the waits.
"""
from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest

ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
#: a name popek gives a resource: popek-<run id>-<worker or run>-<what>-<random>
NAME = re.compile(r"popek-[0-9a-f]{8}-[A-Za-z0-9_.-]+")
CURRENT = ["<none>"]
LOCK = threading.Lock()
DATA: dict = collections.defaultdict(lambda: {"n": 0, "t": 0.0, "wall": 0.0, "cpu": 0.0,
                                              "calls": collections.Counter(), "ctime": collections.Counter(),
                                              "sub": collections.Counter(), "subt": collections.Counter()})
NAMED = ("ovs-ofctl", "ovs-vsctl", "ip", "openstack")


def shape(method: str, url: str) -> str:
    """`GET /v2.0/servers/<id>?status=`: the call without its host, ids and query values."""
    url = re.sub(r"^https?://[^/]+", "", NAME.sub("<popek-name>", ID.sub("<id>", url)))
    if "?" in url:
        base, query = url.split("?", 1)
        url = base + "?" + "&".join(sorted({p.split("=")[0] for p in query.split("&") if p}))
    return f"{method} {url}"


def command(args) -> str:
    """A subprocess's name, with its first argument for the few commands that are several tools."""
    argv = list(args) if isinstance(args, (list, tuple)) else str(args).split()
    name = os.path.basename(str(argv[0])) if argv else "?"
    return f"{name} {argv[1]}" if name in NAMED and len(argv) > 1 else name


def _install() -> None:
    from keystoneauth1 import session

    request, popen_init, run = session.Session.request, subprocess.Popen.__init__, subprocess.run

    def counted_request(self, url, method, *args, **kwargs):
        start = time.monotonic()
        try:
            return request(self, url, method, *args, **kwargs)
        finally:
            spent, call = time.monotonic() - start, shape(method, str(url))
            with LOCK:
                entry = DATA[CURRENT[0]]
                entry["n"] += 1
                entry["t"] += spent
                entry["calls"][call] += 1
                entry["ctime"][call] += spent

    def counted_popen(self, args, *rest, **kwargs):
        with LOCK:
            DATA[CURRENT[0]]["sub"][command(args)] += 1
        return popen_init(self, args, *rest, **kwargs)

    def timed_run(args, *rest, **kwargs):
        start = time.monotonic()
        try:
            return run(args, *rest, **kwargs)
        finally:
            with LOCK:
                DATA[CURRENT[0]]["subt"][command(args)] += time.monotonic() - start

    session.Session.request = counted_request
    subprocess.Popen.__init__ = counted_popen
    subprocess.run = timed_run


def pytest_configure(config):
    _install()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    CURRENT[0] = item.nodeid
    start, cpu = time.monotonic(), time.process_time()
    yield
    DATA[item.nodeid]["wall"] += time.monotonic() - start
    DATA[item.nodeid]["cpu"] += time.process_time() - cpu
    CURRENT[0] = "<between>"


def pytest_sessionfinish(session):
    out = os.environ.get("REQCOUNT_DIR")
    if not out:
        return
    os.makedirs(out, exist_ok=True)
    DATA["<process>"]["cpu"] = time.process_time()
    with LOCK:
        dump = {key: {"n": v["n"], "t": round(v["t"], 3), "wall": round(v["wall"], 2), "cpu": round(v["cpu"], 2),
                      "calls": dict(v["calls"]), "ctime": {c: round(x, 3) for c, x in v["ctime"].items()},
                      "sub": dict(v["sub"]), "subt": {c: round(x, 3) for c, x in v["subt"].items()}}
                for key, v in DATA.items()}
    with open(os.path.join(out, f"{os.environ.get('PYTEST_XDIST_WORKER', 'controller')}.json"), "w") as f:
        json.dump(dump, f, indent=1)


def load(folder: str) -> dict:
    """{scenario name (without its file): counts} of every process's file in `folder`."""
    found = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                for key, value in json.load(f).items():
                    short = key.split("::")[-1]
                    found[short if short not in found else f"{short}@{name}"] = value
    return found


def compare(a: dict, b: dict, top: int = 25) -> list[str]:
    lines = [f"{'scenario':70s} {'n A':>5s} {'n B':>5s} {'s A':>7s} {'s B':>7s}"]
    for key in sorted(set(a) | set(b), key=lambda k: -b.get(k, {}).get("n", 0)):
        x, y = a.get(key, {}), b.get(key, {})
        if x.get("n") or y.get("n"):
            lines.append(f"{key[:70]:70s} {x.get('n', 0):5d} {y.get('n', 0):5d} {x.get('t', 0):7.2f} {y.get('t', 0):7.2f}")
    total = {side: (sum(v.get("n", 0) for v in d.values()), sum(v.get("t", 0) for v in d.values()))
             for side, d in (("A", a), ("B", b))}
    lines.append(f"total: A {total['A'][0]} requests, {total['A'][1]:.1f} s; B {total['B'][0]} requests, {total['B'][1]:.1f} s")
    for label, key in (("calls", "calls"), ("subprocesses", "sub")):
        ca, cb = collections.Counter(), collections.Counter()
        for v in a.values():
            ca.update(v.get(key, {}))
        for v in b.values():
            cb.update(v.get(key, {}))
        lines.append(f"{label} whose count changed most (B - A):")
        for call in sorted(set(ca) | set(cb), key=lambda c: (-abs(cb[c] - ca[c]), c))[:top]:
            if cb[call] != ca[call]:
                lines.append(f"  {cb[call] - ca[call]:+5d}  A {ca[call]:4d}  B {cb[call]:4d}  {call}")
    return lines


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(compare(load(argv[0]), load(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
