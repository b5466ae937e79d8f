"""Embedded cloud benchmark: cold and warm `popek cloud up`, create → ACTIVE, 5 parallel boots, memory.

Sequence (it stops and restarts the shared cloud; leaves it RUNNING as the last step):
  destroy → cold `up` (the venv is reinstalled; Debian packages and built images stay: said in the table)
  → a second `up` on the running cloud → create → ACTIVE (SDK, N times) → 5 parallel boots → RSS/PSS of
  every process of the cloud (/proc/*/smaps_rollup) → `down` (and what `ps` still shows of ours) → warm `up`.
Prints a markdown table and writes benchmarks/results/cloud.json. `--no-cold` skips the destroy.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from popek import paths
from popek.checks.localcloud import bootstrap, services
from popek.checks.localcloud.state import CloudState

HERE = Path(__file__).resolve().parent
TARGETS = {"cold_up_s": "< 180 s", "warm_up_s": "< 60 s", "second_up_s": "< 5 s", "create_active_s": "< 5 s",
           "parallel5_s": "5/5 ACTIVE", "rss_mib": "< 3072 MiB", "down_s": "no process left"}


def popek_cloud(*args: str) -> float:
    """Run `popek cloud ARGS` (the user's path), return its wall time; stop on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "popek", "cloud", *args], capture_output=True, text=True)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"popek cloud {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return took


def boot(conn, ids, name: str) -> float:
    """create → ACTIVE of one `small` 'Debian 13' server on `public`, then delete it; the seconds to ACTIVE."""
    t0 = time.perf_counter()
    server = conn.compute.create_server(name=name, image_id=ids["image"], flavor_id=ids["flavor"],
                                        networks=[{"uuid": ids["net"]}])
    try:
        conn.compute.wait_for_server(server, status="ACTIVE", wait=180, interval=0.1)
        return time.perf_counter() - t0
    finally:
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=180)


def parallel_boots(state: CloudState, ids, n: int) -> tuple[float, int]:
    """`n` boots at once, one connection each: wall time until the last is ACTIVE, and how many made it."""
    conns = [bootstrap.connect(state, "popek") for _ in range(n)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(boot, c, ids, f"bench-par-{i}-{uuid.uuid4().hex[:6]}") for i, c in enumerate(conns)]
        ok = 0
        for f in futures:
            try:
                f.result()
                ok += 1
            except Exception as exc:  # noqa: BLE001 - counted, and shown
                print(f"parallel boot failed: {exc}", file=sys.stderr)
    # Each thread times its own create → ACTIVE (its delete is not counted); they start together.
    times = [f.result() for f in futures if f.exception() is None]
    return (max(times) if times else float("nan")), ok


def memory(state: CloudState, extra_pids=()) -> tuple[float, float, int, dict]:
    """Sum of RSS and PSS (MiB) over every process of the cloud and `extra_pids` (its guests' QEMU), their
    count, and PSS per command. PSS is the fair sum: forked processes (gunicorn, cotyledon, the privsep
    daemons) share pages that a sum of RSS counts once per process."""
    per: dict[str, float] = {}
    rss = pss = 0
    pids = sorted(set(services.ours(state)) | set(extra_pids))
    for pid in pids:
        r, p = services.process_rss_pss(pid)
        rss, pss = rss + r, pss + p
        try:
            name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode().rsplit("/", 1)[-1]
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
        except OSError:
            continue
        key = title.split(" [")[0] if ":" in title else name
        per[key] = per.get(key, 0) + p / 1024
    return rss / 1024, pss / 1024, len(pids), dict(sorted(per.items(), key=lambda kv: -kv[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-cold", action="store_true", help="do not destroy the cloud (no cold up figure)")
    parser.add_argument("--boots", type=int, default=5, help="sequential create → ACTIVE samples")
    parser.add_argument("--no-dataplane", action="store_true", help="measure the API-only cloud (fake drivers)")
    args = parser.parse_args(argv)
    up = ["up", "--no-dataplane"] if args.no_dataplane else ["up"]
    state = CloudState(paths.embedded_cloud_dir())
    fig: dict = {}

    if not args.no_cold:
        popek_cloud("destroy")
        fig["cold_up_s"] = popek_cloud(*up)
    else:
        popek_cloud(*up)
    fig["second_up_s"] = popek_cloud(*up)

    conn = bootstrap.connect(state, "popek")
    ids = {"image": conn.image.find_image("Debian 13").id, "flavor": conn.compute.find_flavor("small").id,
           "net": conn.network.find_network("public").id}
    samples = [boot(conn, ids, f"bench-{i}") for i in range(args.boots)]
    fig["create_active_s"] = statistics.median(samples)
    fig["create_active_samples_s"] = samples
    fig["parallel5_s"], fig["parallel5_ok"] = parallel_boots(state, ids, 5)
    fig["rss_mib"], fig["pss_mib"], fig["processes"], fig["pss_by_command_mib"] = memory(state)

    fig["down_s"] = popek_cloud("down")
    left = services.ours(state)
    ps = subprocess.run(["ps", "-eo", "pid,cmd"], capture_output=True, text=True).stdout.splitlines()
    matching = [line for line in ps if str(state.root) in line or "gunicorn" in line
                or "beam.smp" in line or "mariadbd" in line or "epmd" in line]
    # A <defunct> line is a dead process waiting for pid 1 to reap it, not something still running.
    fig["ps_after_down"] = [line for line in matching if "<defunct>" not in line]
    fig["zombies_after_down"] = [line for line in matching if "<defunct>" in line]
    fig["left_after_down"] = left
    fig["warm_up_s"] = popek_cloud(*up)  # leaves the cloud running for everyone else
    fig["mode"] = json.loads((state.run_dir / "mode.json").read_text())

    rows = [
        ("cold `up` (destroyed state; apt packages and built images kept)", fig.get("cold_up_s"), TARGETS["cold_up_s"]),
        ("second `up` on the running cloud", fig["second_up_s"], TARGETS["second_up_s"]),
        ("warm `up` (after down)", fig["warm_up_s"], TARGETS["warm_up_s"]),
        (f"create → ACTIVE, SDK (median of {len(samples)})", fig["create_active_s"], TARGETS["create_active_s"]),
        (f"5 parallel boots ({fig['parallel5_ok']}/5 ACTIVE), last ACTIVE", fig["parallel5_s"], TARGETS["parallel5_s"]),
        (f"resident memory, {fig['processes']} processes: RSS MiB", fig["rss_mib"], TARGETS["rss_mib"]),
        ("resident memory: PSS MiB", fig["pss_mib"], ""),
        (f"`down` ({len(left)} process(es) of ours left)", fig["down_s"], TARGETS["down_s"]),
    ]
    print(f"mode: {fig['mode']}\n\n| measure | value | target |\n|---|---|---|")
    for label, value, target in rows:
        shown = "—" if value is None else f"{value:.1f}"
        print(f"| {label} | {shown} | {target} |")
    print("\nPSS by command (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in fig["pss_by_command_mib"].items()))
    print(f"\n`ps` after down, matching the cloud: {fig['ps_after_down'] or 'nothing'}"
          f" (dead, awaiting reaping by pid 1: {fig['zombies_after_down'] or 'none'})")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "cloud.json").write_text(json.dumps(fig, indent=2))
    return 0 if not left and fig["parallel5_ok"] == 5 else 1


if __name__ == "__main__":
    sys.exit(main())
