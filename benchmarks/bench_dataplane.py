"""Dataplane benchmark: what real traffic costs in the embedded cloud on this machine.

Measures, against the embedded cloud running in dataplane mode (`popek cloud up`):
- image builds: the cached path, and (with --cold-images) each image built from scratch in a scratch cache;
- per image (popek-tiny, Debian 13): create -> ACTIVE, and create -> SSH-ready on a floating IP;
- the security-group sequence on one tiny guest (proven reachable, blocked, ICMP allowed, SSH back);
- the floating IP moved from one guest to another, until SSH lands on the second;
- resident memory of the dataplane (OVS, libvirtd, agents) and of QEMU with two tiny guests running;
- with --updown: `down` then a warm `up` of the whole cloud with its dataplane (disruptive: other work
  using the cloud sees it go away for a minute);
- with --memory-only: only the whole cloud's PSS with two tiny guests running (per command, QEMU included),
  nothing else booted or timed (run it on an idle cloud: `flock -x /tmp/popek-cloud.lock`); memory.json
  also lists every process (pid, start, PSS, CPU seconds, command line);
- with --memory-diff A.json B.json: where the PSS went between two such files (e.g. right after `up`, then
  right after a main job): per process by pid, the processes started and ended in between.

Prints a markdown table, writes benchmarks/results/dataplane.json (and dataplane_tempest.log).
Measured once (isolated copy of the cloud, 2 shared cores): both Tempest scenarios passed with the tiny
image, 174 s (test_network_basic_ops 78 s, test_cross_tenant_traffic 86 s).
Usage: .venv/bin/python benchmarks/bench_dataplane.py [--cold-images] [--updown] [--runs N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bench_cloud  # the sibling benchmark: this directory is on sys.path
from popek import paths
from popek.checks.cloud import compute, network, secgroups, traffic
from popek.checks.cloud.ledger import Ledger, new_run_id
from popek.checks.localcloud import bootstrap, dataplane, images, lifecycle, services
from popek.checks.localcloud.state import CloudState

HERE = Path(__file__).resolve().parent
DP_PROCESSES = ("ovsdb-server", "ovs-vswitchd", "libvirtd", "neutron-rpc-server", "neutron-openvswitch-agent",
                "neutron-dhcp-agent", "neutron-l3-agent", "neutron-metadata-agent")


def rss_mib(pids) -> float:
    return sum(services.process_rss_pss(p)[0] for p in pids) / 1024


def session_pids(sid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3]) == sid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def qemu_pids(state) -> list[int]:
    pids = []
    for f in (dataplane.libvirt_dir(state, "run") / "qemu").glob("*.pid"):
        if f.name == "driver.pid":  # libvirtd's own QEMU driver lock, not a guest
            continue
        try:
            pids.append(int(f.read_text()))
        except (OSError, ValueError):
            pass
    return pids


class Guests:
    """Boot guests with a floating IP each on one routed network, in one ledger."""

    def __init__(self, conn):
        self.conn = conn
        self.ledger = Ledger(conn, f"popek-{new_run_id()}-bench")
        self.private, public = compute.ssh_keypair()
        self.key = compute.create_keypair(conn, self.ledger, public)
        self.sg, self.ssh_rule = secgroups.ssh_only_group(conn, self.ledger)
        self.external = network.external_network(conn)
        self.net, _ = network.routed_network(conn, self.ledger, self.external, cidr="10.80.0.0/24")

    def boot(self, image_name: str, flavor: str = "tiny", user_data: str | None = None, ssh_timeout: float = 600):
        image = self.conn.image.find_image(image_name)
        if image is None:
            raise LookupError(f"image {image_name} absente")
        t0 = time.monotonic()
        server = compute.boot(self.conn, self.ledger, "server", image, self.conn.compute.find_flavor(flavor),
                              self.net, key_name=self.key.name, security_groups=[self.sg.name], user_data=user_data)
        active = time.monotonic() - t0
        fip = network.associate(self.conn, network.create_floating_ip(self.conn, self.ledger, self.external),
                                network.server_port(self.conn, server))
        traffic.wait_ssh(fip.floating_ip_address, compute.login_user(image), self.private, timeout=ssh_timeout)
        return {"server": server, "fip": fip, "user": compute.login_user(image), "active_s": active,
                "ssh_ready_s": time.monotonic() - t0}

    def cleanup(self):
        return self.ledger.cleanup()


def bench_security_group(g: Guests, guest) -> dict:
    addr = guest["fip"].floating_ip_address
    t = {}
    t0 = time.monotonic()
    assert traffic.tcp_open(addr, 22, 5), "guest not reachable"
    t["ping blocked (no ICMP rule)"] = _timed(lambda: not traffic.ping(addr, timeout=3))
    icmp = secgroups.add_rule(g.conn, g.ledger, g.sg, direction="ingress", ether_type="IPv4", protocol="icmp")
    t["ICMP rule -> ping passes"] = _timed(lambda: traffic.wait_until(lambda: traffic.ping(addr, 2), 30, 0.2))
    g.conn.network.delete_security_group_rule(g.ssh_rule)
    t["SSH rule removed -> TCP/22 blocked"] = _timed(
        lambda: traffic.wait_until(lambda: not traffic.tcp_open(addr, 22, 2), 30, 0.2))
    g.ssh_rule = secgroups.add_rule(g.conn, g.ledger, g.sg, **secgroups.SSH_IN)
    t["SSH rule back -> TCP/22 passes"] = _timed(
        lambda: traffic.wait_until(lambda: traffic.tcp_open(addr, 22, 2), 30, 0.2))
    g.conn.network.delete_security_group_rule(icmp)
    t["ICMP rule removed -> ping blocked"] = _timed(
        lambda: traffic.wait_until(lambda: not traffic.ping(addr, 2), 30, 0.2))
    t["whole sequence"] = (time.monotonic() - t0, True)
    return t


def _timed(fn):
    t0 = time.monotonic()
    ok = fn()
    return time.monotonic() - t0, bool(ok)


def bench_fip_move(g: Guests, first, second) -> tuple[float, bool]:
    """Move first's floating IP to second; time until SSH on that address reaches second's hostname."""
    fip = first["fip"]
    g.conn.network.update_ip(second["fip"], port_id=None)  # a fixed IP holds one floating IP at a time
    t0 = time.monotonic()
    network.associate(g.conn, fip, network.server_port(g.conn, second["server"]))
    want = second["server"].name.split(".")[0]

    def lands():
        try:
            rc, out = traffic.ssh_run(fip.floating_ip_address, second["user"], g.private, "hostname", timeout=3)
        except Exception:  # noqa: BLE001 - host key changed mid-flight, connection reset: retry
            return False
        return rc == 0 and want[:15] in out

    ok = traffic.wait_until(lands, 60, 0.5)
    return time.monotonic() - t0, ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cold-images", action="store_true", help="also build every image from scratch")
    ap.add_argument("--updown", action="store_true", help="also time down + warm up (disruptive)")
    ap.add_argument("--runs", type=int, default=1, help="tiny guests booted for the boot-time figure")
    ap.add_argument("--tempest", action="store_true",
                    help="also run Tempest's test_network_basic_ops and test_security_groups_basic_ops")
    ap.add_argument("--memory-only", action="store_true",
                    help="only the whole cloud's PSS with two tiny guests (idle cloud)")
    ap.add_argument("--memory-diff", nargs=2, metavar=("BEFORE", "AFTER"),
                    help="compare the processes of two memory.json files of --memory-only")
    args = ap.parse_args()
    if args.memory_diff:
        before, after = (json.loads(Path(f).read_text()) for f in args.memory_diff)
        print("\n".join(memory_diff(before, after)))
        return 0
    state = CloudState(paths.embedded_cloud_dir())
    mode = lifecycle.read_mode(state)
    if not mode.get("dataplane"):
        print(f"le cloud embarqué ne tourne pas en mode plan de données ({lifecycle.mode_label(mode)})")
        return 2
    if args.memory_only:
        return memory_with_two_guests(state)
    rows: list[tuple[str, str]] = []
    figures: dict = {}

    t0 = time.monotonic()
    images.build_images(state.image_cache, log=lambda s: None)
    figures["images_cached_s"] = time.monotonic() - t0
    rows.append(("images (cache)", f"{figures['images_cached_s']:.2f} s"))
    if args.cold_images:
        with tempfile.TemporaryDirectory(dir=state.image_cache.parent) as tmp:
            for name in images.IMAGE_NAMES:
                spec = images.build_image(name, Path(tmp), log=lambda s: None)
                figures[f"image_build_{name}_s"] = spec.build_seconds
                rows.append((f"build {name} (cold)", f"{spec.build_seconds:.1f} s"))

    if args.updown:
        t0 = time.monotonic()
        lifecycle.down(state)
        figures["down_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        lifecycle.up(state, dataplane=True, log=lambda s: None)
        figures["warm_up_s"] = time.monotonic() - t0
        rows += [("down", f"{figures['down_s']:.1f} s"), ("warm up with dataplane", f"{figures['warm_up_s']:.1f} s")]

    conn = bootstrap.connect(state, "popek")
    g = Guests(conn)
    try:
        boots = [g.boot("popek-tiny") for _ in range(max(2, args.runs))]
        act = [b["active_s"] for b in boots]
        ssh = [b["ssh_ready_s"] for b in boots]
        figures["tiny_active_s"], figures["tiny_ssh_ready_s"] = act, ssh
        rows.append(("popek-tiny create -> ACTIVE", f"{statistics.median(act):.1f} s (min {min(act):.1f}, max {max(act):.1f})"))
        rows.append(("popek-tiny create -> SSH-ready (FIP)", f"{statistics.median(ssh):.1f} s (min {min(ssh):.1f}, max {max(ssh):.1f})"))
        qemu = qemu_pids(state)
        figures["qemu_rss_per_guest_mib"] = rss_mib(qemu) / max(1, len(qemu))
        rows.append((f"QEMU RSS per guest ({len(qemu)} guests running, tiny)",
                     f"{figures['qemu_rss_per_guest_mib']:.0f} MiB"))
        dp_rss = 0.0
        for name in DP_PROCESSES:
            pid = services.read_pid(state, name)
            if pid:
                dp_rss += rss_mib(session_pids(pid))
        figures["dataplane_rss_mib"] = dp_rss
        rows.append(("dataplane processes RSS (OVS, libvirtd, agents)", f"{dp_rss:.0f} MiB"))
        whole = bench_cloud.memory(state, qemu)[:3]
        figures["cloud_rss_mib"], figures["cloud_pss_mib"], figures["cloud_processes"] = whole
        rows.append((f"the whole cloud with {len(qemu)} tiny guests ({whole[2]} processes, QEMU included)",
                     f"RSS {whole[0]:.0f} MiB, PSS {whole[1]:.0f} MiB"))
        for what, (secs, ok) in bench_security_group(g, boots[0]).items():
            figures[f"sg: {what}"] = secs
            rows.append((f"security group: {what}", f"{secs:.1f} s" + ("" if ok else " (NOT as expected)")))
        secs, ok = bench_fip_move(g, boots[0], boots[1])
        figures["fip_move_s"] = secs
        rows.append(("floating IP moved -> SSH on the other guest", f"{secs:.1f} s" + ("" if ok else " (NOT reached)")))
        for b in boots:
            conn.compute.delete_server(b["server"])
        try:
            deb = g.boot("Debian 13", flavor="small", user_data="#cloud-config\nruncmd:\n - echo popek > /tmp/popek\n")
            figures["debian_active_s"], figures["debian_ssh_ready_s"] = deb["active_s"], deb["ssh_ready_s"]
            rows.append(("Debian 13 (small, 2 vCPU) create -> ACTIVE", f"{deb['active_s']:.1f} s"))
            rows.append(("Debian 13 create -> SSH-ready (FIP, cloud-init)", f"{deb['ssh_ready_s']:.1f} s"))
            admin = bootstrap.connect(state, "popek-admin")
            domain = admin.compute.get_server(deb["server"].id).instance_name
            pidfile = dataplane.libvirt_dir(state, "run") / "qemu" / f"{domain}.pid"
            figures["qemu_rss_debian_mib"] = rss_mib([int(pidfile.read_text())]) if pidfile.exists() else None
            rows.append(("QEMU RSS, the Debian 13 guest (tb-cache capped)", f"{figures['qemu_rss_debian_mib']:.0f} MiB"))
        except (LookupError, TimeoutError, AssertionError) as exc:
            rows.append(("Debian 13", f"not measured: {exc}"))
    finally:
        problems = g.cleanup()
        if problems:
            print("cleanup problems:", problems, file=sys.stderr)

    if args.tempest:
        rows += run_traffic_suite_and_tempest(state)

    print("| measure | value |\n|---|---|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "dataplane.json").write_text(json.dumps(figures, indent=1, default=str))
    return 0


def memory_with_two_guests(state: CloudState) -> int:
    """The whole cloud's RSS/PSS with two tiny guests up and answering SSH, per command, then cleanup."""
    g = Guests(bootstrap.connect(state, "popek"))
    try:
        g.boot("popek-tiny"), g.boot("popek-tiny")
        time.sleep(10)  # the agents' and QEMUs' first-minute work settled a little
        qemu = qemu_pids(state)
        rss, pss, count, per = bench_cloud.memory(state, qemu)
        procs = processes(sorted(set(services.ours(state)) | set(qemu)))
    finally:
        problems = g.cleanup()
        if problems:
            print("cleanup problems:", problems, file=sys.stderr)
    print(f"le cloud entier, {len(qemu)} invités tiny (QEMU compris, {count} processus) : RSS {rss:.0f} MiB, "
          f"PSS {pss:.0f} MiB ({pss / 1024:.2f} GiB) — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| commande | PSS (MiB) |\n|---|---:|")
    for name, mib in per.items():
        if mib >= 5:
            print(f"| {name} | {mib:.0f} |")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "memory.json").write_text(json.dumps(
        {"rss_mib": rss, "pss_mib": pss, "processes": count, "guests": len(qemu), "per_command_pss_mib": per,
         "per_process": procs}, indent=1))
    return 0


