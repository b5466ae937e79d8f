"""CPU seconds by component while a command runs (e.g. the main job on the embedded cloud), and what the
guests' metadata requests waited.

`.venv/bin/python benchmarks/bench_cpu.py [--metadata-log] -- .venv/bin/popek run -n 2 --no-cloud-up …`

Every `--interval` s, /proc/<pid>/stat of every process is read (utime + stime, keyed by pid and start time,
so a reused pid is another process); a process's CPU is its last reading minus its first (0 if it started
during the run). Processes are grouped: the command and its descendants (pytest/popek, their ssh and
clients), QEMU guests, each embedded-cloud service (the session of the pid in the cloud's run/<name>.pid:
gunicorn workers, privsep daemons, forked workers belong to their service), kernel threads, other (by
name); a service the command starts (`popek cloud up`) counts as that service, and what the service forks in
a session of its own (libvirtd's QEMU) as QEMU or other, not as the command. The host's busy time from
/proc/stat is printed beside the sum: the difference is what processes living less than one interval used.

`--metadata-log`: while the command runs, /dev/log (absent on this host: syslog messages are dropped) is a
datagram socket this script reads; neutron's metadata proxies (haproxy, `option httplog`) then log each
guest request with its timers (Tw queue, Tc connect, Tr response, Ta total, in ms). The socket is removed
at the end; nothing of the cloud is changed. Writes benchmarks/results/cpu.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from popek import paths
from popek.checks.localcloud import services as cloud_services
from popek.checks.localcloud.state import CloudState

HERE = Path(__file__).resolve().parent
HZ = os.sysconf("SC_CLK_TCK")
# haproxy httplog: ... [date] frontend backend/server Tq/Tw/Tc/Tr/Ta status bytes ... "GET /path HTTP/1.1"
HTTPLOG = re.compile(r"(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/(\d+) (\d{3}) .*\"(\w+) (\S+)")


def append_run(name: str, label, cmd, **fields) -> Path:
    """Add one run (its label, the date, the command and `fields`) to benchmarks/results/NAME.json."""
    out = HERE / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    runs = json.loads(out.read_text()) if out.exists() else []
    runs.append({"label": label, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cmd": cmd, **fields})
    out.write_text(json.dumps(runs, indent=1))
    return out


def read_procs() -> dict:
    out = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
            comm = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2:].split()
            pid = int(entry.name)
            out[(pid, int(fields[19]))] = {"comm": comm, "ppid": int(fields[1]), "sid": int(fields[3]),
                                           "cpu": (int(fields[11]) + int(fields[12])) / HZ}
        except (OSError, ValueError, IndexError):
            continue
    return out


def host_busy() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / HZ   # user nice system irq softirq steal


def services() -> dict[int, str]:
    """{session id: service name} of the embedded cloud's services running now (their pid files, read as
    popek reads them: a recorded pid that is no longer that process is none)."""
    state = CloudState(paths.embedded_cloud_dir())
    found = {}
    for p in state.run_dir.glob("*.pid"):
        pid = cloud_services.read_pid(state, p.stem)
        if pid is not None:
            found[pid] = p.stem
    return found


class Sampler:
    def __init__(self, root_pid: int):
        self.root = root_pid
        self.first: dict = {}
        self.last: dict = {}
        self.group: dict = {}
        self.ours: set = set()     # keys of the command and its descendants
        self.loads: list = []

    def sample(self, baseline: bool = False) -> None:
        procs, sids = read_procs(), services()
        by_pid = {key[0]: key for key in procs}
        for key, p in sorted(procs.items(), key=lambda kv: kv[0][1]):   # parents before their children
            if key not in self.first:
                self.first[key] = p["cpu"] if baseline else 0.0
            self.last[key] = p["cpu"]
            parent = by_pid.get(p["ppid"])
            if p["sid"] in sids:  # a service `popek cloud up` starts is not the command's, nor what it forks (QEMU)
                self.ours.discard(key)
            elif key[0] == self.root or parent in self.ours:
                self.ours.add(key)
            self.group[key] = self.classify(key, p, sids)

    def classify(self, key, p, sids) -> str:
        if key in self.ours:
            return "pytest/popek (the command and its children)"
        if p["comm"].startswith("qemu-system"):
            return "QEMU guests"
        if p["sid"] in sids:
            return "service " + sids[p["sid"]]
        if p["ppid"] == 2 or key[0] == 2:
            return "kernel threads"
        return "other: " + p["comm"].split(":")[0].split("/")[0]

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, cpu in self.last.items():
            used = cpu - self.first[key]
            if used > 0:
                out[self.group[key]] = out.get(self.group[key], 0.0) + used
        return out


def syslog_reader(sock: socket.socket, lines: list, stop: threading.Event) -> None:
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        lines.append((time.time(), data.decode(errors="replace")))


def metadata_summary(lines: list) -> dict:
    reqs = []
    for t, line in lines:
        if "haproxy-metadata-proxy" not in line:
            continue
        m = HTTPLOG.search(line)
        if m:
            tq, tw, tc, tr, ta = (int(m.group(i)) for i in range(1, 6))
            reqs.append({"t": t, "Tw": tw, "Tc": tc, "Tr": tr, "Ta": ta, "status": int(m.group(6)),
                         "path": m.group(8)})
    if not reqs:
        return {"requests": 0}
    ta = sorted(r["Ta"] for r in reqs)
    q = lambda f: ta[min(len(ta) - 1, int(f * len(ta)))]  # noqa: E731
    return {"requests": len(reqs), "Ta ms median": q(0.5), "Ta ms p90": q(0.9), "Ta ms max": ta[-1],
            "over 1 s": sum(1 for x in ta if x > 1000), "over 5 s": sum(1 for x in ta if x > 5000),
            "non-200": sum(1 for r in reqs if r["status"] != 200),
            "slowest": sorted(reqs, key=lambda r: -r["Ta"])[:8]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--metadata-log", action="store_true", help="read the metadata proxies' request log "
                    "through a /dev/log socket made for the run (only if /dev/log is absent)")
    ap.add_argument("--label", default="", help="a name for this run in the JSON")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("a command after --")
    sock, lines, stop = None, [], threading.Event()
    if args.metadata_log:
        if os.path.exists("/dev/log"):
            print("/dev/log exists (a syslog runs): not replaced; no metadata log", file=sys.stderr)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind("/dev/log")
            reader = threading.Thread(target=syslog_reader, args=(sock, lines, stop), daemon=True)
            reader.start()
    load0, t0 = os.getloadavg(), time.monotonic()
    busy0 = host_busy()
    proc = subprocess.Popen(cmd)
    s = Sampler(proc.pid)
    s.sample(baseline=True)
    try:
        while proc.poll() is None:
            time.sleep(args.interval)
            s.sample()
            s.loads.append((round(time.monotonic() - t0), os.getloadavg()[0]))
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
    finally:
        if sock is not None:
            stop.set()
            try:
                os.unlink("/dev/log")
            finally:
                sock.close()
    wall, busy, load1 = time.monotonic() - t0, host_busy() - busy0, os.getloadavg()
    totals = dict(sorted(s.totals().items(), key=lambda kv: -kv[1]))
    summed = sum(totals.values())
    print(f"\nrc {proc.returncode}; wall {wall:.1f} s; host busy {busy:.1f} CPU-s of {wall * os.cpu_count():.0f} "
          f"({100 * busy / (wall * os.cpu_count()):.0f} %); load {load0[0]:.2f} -> {load1[0]:.2f}; "
          f"processes seen at least once: {summed:.1f} CPU-s (short-lived rest {busy - summed:.1f})")
    print("| component | CPU s | share of busy |\n|---|---|---|")
    for name, cpu in totals.items():
        if cpu >= 0.5:
            print(f"| {name} | {cpu:.1f} | {100 * cpu / busy:.0f} % |")
    meta = metadata_summary(lines) if args.metadata_log else None
    if meta is not None:
        print("metadata requests (haproxy):", json.dumps({k: v for k, v in meta.items() if k != "slowest"}))
        for r in meta.get("slowest", []):
            print(f"  {time.strftime('%H:%M:%S', time.gmtime(r['t']))} Ta {r['Ta']} ms (Tw {r['Tw']}, Tc {r['Tc']}, "
                  f"Tr {r['Tr']}) {r['status']} {r['path']}")
    append_run("cpu", args.label, cmd, rc=proc.returncode, wall_s=wall, host_busy_s=busy, load=[load0[0], load1[0]],
               loads=s.loads, cpu_s=totals, metadata=meta,
               metadata_lines=[line for _, line in lines if "haproxy-metadata-proxy" in line][:2000])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
