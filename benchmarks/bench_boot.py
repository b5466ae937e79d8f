"""Debian 13 first boot through nova: create -> SSH with the key and the user data applied (issue #17).

Each variant is the current `Debian 13` image (downloaded from Glance) with one or more levers applied,
uploaded to Glance by the member as a separate private image named `popek-<run>-bench-…` and deleted after.
Per variant: one warm-up create (until ACTIVE: fills nova's image cache, not counted), then N boots with
flavor `small` on the member's routed `private` network, reached through one floating IP moved to each new
guest's port as soon as it exists (as the suite reaches its guests; `--net public` boots on `public`
directly), each timed from `create_server` to the moment an SSH login with the run's key reads the file
the user data wrote. Where the time went comes from the guest itself: /proc/uptime read in
that same login (so create -> QEMU start = total - uptime), and the console log's milestones (kernel
timestamps, systemd, cloud-init's "Up N seconds").

Levers (`--variants`, comma-separated; `+` combines levers into one variant):
  base       the image as popek builds it
  fit        the file system already fills the flavor's 10 GiB disk: growpart/resizefs have nothing to do
  direct     direct kernel boot: kernel and initrd as Glance aki/ari images (kernel_id, ramdisk_id,
             os_command_line): no SeaBIOS disk boot, no extlinux
  noinit     init_on_alloc=0 on the kernel command line (Debian's kernel zeroes every allocated page)
  trim       cloud-init modules trimmed to those the course uses (users, keys, write_files, runcmd, packages)
  fastds     datasource fast path: no cloud-init generator/ds-identify at boot (cloud-init wanted outright)
  file       start from --base-file instead of the Glance image (e.g. a new recipe's build)
e.g. `--variants base,fit,direct,noinit,trim,fastds,fit+direct+noinit+trim+fastds`.

Run it on an idle cloud: `flock -x /tmp/popek-cloud.lock .venv/bin/python benchmarks/bench_boot.py …`
(keep each hold under 10 min: about one variant of 5 runs per call). Prints a markdown table, appends the
raw figures to benchmarks/results/boot.json.
"""
from __future__ import annotations

import argparse
import json
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from popek import paths
from popek.checks.cloud import compute, network, secgroups, traffic
from popek.checks.cloud.ledger import Ledger, new_run_id, terminate_like_ctrl_c
from popek.checks.localcloud import bootstrap
from popek.checks.localcloud.state import CloudState

HERE = Path(__file__).resolve().parent
PART_OFFSET = 1 << 20      # images.make_boot_disk: one partition at 1 MiB
FIT_GIB = 10               # flavor small's disk
BOOT_TIMEOUT = 360        # seconds from create to the login; a boot that takes longer counts as failed
LEVERS = ("fit", "direct", "noinit", "trim", "fastds")

#: cloud-init modules the course uses (C19: users, keys, packages; the scenarios: write_files, runcmd),
#: with what they need to apply them (hostname, /etc/hosts, growpart and resizefs for the flavor's disk).
TRIMMED_MODULES = {
    "cloud_init_modules": ["bootcmd", "write-files", "growpart", "resizefs", "set_hostname", "update_hostname",
                           "update_etc_hosts", "users-groups", "ssh"],
    "cloud_config_modules": ["set-passwords", "runcmd"],
    "cloud_final_modules": ["package-update-upgrade-install", "write-files-deferred", "scripts-per-once",
                            "scripts-per-boot", "scripts-per-instance", "scripts-user", "final-message"],
}