def processes(pids) -> list[dict]:
    """pid, start (s after boot), PSS (MiB), CPU seconds and command line (150 characters) of each live pid."""
    hz = os.sysconf("SC_CLK_TCK")
    out = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out.append({"pid": pid, "start_s": int(stat[19]) / hz, "pss_mib": services.process_rss_pss(pid)[1] / 1024,
                    "cpu_s": (int(stat[11]) + int(stat[12])) / hz, "cmd": cmd.strip()[:150]})
    return out


def memory_diff(before: dict, after: dict, top: int = 20) -> list[str]:
    """Lines: the total, the `top` processes alive in both by PSS growth, then those started and ended
    in between (the same pid with another start time is another process)."""
    key = lambda p: (p["pid"], p["start_s"])  # noqa: E731
    a = {key(p): p for p in before.get("per_process", [])}
    b = {key(p): p for p in after.get("per_process", [])}
    lines = [f"PSS {before['pss_mib']:.0f} -> {after['pss_mib']:.0f} MiB ({after['pss_mib'] - before['pss_mib']:+.0f}), "
             f"{before['processes']} -> {after['processes']} processus"]
    both = sorted(a.keys() & b.keys(), key=lambda k: a[k]["pss_mib"] - b[k]["pss_mib"])
    for k in both[:top]:
        lines.append(f"  {b[k]['pss_mib'] - a[k]['pss_mib']:+7.1f} MiB  {b[k]['pss_mib']:6.1f}  "
                     f"{b[k]['cpu_s'] - a[k]['cpu_s']:+7.1f} CPU-s  {k[0]:>7}  {b[k]['cmd'][:90]}")
    lines += [f"  nouveau {b[k]['pss_mib']:6.1f} MiB  {k[0]:>7}  {b[k]['cmd'][:100]}" for k in b.keys() - a.keys()]
    lines += [f"  parti   {a[k]['pss_mib']:6.1f} MiB  {k[0]:>7}  {a[k]['cmd'][:100]}" for k in a.keys() - b.keys()]
    return lines


