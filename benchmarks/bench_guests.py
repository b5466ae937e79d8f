"""CPU seconds of each QEMU guest of the embedded cloud while a command runs (e.g. the main job): boot,
after boot, whole life, with the server's name (which scenario made it), image and vCPUs.

`.venv/bin/python benchmarks/bench_guests.py -- .venv/bin/popek run -n 2 --no-cloud-up …`
`.venv/bin/python benchmarks/bench_guests.py --watch 120` (no command: watch the guests that run now)

Every `--interval` s, every `qemu-system*` process's /proc/<pid>/stat is read (utime + stime, keyed by pid
and start time). A guest is named from libvirt's live domain XML (nova's metadata: server name, flavor,
vCPUs, image) and its nova console log (`<instances>/<uuid>/console.log`) is read for the first line that
says the guest is ready: the tiny image's `popek-tiny: ready`, cloud-init's `Cloud-init v. … finished`.
Boot CPU = the QEMU process's CPU at the first sample that saw that line (so up to one interval late);
after = the rest, until the process ended (deleted) or the command ended. Nothing of the cloud is changed.
Writes benchmarks/results/guests.json.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from pathlib import Path

from popek import paths

from bench_cpu import HZ, append_run, read_procs  # the sibling benchmark: this directory is on sys.path

HERE = Path(__file__).resolve().parent
BOOT_TIME = time.time() - float(Path("/proc/uptime").read_text().split()[0])
READY = (re.compile(r"popek-tiny: ready"), re.compile(r"Cloud-init v\. \S+ finished"))
NOVA_META = {"name": r"<nova:name>([^<]*)</nova:name>", "flavor": r"<nova:flavor name=['\"]([^'\"]*)['\"]",
             "vcpus": r"<nova:vcpus>(\d+)</nova:vcpus>", "image": r"<nova:root type=['\"]image['\"] uuid=['\"]([^'\"]*)"}


def qemus() -> dict:
    """{(pid, starttime): (cpu seconds, start epoch)} of the qemu-system processes running now."""
    return {key: (p["cpu"], BOOT_TIME + key[1] / HZ) for key, p in read_procs().items()
            if p["comm"].startswith("qemu-system")}


def describe(pid: int, libvirt_run: Path) -> dict:
    """The domain, nova uuid and nova's metadata of QEMU process `pid` (what can be read of them)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return {}
    args = [a.decode(errors="replace") for a in argv]
    info = {}
    for flag, key in (("-name", "domain"), ("-uuid", "uuid")):
        if flag in args:
            v = args[args.index(flag) + 1]
            info[key] = v.split("guest=", 1)[1].split(",")[0] if v.startswith("guest=") else v
    xml = libvirt_run / f"{info.get('domain', '?')}.xml"
    try:
        text = xml.read_text()
    except OSError:
        return info
    for key, rx in NOVA_META.items():
        m = re.search(rx, text)
        if m:
            info[key] = m.group(1)
    return info


def ready_in(console: Path) -> bool:
    try:
        text = console.read_text(errors="replace")
    except OSError:
        return False
    return any(rx.search(text) for rx in READY)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--watch", type=float, default=0, help="no command: watch this many seconds")
    ap.add_argument("--label", default="")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd and not args.watch:
        ap.error("a command after --, or --watch SECONDS")
    cloud = paths.embedded_cloud_dir()
    libvirt_run, instances = cloud / "libvirt" / "run" / "qemu", cloud / "data" / "nova" / "instances"
    guests: dict = {}
    t0, load0 = time.time(), os.getloadavg()
    proc = subprocess.Popen(cmd) if cmd else None
    loads = []

    def sample(first: bool = False) -> None:
        now = time.time()
        for key, (cpu, started) in qemus().items():
            g = guests.get(key)
            if g is None:
                g = guests[key] = {"pid": key[0], "start": started, "cpu0": cpu if first else 0.0,
                                   "before_run": first, **describe(key[0], libvirt_run)}
            elif "name" not in g:
                g.update(describe(key[0], libvirt_run))
            g["cpu"], g["last"] = cpu, now
            if "ready_at" not in g and g.get("uuid") and ready_in(instances / g["uuid"] / "console.log"):
                g["ready_at"], g["cpu_ready"] = now, cpu
        loads.append((round(now - t0), os.getloadavg()[0]))

    sample(first=True)
    try:
        while (proc.poll() is None) if proc else (time.time() - t0 < args.watch):
            time.sleep(args.interval)
            sample()
    except KeyboardInterrupt:
        if proc:
            proc.terminate()
            proc.wait()
    end, load1 = time.time(), os.getloadavg()
    rows = []
    for g in sorted(guests.values(), key=lambda g: g["start"]):
        gone = g["last"] < end - 2 * args.interval
        used = g["cpu"] - g["cpu0"]
        row = {"name": g.get("name", g.get("domain", "?")), "flavor": g.get("flavor"), "vcpus": g.get("vcpus"),
               "image": g.get("image"), "start_s": round(g["start"] - t0, 1), "life_s": round(g["last"] - g["start"], 1),
               "deleted": gone, "cpu_s": round(used, 1)}
        if "ready_at" in g and not g["before_run"]:
            row["ready_s"] = round(g["ready_at"] - g["start"], 1)
            row["cpu_boot_s"] = round(g["cpu_ready"], 1)
            after = g["last"] - g["ready_at"]
            row["cpu_after_s"] = round(g["cpu"] - g["cpu_ready"], 1)
            row["after_s"] = round(after, 1)
            row["idle_cpu_per_s"] = round((g["cpu"] - g["cpu_ready"]) / after, 4) if after > 5 else None
        rows.append(row)
    total = sum(r["cpu_s"] for r in rows)
    print(f"\nwall {end - t0:.1f} s; load {load0[0]:.2f} -> {load1[0]:.2f}; {len(rows)} guest(s), "
          f"QEMU {total:.1f} CPU-s" + (f"; rc {proc.returncode}" if proc else ""))
    print("| guest | flavor/vCPU | start s | life s | ready s | CPU boot | CPU after (s after) | CPU total |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['flavor']}/{r['vcpus']} | {r['start_s']} | {r['life_s']}{'' if r['deleted'] else '+'} "
              f"| {r.get('ready_s', '-')} | {r.get('cpu_boot_s', '-')} | {r.get('cpu_after_s', '-')} ({r.get('after_s', '-')}) "
              f"| {r['cpu_s']} |")
    append_run("guests", args.label, cmd, wall_s=end - t0, load=[load0[0], load1[0]], loads=loads, guests=rows,
               qemu_cpu_s=total)
    return proc.returncode if proc else 0


if __name__ == "__main__":
    raise SystemExit(main())