def run(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def _retrim(cfg: str) -> str:
    """cloud.cfg with its three module lists replaced by TRIMMED_MODULES."""
    for key, mods in TRIMMED_MODULES.items():
        block = f"{key}:\n" + "".join(f" - {m}\n" for m in mods)
        cfg, n = re.subn(rf"(?ms)^{key}:\n(?:\s*-[^\n]*\n)+", block, cfg)
        if n != 1:
            raise RuntimeError(f"cloud.cfg: no {key} list")
    return cfg


def make_variant(base_qcow2: Path, levers: set[str], work: Path) -> dict:
    """The base image with `levers` applied: {"disk": qcow2, "kernel", "initrd", "cmdline" (direct only)}."""
    raw, mnt = work / "disk.raw", work / "mnt"
    mnt.mkdir(exist_ok=True)
    run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(base_qcow2), str(raw)])
    out: dict = {}
    run(["mount", "-o", f"loop,offset={PART_OFFSET}", str(raw), str(mnt)])
    try:
        conf = mnt / "boot/extlinux/extlinux.conf"
        text = conf.read_text()
        if "noinit" in levers:
            text = re.sub(r"(?m)^(\s*APPEND .*)$", r"\1 init_on_alloc=0", text)
            conf.write_text(text)
        if "trim" in levers:
            cfg = mnt / "etc/cloud/cloud.cfg"
            cfg.write_text(_retrim(cfg.read_text()))
        if "fastds" in levers:
            # cloud-init's systemd generator runs ds-identify (a long shell script probing DMI, block
            # devices, files) at every boot to decide whether cloud-init runs; this image has one
            # datasource: the generator masked, cloud-init.target wanted outright, and the run file the
            # generator would write (`cloud-init status` reads it) made by tmpfiles.
            gen = mnt / "etc/systemd/system-generators"
            gen.mkdir(parents=True, exist_ok=True)
            (gen / "cloud-init-generator").symlink_to("/dev/null")
            (mnt / "etc/systemd/system/multi-user.target.wants/cloud-init.target").symlink_to(
                "/usr/lib/systemd/system/cloud-init.target")
            (mnt / "etc/tmpfiles.d/popek-cloud-init.conf").write_text("f /run/cloud-init/enabled 0644 - - -\n")
        if "direct" in levers:
            kernel = re.search(r"(?m)^\s*LINUX (\S+)", text).group(1)
            initrd = re.search(r"(?m)^\s*INITRD (\S+)", text).group(1)
            out["cmdline"] = re.search(r"(?m)^\s*APPEND (.*)$", text).group(1).strip()
            for key, rel in (("kernel", kernel), ("initrd", initrd)):
                out[key] = work / key
                shutil.copyfile(mnt / rel.lstrip("/"), out[key])
    finally:
        run(["umount", str(mnt)])
    if "fit" in levers:
        size = FIT_GIB << 30
        with open(raw, "r+b") as f:
            f.truncate(size)
            f.seek(446 + 12)   # the one partition entry's sector count
            f.write(((size - PART_OFFSET) // 512).to_bytes(4, "little"))
        loop = run(["losetup", "--show", "-f", "-o", str(PART_OFFSET), str(raw)]).strip()
        try:
            subprocess.run(["e2fsck", "-f", "-y", loop], capture_output=True)
            run(["resize2fs", loop])
        finally:
            run(["losetup", "-d", loop])
    out["disk"] = work / "disk.qcow2"
    run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw), str(out["disk"])])
    raw.unlink()
    return out