#: Tempest's two network scenarios, run against the same cloud with the tiny image.
TEMPEST_SCENARIOS = (r"^tempest\.scenario\.(test_network_basic_ops\.TestNetworkBasicOps\.test_network_basic_ops"
                     r"|test_security_groups_basic_ops\.TestSecurityGroupsBasicOps\.test_cross_tenant_traffic)")


def run_traffic_suite_and_tempest(state: CloudState) -> list[tuple[str, str]]:
    """popek's traffic scenarios (all five, and without the Debian 13 cloud-init boot) beside Tempest's two
    network scenarios, on the same cloud in the same run, as ratios."""
    sys.path.insert(0, str(HERE))
    from bench_cloud_suite import DATAPLANE_SCENARIOS, run_popek_k

    ours = {"popek run cloud — trafic (5 scénarios)": run_popek_k(DATAPLANE_SCENARIOS),
            "popek run cloud -n 2 — trafic (5 scénarios)": run_popek_k(DATAPLANE_SCENARIOS, workers=2),
            "popek run cloud — trafic sans cloud-init (4 scénarios)":
                run_popek_k(f"({DATAPLANE_SCENARIOS}) and not cloudinit")}
    rows = run_tempest(state)
    tempest_wall = rows[-1][2] if rows and len(rows[-1]) == 3 else None
    out = []
    for label, (wall, info) in ours.items():
        ratio = f", ×{wall / tempest_wall:.2f} de Tempest" if tempest_wall else ""
        out.append((label, f"{wall:.0f} s ({info['summary']}){ratio}"))
    return out + [r[:2] for r in rows]


