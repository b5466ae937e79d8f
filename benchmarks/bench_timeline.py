"""Second by second, what runs beside each QEMU guest while a command runs (e.g. the main job): CPU by
component, and for each guest its vCPU threads' CPU, run-queue wait and involuntary switches.

`.venv/bin/python benchmarks/bench_timeline.py -- .venv/bin/popek run -n 2 --no-cloud-up --no-report`

Every `--interval` s, every process is read as bench_cpu.py reads it (its groups: the command, each
embedded-cloud service, other), each QEMU guest apart (named from libvirt's domain XML as bench_guests.py
names it) with its threads (/proc/<pid>/task/*: utime + stime, schedstat's run-queue wait, nonvoluntary
context switches, and the scheduler autogroup the process is in). The command's output lines are printed
with their time since the start (pytest's `-v` lines say when each scenario ends). Each guest's nova
console log is kept as last read (the guest's own milestones: kernel, cloud-init's stages), as the
guest may be deleted before the command ends. Nothing of the cloud is changed.
Writes benchmarks/results/timeline.json.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from popek import paths

from bench_cpu import HZ, Sampler, append_run, read_procs  # siblings: this directory is on sys.path
from bench_boot import milestones
from bench_guests import describe

HERE = Path(__file__).resolve().parent


def threads(pid: int) -> dict:
    """{tid: (name, cpu s, run-queue wait s, nonvoluntary switches)} of process `pid`'s threads."""
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            raw = (task / "stat").read_text()
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            f = raw[raw.rindex(")") + 2:].split()
            sched = (task / "schedstat").read_text().split()
            nvcs = next(int(line.split()[1]) for line in (task / "status").read_text().splitlines()
                        if line.startswith("nonvoluntary_ctxt_switches"))
            out[int(task.name)] = (name, (int(f[11]) + int(f[12])) / HZ, int(sched[1]) / 1e9, nvcs)
        except (OSError, ValueError, IndexError, StopIteration):
            continue
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--label", default="")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("a command after --")
    cloud = paths.embedded_cloud_dir()
    libvirt_run, instances = cloud / "libvirt" / "run" / "qemu", cloud / "data" / "nova" / "instances"
    t0, load0 = time.monotonic(), os.getloadavg()
    lines: list = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)

    def reader() -> None:
        for line in proc.stdout:
            lines.append((round(time.monotonic() - t0, 1), line.rstrip()))
            sys.stdout.write(f"[{time.monotonic() - t0:6.1f}] {line}")
            sys.stdout.flush()

    rd = threading.Thread(target=reader, daemon=True)
    rd.start()
    s = Sampler(proc.pid)
    s.sample(baseline=True)
    guests: dict = {}      # (pid, start) -> info, threads' last readings, console
    samples: list = []
    prev_group: dict = {}
    try:
        while proc.poll() is None:
            time.sleep(args.interval)
            now = round(time.monotonic() - t0, 1)
            s.sample()
            procs = read_procs()
            row = {"t": now, "load": os.getloadavg()[0], "cpu": {}, "guests": {}}
            for key in s.last:
                if key not in procs and key not in prev_group:
                    continue
                name = s.group[key]
                if name == "QEMU guests":
                    g = guests.get(key)
                    if g is None:
                        g = guests[key] = {"pid": key[0], "since": now, **describe(key[0], libvirt_run),
                                           "threads": {}}
                        try:
                            g["autogroup"] = Path(f"/proc/{key[0]}/autogroup").read_text().strip()
                        except OSError:
                            pass
                    elif "name" not in g:
                        g.update(describe(key[0], libvirt_run))
                    name = "QEMU " + g.get("name", g.get("domain", str(key[0])))
                used = s.last[key] - prev_group.get(key, s.first[key])
                prev_group[key] = s.last[key]
                if used > 0:
                    row["cpu"][name] = round(row["cpu"].get(name, 0.0) + used, 2)
            for key, g in guests.items():
                if key not in procs:
                    continue
                per = {"vcpu_cpu": 0.0, "vcpu_wait": 0.0, "vcpu_nvcs": 0, "other_cpu": 0.0}
                for tid, (tname, cpu, wait, nvcs) in threads(key[0]).items():
                    c0, w0, n0 = g["threads"].get(tid, (cpu, wait, nvcs) if now - g["since"] > 1.5 else (0, 0, 0))
                    g["threads"][tid] = (cpu, wait, nvcs)
                    if tname.startswith("CPU "):
                        per["vcpu_cpu"] += cpu - c0
                        per["vcpu_wait"] += wait - w0
                        per["vcpu_nvcs"] += nvcs - n0
                    else:
                        per["other_cpu"] += cpu - c0
                row["guests"]["QEMU " + g.get("name", str(key[0]))] = {k: round(v, 3) for k, v in per.items()}
                if g.get("uuid"):
                    try:
                        g["console"] = (instances / g["uuid"] / "console.log").read_text(errors="replace")[-200000:]
                    except OSError:
                        pass
            samples.append(row)
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
    rd.join(5)
    wall, load1 = time.monotonic() - t0, os.getloadavg()
    out_guests = []
    for g in guests.values():
        out_guests.append({k: v for k, v in g.items() if k not in ("threads", "console")}
                          | {"milestones": milestones(g.get("console", "")), "console_tail": g.get("console", "")[-60000:]})
    print(f"\nrc {proc.returncode}; wall {wall:.1f} s; load {load0[0]:.2f} -> {load1[0]:.2f}")
    for g in out_guests:
        print(f"  {g.get('name')} ({g.get('flavor')}/{g.get('vcpus')} vCPU) from {g['since']} s, autogroup "
              f"{g.get('autogroup')}: {g['milestones']}")
    append_run("timeline", args.label, cmd, rc=proc.returncode, wall_s=wall, load=[load0[0], load1[0]],
               samples=samples, guests=out_guests, lines=lines)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