class Bench:
    def __init__(self, state: CloudState, net: str):
        self.conn = bootstrap.connect(state, "popek")
        self.run_id = new_run_id()
        self.ledger = Ledger(self.conn, f"popek-{self.run_id}-bench")
        self.image_ids: list[str] = []
        self.fip = None
        self.user = "root"     # set from the base image (main): the variants' own names say nothing
        try:
            self.private, public = compute.ssh_keypair()
            self.key = compute.create_keypair(self.conn, self.ledger, public)
            self.sg = self._ssh_group()
            self.net = self.conn.network.find_network(net, ignore_missing=False)
            self.flavor = self.conn.compute.find_flavor("small", ignore_missing=False)
            if not self.net.is_router_external:
                # a routed network: one floating IP, moved to each new guest's port as soon as it exists
                self.fip = network.create_floating_ip(self.conn, self.ledger, network.external_network(self.conn))
        except BaseException:
            self.ledger.cleanup()
            raise

    def _ssh_group(self, patience: float = 60):
        """The run's SSH-only group; while the project's group quota is full (other runs' groups), wait."""
        from openstack import exceptions as sdk_exc
        deadline = time.monotonic() + patience
        while True:
            try:
                return secgroups.ssh_only_group(self.conn, self.ledger)[0]
            except sdk_exc.ConflictException as exc:
                if "Quota exceeded" not in str(exc) or time.monotonic() > deadline:
                    raise
                print("    security-group quota full, waiting", flush=True)
                time.sleep(10)

    def upload(self, name: str, variant: dict, props: dict, min_ram: int, min_disk: int):
        img = self.conn.image
        extra = dict(props)
        if "kernel" in variant:
            for key, fmt in (("kernel", "aki"), ("initrd", "ari")):
                part = img.create_image(name=f"popek-{self.run_id}-bench-{name}-{key}", filename=str(variant[key]),
                                        disk_format=fmt, container_format=fmt, visibility="private", wait=True)
                self.image_ids.append(part.id)
                extra["kernel_id" if key == "kernel" else "ramdisk_id"] = part.id
            extra["os_command_line"] = variant["cmdline"]
        image = img.create_image(name=f"popek-{self.run_id}-bench-{name}", filename=str(variant["disk"]),
                                 disk_format="qcow2", container_format="bare", visibility="private",
                                 min_ram=min_ram, min_disk=min_disk, wait=True, **extra)
        self.image_ids.append(image.id)
        return image

    def create(self, image, user_data: str | None = None):
        import base64
        kw = {"user_data": base64.b64encode(user_data.encode()).decode()} if user_data else {}
        return self.ledger.create("server", "boot", lambda name: self.conn.compute.create_server(
            name=name, image_id=image.id, flavor_id=self.flavor.id, networks=[{"uuid": self.net.id}],
            key_name=self.key.name, security_groups=[{"name": self.sg.name}], **kw))

    def gone(self, server) -> None:
        self.ledger.delete(server.id)

    def boot_once(self, image, details: bool) -> dict:
        token = secrets.token_hex(8)
        user_data = f"#cloud-config\nwrite_files:\n  - path: /run/popek-bench\n    content: \"{token}\\n\"\n"
        t0 = time.monotonic()
        server = self.create(image, user_data)
        r: dict = {}
        address = None
        if self.fip is not None:
            network.associate(self.conn, self.fip, network.server_port(self.conn, server))
            address = self.fip.floating_ip_address
        while time.monotonic() - t0 < BOOT_TIMEOUT:
            s = self.conn.compute.get_server(server.id)
            if s.status == "ERROR":
                raise RuntimeError(f"server ERROR: {s.fault}")
            if s.status == "ACTIVE":
                r["active_s"] = time.monotonic() - t0
                address = address or next(a["addr"] for nets in s.addresses.values() for a in nets
                                          if a.get("version") == 4)
                break
            time.sleep(0.5)
        user = self.user
        while time.monotonic() - t0 < BOOT_TIMEOUT:
            try:
                with socket.create_connection((address, 22), timeout=1):
                    pass
            except OSError:
                time.sleep(0.5)
                continue
            r.setdefault("port22_s", time.monotonic() - t0)
            try:
                rc, out = traffic.ssh_run(address, user, self.private, "cat /run/popek-bench; cat /proc/uptime", 5)
            except Exception:  # noqa: BLE001 - sshd up before the key is installed, connection reset…
                time.sleep(0.5)
                continue
            if rc == 0 and token in out:
                r["ssh_s"] = time.monotonic() - t0
                r["guest_uptime_s"] = float(out.split()[-2])
                break
            time.sleep(0.5)
        else:
            r["failed"] = f"no SSH login with the user data applied in {BOOT_TIMEOUT} s ({address})"
        console = self.conn.compute.get_server_console_output(server.id).get("output", "")
        r["milestones"] = milestones(console)
        if "failed" in r:
            r["console"] = console[-30000:]
        elif details:
            cmd = ("sudo cloud-init analyze blame 2>&1 | head -25; echo ---; systemd-analyze 2>&1; "
                   "systemd-analyze blame 2>&1 | head -25; echo ---; systemd-analyze critical-chain ssh.service 2>&1")
            r["analyze"] = traffic.ssh_run(address, user, self.private, cmd, 60)[1]
            r["console"] = console[-30000:]
        self.gone(server)
        print(f"    {'FAILED ' + r['failed'] if 'failed' in r else format(r['ssh_s'], '.1f') + ' s'}; "
              f"guest uptime {r.get('guest_uptime_s', float('nan')):.1f} s; {r['milestones']}", flush=True)
        return r

    def cleanup(self) -> list[str]:
        problems = self.ledger.cleanup()
        for image_id in self.image_ids:
            try:
                self.conn.image.delete_image(image_id, ignore_missing=True)
            except Exception as exc:  # noqa: BLE001 - reported, the loop goes on
                problems.append(f"image {image_id}: {exc}")
        return problems


#: Console milestones: (label, regex); the first match's time counts (kernel timestamp or cloud-init's Up N).
MILESTONES = (
    ("kernel: /init", r"\[\s*([\d.]+)\] Run /init as init process"),
    ("systemd started", r"\[\s*([\d.]+)\] systemd\[1\]: systemd \d+"),
    ("systemd: start job queued", r"\[\s*([\d.]+)\] systemd\[1\]: Queued start job"),
    ("cloud-init init-local", r"running 'init-local' at [^.]*\. Up ([\d.]+) seconds"),
    ("cloud-init init", r"running 'init' at [^.]*\. Up ([\d.]+) seconds"),
    ("cloud-init modules:config", r"running 'modules:config' at [^.]*\. Up ([\d.]+) seconds"),
    ("cloud-init modules:final", r"running 'modules:final' at [^.]*\. Up ([\d.]+) seconds"),
    ("cloud-init finished", r"finished at [^.]*\. Datasource [^.]*\.\s+Up ([\d.]+) seconds"),
)


def milestones(console: str) -> dict:
    out = {}
    for label, rx in MILESTONES:
        m = re.search(rx, console)
        if m:
            out[label] = float(m.group(1))
    return out


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.1f} s ({min(xs):.1f}–{max(xs):.1f})"