def run_tempest(state: CloudState) -> list[tuple]:
    """Tempest's two network scenarios with bench_cloud_suite's traffic tempest.conf (0600, temp dir)."""
    import subprocess

    import yaml

    sys.path.insert(0, str(HERE))
    from bench_cloud_suite import tempest_traffic_conf

    admin_conn = bootstrap.connect(state, "popek-admin")
    admin = yaml.safe_load(state.clouds_yaml.read_text())["clouds"]["popek-admin"]["auth"]
    bin_dir = Path(sys.executable).parent
    out = []
    with tempfile.TemporaryDirectory(prefix="popek-bench-tempest-dp-") as tmp:
        ws = Path(tmp)
        subprocess.run([str(bin_dir / "tempest"), "init", str(ws)], capture_output=True, text=True, check=True)
        tempest_traffic_conf(ws, admin, admin_conn)
        t0 = time.monotonic()
        proc = subprocess.run([str(bin_dir / "tempest"), "run", "--regex", TEMPEST_SCENARIOS, "--concurrency", "1"],
                              cwd=ws, capture_output=True, text=True)
        wall = time.monotonic() - t0
        totals = [line.strip() for line in proc.stdout.splitlines()
                  if line.strip().startswith(("- Passed", "- Skipped", "- Failed"))]
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "dataplane_tempest.log").write_text(proc.stdout[-20000:] + proc.stderr[-5000:])
        out.append(("Tempest network scenarios (2 tests, concurrency 1)",
                    f"{wall:.0f} s, {', '.join(totals) or 'exit ' + str(proc.returncode)}",
                    wall if proc.returncode == 0 else None))
    return out


if __name__ == "__main__":
    sys.exit(main())