def summary(res: dict) -> None:
    ok = [b for b in res["boots"] if "failed" not in b]
    if not ok:
        print(f"{res['variant']}: every boot failed", flush=True)
        return
    print(f"{res['variant']}: create->SSH+user data {spread([b['ssh_s'] for b in ok])} ({len(ok)}/{len(res['boots'])} ok); "
          f"guest uptime at login {spread([b['guest_uptime_s'] for b in ok])}; "
          f"ACTIVE {spread([b['active_s'] for b in ok])}", flush=True)
    for label in dict.fromkeys(k for b in ok for k in b["milestones"]):
        vals = [b["milestones"][label] for b in ok if label in b["milestones"]]
        print(f"    {label}: {spread(vals)}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="base", help="comma-separated; '+' combines levers (see the docstring)")
    ap.add_argument("--runs", type=int, default=5, help="boots per variant, in rounds: one boot of each variant "
                    "per round, so that a load change on the host falls on every variant alike")
    ap.add_argument("--image", default="Debian 13", help="the Glance image the variants start from")
    ap.add_argument("--base-file", help="a qcow2 (e.g. a new recipe's build) for the variant `file` (and "
                    "`file+…`); its Glance properties are --image's")
    ap.add_argument("--net", default="private",
                    help="the network to boot on: the member's routed `private` reached through a floating IP "
                         "(what the suite does, default), or `public` directly")
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        bad = set(v.split("+")) - set(LEVERS) - {"base", "file"}
        if bad:
            print(f"levier inconnu : {', '.join(sorted(bad))} (connus : base, file, {', '.join(LEVERS)})",
                  file=sys.stderr)
            return 2
        if "file" in v.split("+") and not args.base_file:
            print("la variante « file » demande --base-file", file=sys.stderr)
            return 2
    terminate_like_ctrl_c()  # `timeout`, `kill`: clean up as for Ctrl-C (a background job ignores SIGINT)
    state = CloudState(paths.embedded_cloud_dir())
    bench = Bench(state, args.net)
    results = []
    scratch = Path(tempfile.mkdtemp(prefix="popek-bench-boot-", dir=state.image_cache.parent))
    try:
        base = bench.conn.image.find_image(args.image, ignore_missing=False)
        glance_path = scratch / "base.qcow2"
        bench.conn.image.download_image(base, output=str(glance_path))
        props = {k: v for k, v in (base.properties or {}).items() if k.startswith(("os_", "hw_"))}
        bench.user = compute.login_user(base)
        prepared = []
        for v in variants:
            parts = set(v.split("+"))
            levers = parts - {"base", "file"}
            base_path = Path(args.base_file) if "file" in parts else glance_path
            with tempfile.TemporaryDirectory(dir=scratch) as tmp:
                t0 = time.monotonic()
                variant = make_variant(base_path, levers, Path(tmp)) if levers else {"disk": base_path}
                made = time.monotonic() - t0
                min_disk = FIT_GIB if "fit" in levers else base.min_disk
                image = bench.upload(v.replace("+", "-"), variant, props, base.min_ram, min_disk)
            t0 = time.monotonic()
            warm = bench.create(image)
            bench.conn.compute.wait_for_server(warm, wait=600, interval=1)
            warm_s = time.monotonic() - t0
            bench.gone(warm)
            label = f"{v} ({Path(args.base_file).name})" if "file" in parts else v
            res = {"variant": label, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "made_s": made,
                   "warmup_active_s": warm_s, "boots": [], "net": args.net}
            results.append(res)
            prepared.append((image, res))
        for i in range(args.runs):
            for image, res in prepared:
                print(f"  {res['variant']} #{i + 1}", flush=True)
                res["boots"].append(bench.boot_once(image, details=(i == 0)))
                res["load1_after"] = float(Path("/proc/loadavg").read_text().split()[0])
        for res in results:
            summary(res)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        problems = bench.cleanup()
        if problems:
            print("cleanup problems:", problems, file=sys.stderr)
        out = HERE / "results"
        out.mkdir(exist_ok=True)
        log = out / "boot.json"
        old = json.loads(log.read_text()) if log.exists() else []
        log.write_text(json.dumps(old + results, indent=1, default=str))
    print("\n| variant | create → SSH + user data (median, min–max) | guest uptime at login | ACTIVE |")
    print("|---|---|---|---|")
    for res in results:
        b = [x for x in res["boots"] if "failed" not in x]
        if b:
            print(f"| {res['variant']} | {spread([x['ssh_s'] for x in b])} ({len(b)}/{len(res['boots'])} ok) "
                  f"| {spread([x['guest_uptime_s'] for x in b])} | {spread([x['active_s'] for x in b])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
