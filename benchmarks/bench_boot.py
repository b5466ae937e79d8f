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
  norand     norandmaps on the kernel command line: no address space randomization of user processes, so
             that QEMU's TCG reuses the code it translated for a shared library in every process mapping it
             at the same address (its translation blocks are keyed by the guest's virtual address too)
  trim       cloud-init modules trimmed to those the course uses (users, keys, write_files, runcmd, packages)
  fastds     datasource fast path: no cloud-init generator/ds-identify at boot (cloud-init wanted outright)
  cdrive     config drive: the image lists cloud-init's ConfigDrive datasource before OpenStack (as an image
             that serves both would) and each server is created with config_drive=True: cloud-init reads
             the metadata from the drive nova attaches (an ISO made by genisoimage on the compute host)
             instead of the OpenStack datasource's ephemeral DHCP and metadata crawl in init-local. Every
             boot reads the datasource cloud-init used (instance-data.json's platform): a `cdrive` boot that
             did not use the drive, or another boot that did not use the metadata service, counts as failed
  cdimg      the `cdrive` image booted without a config drive: what the image's change costs a guest that
             reads the metadata service (C18, C19); shares the `cdrive` upload
  nollmnr    systemd-resolved without LLMNR (a resolved.conf.d file, LLMNR=no): before the metadata crawl,
             cloud-init's DNS-redirect probe (util.is_resolvable) looks up three names that must not exist, one of
             them single-label (`__cloud_init_expected_not_found__`), which resolved asks the link by LLMNR and
             waits ~3 s for no answer (traced 2026-12-07: "Resolving URL took 3.225 seconds" in init-local)
  nodad      no IPv6 duplicate address detection (a sysctl.d file: dad_transmits 0): between init-local and
             cloud-init's network stage, systemd-networkd-wait-online waits for the link's setup state
             « configured », which networkd reaches only once the IPv6 link-local address has passed DAD; networkd
             bounces the link it takes over, so DAD runs again: ~1.6 s after the DHCPv4 lease (traced
             2026-12-07). wait-online's `-4` cannot skip it (it checks the setup state first); link-local
             addresses are made from Neutron's unique MACs
  nodelay    `nodelay` in the image's /etc/dhcpcd.conf: cloud-init's ephemeral DHCP runs dhcpcd, which waits a
             random 0-1 s before its first DISCOVER (RFC 2131's initial delay; 0.9 s in a traced boot); networkd's
             own DHCP client is not dhcpcd
  file       start from --base-file instead of the Glance image (e.g. a new recipe's build)
e.g. `--variants base,fit,direct,noinit,trim,fastds,fit+direct+noinit+trim+fastds`.
A variant may end in `@<network>` (boot it on that network instead of --net: `base@public` beside `base`
shares its image) and `:<N>` (its own number of boots instead of --runs: `base:5,fit:3`). Boots go by
rounds, one of each variant per round (a variant with fewer boots drops out of the last rounds), each
round starting one variant further, so that neither a load change nor a position in the round favours one.

The variants' files are made once and kept under popek's cache directory (`bench-boot/`, keyed by the
base image's hash and the levers; `--prepare-only` makes them and stops), so that an exclusive hold is
spent booting. `--keep --run-id <8 hex>` leaves the uploaded (and nova-cached) images in Glance for the
next call with the same `--run-id`, which boots them without upload nor warm-up; a call without `--keep`
deletes every `popek-<run id>-bench-…` image. `--until HH:MM` (UTC) starts no boot after that time;
`--details base,…` limits the in-guest analysis (cloud-init analyze, systemd-analyze: seconds of TCG
after the timed login) to those variants' first boot. `--trace base,…`: those variants' boots also record
where cloud-init's init-local spends its time (issue #17's metadata path): the guest's own cloud-init.log
(init-local to modules:config) and journal (networkd, DHCP), read after the timed login; the guest's frames
seen on its tap from the host (DHCP, ARP, IPv6 router and neighbour solicitations, TCP to 169.254.169.254:80,
DNS), each with its host time; and the embedded cloud's nova-compute, OVS agent and DHCP agent log lines
naming the server or its port, all as seconds after create (`trace_report` prints them on one time line).
Each boot also records when nova-compute logged QEMU
started and its vCPUs resumed (the embedded cloud's log), the guest's kernel start (login − uptime) and
the host's load average.

Run it on an idle cloud: `flock -x /tmp/popek-cloud.lock .venv/bin/python benchmarks/bench_boot.py …`
(keep each hold under 10 min unless the cloud is yours alone). Prints a markdown table, appends the raw
figures to benchmarks/results/boot.json.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
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
LEVERS = ("fit", "direct", "noinit", "norand", "trim", "fastds", "cdrive", "cdimg", "nollmnr", "nodad", "nodelay")

#: cloud-init modules the course uses (C19: users, keys, packages; the scenarios: write_files, runcmd),
#: with what they need to apply them (hostname, /etc/hosts, growpart and resizefs for the flavor's disk).
#: The image's datasource list (images/debian.py) and the one the `cdrive` lever writes in its place.
DS_LIST = "datasource_list: [OpenStack, None]"
DS_LIST_CDRIVE = "datasource_list: [ConfigDrive, OpenStack, None]"
POPEK_CLOUD_CFG = "etc/cloud/cloud.cfg.d/90-popek.cfg"
#: The config drive is an IDE CD-ROM on nova's default `pc` machine: its drivers are modules that udev loads
#: at ~22 s of uptime (seen on a first `cdrive` boot, 16:16), after cloud-init's generator (ds-identify) has
#: looked for a `config-2` file system and found none, so cloud-init took the metadata service. In the
#: initramfs they make /dev/sr0 before the generator runs (ata_piix is loaded in every guest anyway: QEMU's
#: `pc` machine always has the PIIX IDE controller).
CDROM_MODULES = ("ata_piix", "sr_mod", "isofs")
#: The `nollmnr` lever's file in the guest and its content.
NOLLMNR_CONF = "etc/systemd/resolved.conf.d/90-popek-nollmnr.conf"
NOLLMNR_TEXT = "[Resolve]\nLLMNR=no\n"
#: The `nodelay` lever's file: dhcpcd's configuration (Debian's dhcpcd-base ships it), `nodelay` appended.
DHCPCD_CONF = "etc/dhcpcd.conf"
#: The `nodad` lever's sysctl file (`default` for the NIC udev adds later, `all` for the record).
NODAD_CONF = "etc/sysctl.d/90-popek-nodad.conf"
NODAD_TEXT = ("net.ipv6.conf.default.dad_transmits = 0\nnet.ipv6.conf.all.dad_transmits = 0\n"
              "net.ipv6.conf.default.accept_dad = 0\nnet.ipv6.conf.all.accept_dad = 0\n")

#: instance-data.json's platform for each datasource (cloud-init's DataSourceConfigDrive / DataSourceOpenStack).
PLATFORM_CDRIVE, PLATFORM_METADATA = "configdrive", "openstack"
#: Read in the timed login, before /proc/uptime (a grep: no Python started in the guest): every "platform" and
#: "subplatform" of instance-data.json, one `key=value` a line (sys_info's platform is the kernel's, e.g. Linux-6.12…).
PLATFORM_CMD = ("grep -o '\"\\(sub\\)\\{0,1\\}platform\": *\"[^\"]*\"' /run/cloud-init/instance-data.json 2>/dev/null "
                "| sort -u | sed 's/^\"\\([a-z]*\\)\": *\"\\(.*\\)\"$/\\1=\\2/'")

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
    """The base image with `levers` applied: {"disk": qcow2, "kernel", "initrd", "cmdline" (direct only)}.

    One loop device for the whole edit (the file system grown first when `fit`, then mounted and edited),
    and every lever read back from a fresh read-only mount before the disk is written: an edit lost on the
    way (seen once with a mount's own loop device and a second one for resize2fs) fails here, it is never
    timed as a lever."""
    raw, mnt = work / "disk.raw", work / "mnt"
    mnt.mkdir(exist_ok=True)
    run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(base_qcow2), str(raw)])
    out: dict = {}
    if "fit" in levers:
        size = FIT_GIB << 30
        with open(raw, "r+b") as f:
            f.truncate(size)
            f.seek(446 + 12)   # the one partition entry's sector count
            f.write(((size - PART_OFFSET) // 512).to_bytes(4, "little"))
    loop = run(["losetup", "--show", "-f", "-o", str(PART_OFFSET), str(raw)]).strip()
    try:
        if "fit" in levers:
            subprocess.run(["e2fsck", "-f", "-y", loop], capture_output=True)
            run(["resize2fs", loop])
        run(["mount", loop, str(mnt)])
        try:
            conf = mnt / "boot/extlinux/extlinux.conf"
            text = conf.read_text()
            if "noinit" in levers:
                text = re.sub(r"(?m)^(\s*APPEND .*)$", r"\1 init_on_alloc=0", text)
                conf.write_text(text)
            if "norand" in levers:
                text = re.sub(r"(?m)^(\s*APPEND .*)$", r"\1 norandmaps", text)
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
            if "cdrive" in levers:
                cfg = mnt / POPEK_CLOUD_CFG
                cfg.write_text(with_config_drive(cfg.read_text()))
                mods = mnt / "etc/initramfs-tools/modules"
                mods.write_text(mods.read_text() + "".join(f"{m}\n" for m in CDROM_MODULES))
                kver = re.search(r"(?m)^\s*LINUX \S*vmlinuz-(\S+)", text).group(1)
                run(["chroot", str(mnt), "update-initramfs", "-u", "-k", kver])
                listed = run(["chroot", str(mnt), "lsinitramfs", f"/boot/initrd.img-{kver}"])
                absent = [m for m in CDROM_MODULES if f"/{m}.ko" not in listed]
                if absent:
                    raise RuntimeError(f"initramfs without {', '.join(absent)}")
            if "nollmnr" in levers:
                conf_file = mnt / NOLLMNR_CONF
                conf_file.parent.mkdir(parents=True, exist_ok=True)
                conf_file.write_text(NOLLMNR_TEXT)
            if "nodelay" in levers:
                dhcpcd_conf = mnt / DHCPCD_CONF
                if not dhcpcd_conf.is_file():
                    raise RuntimeError(f"/{DHCPCD_CONF} not in the image")
                dhcpcd_conf.write_text(dhcpcd_conf.read_text().rstrip("\n") + "\n# popek: no initial delay\nnodelay\n")
            if "nodad" in levers:
                conf_file = mnt / NODAD_CONF
                conf_file.parent.mkdir(parents=True, exist_ok=True)
                conf_file.write_text(NODAD_TEXT)
            if "direct" in levers:
                kernel = re.search(r"(?m)^\s*LINUX (\S+)", text).group(1)
                initrd = re.search(r"(?m)^\s*INITRD (\S+)", text).group(1)
                out["cmdline"] = re.search(r"(?m)^\s*APPEND (.*)$", text).group(1).strip()
                for key, rel in (("kernel", kernel), ("initrd", initrd)):
                    out[key] = work / key
                    shutil.copyfile(mnt / rel.lstrip("/"), out[key])
        finally:
            run(["umount", str(mnt)])
        run(["mount", "-o", "ro", loop, str(mnt)])
        try:
            missing = unapplied(mnt, levers)
        finally:
            run(["umount", str(mnt)])
    finally:
        run(["losetup", "-d", loop])
    if missing:
        raise RuntimeError(f"levers not in the disk after the edit: {', '.join(missing)}")
    out["disk"] = work / "disk.qcow2"
    run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw), str(out["disk"])])
    raw.unlink()
    return out


def with_config_drive(cfg: str) -> str:
    """popek's cloud.cfg.d file with ConfigDrive listed before OpenStack."""
    if DS_LIST not in cfg:
        raise RuntimeError(f"{POPEK_CLOUD_CFG}: no « {DS_LIST} »")
    return cfg.replace(DS_LIST, DS_LIST_CDRIVE)


def platform_of(out: str) -> str | None:
    """The datasource platform the login's output names (PLATFORM_CMD: cloud-init's platform types are
    lower-case words, e.g. configdrive, openstack; the kernel's Linux-6.12… is not one), or None."""
    m = re.search(r"(?m)^platform=([a-z][a-z0-9-]*)$", out)
    return m.group(1) if m else None


def subplatform_of(out: str) -> str | None:
    """Where the datasource read its data (e.g. `config-disk (/dev/sr0)`, `metadata (http://169.254.169.254)`)."""
    m = re.search(r"(?m)^subplatform=(.+)$", out)
    return m.group(1) if m else None


def datasource_problem(config_drive: bool, platform: str | None) -> str | None:
    """Why a boot's datasource is not the one its variant measures, or None."""
    want = PLATFORM_CDRIVE if config_drive else PLATFORM_METADATA
    if platform == want:
        return None
    return f"cloud-init used datasource platform {platform or 'unknown'!r}, not {want!r}"


def unapplied(root: Path, levers: set[str]) -> list[str]:
    """The levers whose change is not in the file system mounted at `root`."""
    missing = []
    if "noinit" in levers and "init_on_alloc=0" not in (root / "boot/extlinux/extlinux.conf").read_text():
        missing.append("noinit")
    if "norand" in levers and "norandmaps" not in (root / "boot/extlinux/extlinux.conf").read_text():
        missing.append("norand")
    if "trim" in levers and "seed_random" in (root / "etc/cloud/cloud.cfg").read_text():
        missing.append("trim")
    if "fastds" in levers and not (root / "etc/systemd/system-generators/cloud-init-generator").is_symlink():
        missing.append("fastds")
    if "cdrive" in levers and (DS_LIST_CDRIVE not in (root / POPEK_CLOUD_CFG).read_text()
                               or not set(CDROM_MODULES) <= set((root / "etc/initramfs-tools/modules")
                                                                .read_text().split())):
        missing.append("cdrive")
    if "nollmnr" in levers and not ((root / NOLLMNR_CONF).is_file()
                                    and "LLMNR=no" in (root / NOLLMNR_CONF).read_text()):
        missing.append("nollmnr")
    if "nodad" in levers and not ((root / NODAD_CONF).is_file() and "dad_transmits = 0" in (root / NODAD_CONF).read_text()):
        missing.append("nodad")
    if "nodelay" in levers and not ((root / DHCPCD_CONF).is_file()
                                    and "nodelay" in (line.strip() for line in (root / DHCPCD_CONF).read_text().splitlines())):
        missing.append("nodelay")
    if "fit" in levers and shutil.disk_usage(root).total < (FIT_GIB - 1) << 30:
        missing.append("fit")
    return missing


def made_variant(cache: Path, base_qcow2: Path, base_key: str, levers: set[str]) -> dict:
    """make_variant's result, made once per (base image, levers) and kept under `cache`."""
    if not levers:
        return {"disk": base_qcow2}
    where = cache / f"{base_key}-{'+'.join(sorted(levers))}"
    done = where / "made.json"
    if not done.exists():
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        t0 = time.monotonic()
        variant = make_variant(base_qcow2, levers, where)
        done.write_text(json.dumps({"cmdline": variant.get("cmdline"), "made_s": time.monotonic() - t0}))
    made = json.loads(done.read_text())
    out: dict = {"disk": where / "disk.qcow2", "made_s": made["made_s"]}
    if made["cmdline"] is not None:
        out.update(kernel=where / "kernel", initrd=where / "initrd", cmdline=made["cmdline"])
    return out


def file_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def parse_variant(spec: str, runs: int) -> dict:
    """`fit+direct@public:3` -> {"label": "fit+direct@public", "image": "fit+direct", "parts": {...},
    "levers": the image's levers, "net": "public" or None, "runs": 3, "config_drive": False} (True with the
    `cdrive` lever; `cdimg` is the `cdrive` image without the drive: its image is `cdrive`'s)."""
    m = re.fullmatch(r"([a-z0-9+]+)(?:@([\w.-]+))?(?::(\d+))?", spec)
    if not m:
        raise ValueError(spec)
    image = "+".join("cdrive" if p == "cdimg" else p for p in m.group(1).split("+"))
    return {"label": spec.split(":")[0], "image": image, "parts": set(m.group(1).split("+")),
            "levers": set(image.split("+")) - {"base", "file"},
            "net": m.group(2), "runs": int(m.group(3)) if m.group(3) else runs,
            "config_drive": "cdrive" in m.group(1).split("+")}


class Bench:
    def __init__(self, conn, nets: list[str], run_id: str | None = None, keep: bool = False,
                 compute_log: Path | None = None):
        self.conn = conn
        self.compute_log = compute_log   # the embedded cloud's nova-compute log: when QEMU started, resumed
        self.run_id = run_id or new_run_id()
        self.keep = keep
        self.ledger = Ledger(self.conn, f"popek-{self.run_id}-bench")
        self.image_ids: list[str] = []
        self.nets: dict = {}
        self.fips: dict = {}   # network name -> the floating IP its guests are reached through
        self.user = "root"     # set from the base image (main): the variants' own names say nothing
        try:
            self.private, public = compute.ssh_keypair()
            self.key = compute.create_keypair(self.conn, self.ledger, public)
            self.sg = self._ssh_group()
            self.flavor = self.conn.compute.find_flavor("small", ignore_missing=False)
            for name in nets:
                net = self.nets[name] = self.conn.network.find_network(name, ignore_missing=False)
                if not net.is_router_external:
                    # a routed network: one floating IP, moved to each new guest's port as soon as it exists
                    self.fips[name] = network.create_floating_ip(self.conn, self.ledger,
                                                                 network.external_network(self.conn))
        except BaseException:
            self.ledger.cleanup()
            raise

    def held(self, name: str):
        """This run id's image `name` from an earlier call (--keep), active, or None."""
        full = f"popek-{self.run_id}-bench-{name}"
        return next((i for i in self.conn.image.images(owner=self.conn.current_project_id)
                     if i.name == full and i.status == "active"), None)

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

    def create(self, image, net: str, user_data: str | None = None, config_drive: bool = False):
        import base64
        kw = {"user_data": base64.b64encode(user_data.encode()).decode()} if user_data else {}
        if config_drive:
            kw["config_drive"] = True
        return self.ledger.create("server", "boot", lambda name: self.conn.compute.create_server(
            name=name, image_id=image.id, flavor_id=self.flavor.id, networks=[{"uuid": self.nets[net].id}],
            key_name=self.key.name, security_groups=[{"name": self.sg.name}], **kw))

    def gone(self, server) -> None:
        self.ledger.delete(server.id)

    def boot_once(self, image, net: str, details: bool, config_drive: bool = False, trace: bool = False) -> dict:
        """One boot timed; a boot that fails (ERROR, no login in time, an API error) is recorded as failed."""
        r: dict = {"at": time.strftime("%H:%M:%S", time.gmtime()),
                   "load1": float(Path("/proc/loadavg").read_text().split()[0])}
        server = None
        try:
            server = self._boot(image, net, details, r, config_drive, trace)
        except Exception as exc:  # noqa: BLE001 - one failed boot is a figure, the rounds go on
            r["failed"] = f"{type(exc).__name__}: {exc}"
        finally:
            if server is not None:
                self.gone(server)
        r.setdefault("milestones", {})
        print(f"    {'FAILED ' + r['failed'] if 'failed' in r else format(r['ssh_s'], '.1f') + ' s'}; "
              f"guest uptime {r.get('guest_uptime_s', float('nan')):.1f} s; platform {r.get('platform')} {r.get('subplatform')}; "
              f"{r['milestones']}", flush=True)
        if trace:
            for t, what in trace_timeline(r):
                print(f"      {t:7.2f}  {what}", flush=True)
            print(f"    init-local: {json.dumps(r.get('init_local', {}), ensure_ascii=False)}", flush=True)
        return r

    def _boot(self, image, net: str, details: bool, r: dict, config_drive: bool = False, trace: bool = False):
        token = secrets.token_hex(8)
        user_data = f"#cloud-config\nwrite_files:\n  - path: /run/popek-bench\n    content: \"{token}\\n\"\n"
        t0, r["t0_epoch"] = time.monotonic(), time.time()
        server = self.create(image, net, user_data, config_drive)
        address = None
        fip = self.fips.get(net)
        port = network.server_port(self.conn, server) if fip is not None or trace else None
        sniffer = TapSniffer(port.id) if trace else None
        try:
            if fip is not None:
                network.associate(self.conn, fip, port)
                address = fip.floating_ip_address
            self._wait_login(server, address, r, t0, config_drive, token)
        finally:
            if sniffer is not None:
                r["wire"] = sniffer.stop()
        console = self.conn.compute.get_server_console_output(server.id).get("output", "")
        r["milestones"] = milestones(console)
        if self.compute_log is not None:
            r.update(nova_milestones(self.compute_log, server.id, r["t0_epoch"]))
        if "failed" in r:
            r["console"] = console[-30000:]
            return server
        if trace:
            self._trace(server, port, address or r["address"], r)
        if details:
            cmd = ("sudo cloud-init analyze blame 2>&1 | head -25; echo ---; systemd-analyze 2>&1; "
                   "systemd-analyze blame 2>&1 | head -25; echo ---; systemd-analyze critical-chain ssh.service 2>&1")
            r["analyze"] = traffic.ssh_run(address or r["address"], self.user, self.private, cmd, 60)[1]
            r["console"] = console[-30000:]
        return server

    def _trace(self, server, port, address: str, r: dict) -> None:
        """After the timed login: the guest's cloud-init.log and journal, init-local's breakdown, the host's log
        lines naming the server or its port (see the docstring's --trace)."""
        try:
            before = time.time()
            rc, out = traffic.ssh_run(address, self.user, self.private, TRACE_CMD, 60)
            after = time.time()
            tr = parse_trace(out)
            # the guest's clock against the host's (± half the SSH call): a cross-check of guest_to_create
            tr["guest_clock_ahead_s"] = round(tr["guest_wall"] - (before + after) / 2, 3)
            tr["clock_read_s"] = round(after - before, 3)
            r["trace"] = tr
            r["init_local"] = init_local_breakdown(cloudinit_lines(tr["log"]))
        except Exception as exc:  # noqa: BLE001 - a trace that could not be read is said, the timing stands
            r["trace"] = {"error": f"{type(exc).__name__}: {exc}"}
        if self.compute_log is not None:
            r["host_events"] = host_log_events(self.compute_log.parent, [server.id, port.id], r["t0_epoch"],
                                               r["t0_epoch"] + r.get("ssh_s", 0) + 5)

    def _wait_login(self, server, address, r: dict, t0: float, config_drive: bool, token: str) -> None:
        while time.monotonic() - t0 < BOOT_TIMEOUT:
            s = self.conn.compute.get_server(server.id)
            if s.status == "ERROR":
                r["failed"] = f"server ERROR: {s.fault}"
                return
            if s.status == "ACTIVE":
                r["active_s"] = time.monotonic() - t0
                address = address or next(a["addr"] for nets in s.addresses.values() for a in nets
                                          if a.get("version") == 4)
                break
            time.sleep(0.5)
        r["address"] = address
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
                rc, out = traffic.ssh_run(address, user, self.private,
                                          f"cat /run/popek-bench; {PLATFORM_CMD}; cat /proc/uptime", 5)
            except Exception:  # noqa: BLE001 - sshd up before the key is installed, connection reset…
                time.sleep(0.5)
                continue
            if rc == 0 and token in out:
                r["ssh_s"] = time.monotonic() - t0
                r["guest_uptime_s"] = float(out.split()[-2])
                # the guest's kernel started this long after create (its uptime counts from there)
                r["kernel_start_s"] = r["ssh_s"] - r["guest_uptime_s"]
                r["platform"] = platform_of(out)
                r["subplatform"] = subplatform_of(out)
                wrong = datasource_problem(config_drive, r["platform"])
                if wrong:
                    r["failed"] = wrong   # not the lever this variant measures: never timed as it
                break
            time.sleep(0.5)
        else:
            r["failed"] = f"no SSH login with the user data applied in {BOOT_TIMEOUT} s ({address})"

    def cleanup(self) -> list[str]:
        problems = self.ledger.cleanup()
        if self.keep:
            return problems
        try:   # every image of this run id, an earlier call's (--keep) too
            mine = f"popek-{self.run_id}-bench-"
            self.image_ids += [i.id for i in self.conn.image.images(owner=self.conn.current_project_id)
                               if (i.name or "").startswith(mine) and i.id not in self.image_ids]
        except Exception as exc:  # noqa: BLE001 - reported, the images uploaded now still go
            problems.append(f"images of {mine}*: {exc}")
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


#: nova-compute's lifecycle events: libvirt started QEMU (paused until Neutron says the port is wired), then
#: resumed its vCPUs: the guest's firmware starts running there.
NOVA_EVENTS = (("qemu_started_s", "VM Started (Lifecycle Event)"), ("vcpus_resumed_s", "VM Resumed (Lifecycle Event)"))


def nova_milestones(log: Path, server_id: str, t0_epoch: float) -> dict:
    """Seconds from create to each NOVA_EVENTS line of `server_id` in nova-compute's log (local time)."""
    out: dict = {}
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - (4 << 20)))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return out
    tag = f"[instance: {server_id}]"
    for line in lines:
        if tag not in line:
            continue
        for key, event in NOVA_EVENTS:
            if event in line and key not in out:
                stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp()
                out[key] = stamp - t0_epoch
    return out


#: Read after the timed login of a traced boot: the guest's wall clock and uptime, cloud-init.log from init-local
#: to modules:config and the journal's network lines (dots for quotes: the command is in single quotes).
TRACE_CMD = ("sudo sh -c 'date +%s.%N; cat /proc/uptime; echo @@LOG; "
             "sed -n \"/running .init-local./,/running .modules:config./p\" /var/log/cloud-init.log | tail -c 400000; "
             "echo @@JOURNAL; journalctl -b -o short-monotonic --no-pager 2>&1 "
             "| grep -iE \"networkd|ens[0-9]|dhcp|cloud-init|wait-online|resolved\" | tail -c 200000'")
#: cloud-init.log: `2026-12-07 16:15:41,123 - util.py[DEBUG]: message` (the guest's clock, UTC).
CI_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - ([^\[\]]+)\[(\w+)\]: (.*)$")
#: cloud-init's stage lines carry the guest's uptime: they tie its clock to the console's and the host's.
CI_STAGE_UP = re.compile(r"running '([\w:-]+)' at .*Up ([\d.]+) seconds")
#: Spans of init-local worth naming (start regex, end regex: its last match after the start; None = next line).
CI_SPANS = (
    ("datasource search", r"start: init-local/search-", r"finish: init-local/search-"),
    ("DHCP client", r"Running command \[.{0,3}(?:/\S*/)?(?:dhcpcd|dhclient|udhcpc)\b", None),
    ("metadata crawl", r"\] open 'http://(?:169\.254\.169\.254|\[fe80::a9fe:a9fe)", r"Read from http://"),
)
#: cloud-init's own timers (performance.py): "Resolving URL took 3.225 seconds"; commands' are left out.
CI_TIMER = re.compile(r"^performance\.py: (?!Running )(.+?) took ([\d.]+) seconds")


def parse_trace(out: str) -> dict:
    """TRACE_CMD's output: {"guest_wall", "guest_uptime", "log", "journal"}."""
    head, _, rest = out.partition("@@LOG")
    log, _, journal = rest.partition("@@JOURNAL")
    nums = head.split()
    return {"guest_wall": float(nums[0]), "guest_uptime": float(nums[1]), "log": log.strip("\n"),
            "journal": journal.strip("\n")}


def cloudinit_lines(log: str) -> list[tuple[float, str]]:
    """(guest epoch seconds, message) of each timestamped cloud-init.log line, in order."""
    out = []
    for line in log.splitlines():
        m = CI_LOG_LINE.match(line)
        if m:
            stamp = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
            out.append((stamp, f"{m.group(2).strip()}: {m.group(4)}"))
    return out


def init_local_breakdown(lines: list[tuple[float, str]], min_gap: float = 0.3) -> dict:
    """Where init-local's time goes, from its own log: seconds from init-local's start line to the network
    stage's ("init") start line, its named spans (CI_SPANS: duration and start offset), and every gap of at least
    `min_gap` s between two consecutive lines (the line before the silence names what was running)."""
    start = next((i for i, (_, msg) in enumerate(lines) if "running 'init-local'" in msg), None)
    if start is None:
        return {}
    t_start = lines[start][0]
    end = next((i for i in range(start + 1, len(lines)) if "running 'init'" in lines[i][1]), len(lines) - 1)
    part = lines[start:end + 1]
    out: dict = {"init_local_to_init_s": round(part[-1][0] - t_start, 3), "spans": {}, "gaps": []}
    done = next((t for t, msg in part if re.search(r"finish: init-local: ", msg)), None)
    if done is not None:
        out["init_local_s"] = round(done - t_start, 3)
    for name, rx_a, rx_b in CI_SPANS:
        a = next((i for i, (_, msg) in enumerate(part) if re.search(rx_a, msg)), None)
        if a is None:
            continue
        if rx_b is None:
            b = min(a + 1, len(part) - 1)
        else:
            b = max((i for i in range(a + 1, len(part)) if re.search(rx_b, part[i][1])), default=None)
            if b is None:
                continue
        out["spans"][name] = {"at_s": round(part[a][0] - t_start, 3), "s": round(part[b][0] - part[a][0], 3),
                              "line": part[a][1][:200]}
    out["timers"] = {}
    for _, msg in lines[start:]:   # the network stage's wait is timed on its first line, after init's start
        m = CI_TIMER.match(msg)
        if m and m.group(1) not in out["timers"]:
            out["timers"][m.group(1)] = float(m.group(2))
    for (t1, m1), (t2, _) in zip(part, part[1:]):
        if t2 - t1 >= min_gap:
            out["gaps"].append({"at_s": round(t1 - t_start, 3), "s": round(t2 - t1, 3), "after": m1[:200]})
    return out


def guest_to_create(lines: list[tuple[float, str]], kernel_start_s: float) -> float | None:
    """The shift that puts a guest log time on the create-relative time line: a stage line's log time is at
    uptime U, and the guest's kernel started `kernel_start_s` after create (login - uptime)."""
    for stamp, msg in lines:
        m = CI_STAGE_UP.search(msg)
        if m:
            return kernel_start_s + float(m.group(2)) - stamp
    return None


ETH_P_ALL = 0x0003
DHCP_TYPES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK", 7: "RELEASE", 8: "INFORM"}
METADATA_IP = bytes([169, 254, 169, 254])


def wire_event(frame: bytes) -> str | None:
    """A one-line summary of an Ethernet frame on a guest's tap if it is on the boot's network path (DHCP,
    ARP, DNS, TCP with 169.254.169.254:80, IPv6 router/neighbour discovery, DHCPv6), else None."""
    if len(frame) < 14:
        return None
    etype = int.from_bytes(frame[12:14], "big")
    p = frame[14:]
    if etype == 0x0806 and len(p) >= 28:
        op = int.from_bytes(p[6:8], "big")
        spa, tpa = socket.inet_ntoa(p[14:18]), socket.inet_ntoa(p[24:28])
        return f"ARP {'who-has ' + tpa + ' tell ' + spa if op == 1 else spa + ' is-at'}"
    if etype == 0x0800 and len(p) >= 20:
        ihl = (p[0] & 0x0F) * 4
        proto, src, dst = p[9], p[12:16], p[16:20]
        l4 = p[ihl:]
        if proto == 17 and len(l4) >= 8:
            sport, dport = int.from_bytes(l4[0:2], "big"), int.from_bytes(l4[2:4], "big")
            body = l4[8:]
            if {sport, dport} & {67, 68}:
                kind = "?"
                opts = body[240:] if len(body) >= 240 and body[236:240] == b"\x63\x82\x53\x63" else b""
                i = 0
                while i + 1 < len(opts) and opts[i] != 255:
                    if opts[i] == 0:
                        i += 1
                        continue
                    if opts[i] == 53 and i + 2 < len(opts):
                        kind = DHCP_TYPES.get(opts[i + 2], str(opts[i + 2]))
                        break
                    i += 2 + opts[i + 1]
                xid = body[4:8].hex() if len(body) >= 8 else "?"
                return f"DHCP {kind} xid {xid}"
            if 53 in (sport, dport):
                return f"DNS {'query to' if dport == 53 else 'reply from'} {socket.inet_ntoa(dst if dport == 53 else src)}"
            if 5355 in (sport, dport):
                return "LLMNR " + ("query" if dport == 5355 else "reply")
            if 5353 in (sport, dport):
                return "mDNS"
            return None
        if proto == 6 and len(l4) >= 14 and METADATA_IP in (src, dst):
            sport, dport = int.from_bytes(l4[0:2], "big"), int.from_bytes(l4[2:4], "big")
            flags = l4[13]
            names = [n for bit, n in ((0x02, "SYN"), (0x10, "ACK"), (0x01, "FIN"), (0x04, "RST")) if flags & bit]
            if flags & 0x07 == 0:   # plain data / ACKs: not a connection's edge
                return None
            way = f"{sport}->169.254.169.254:{dport}" if dst == METADATA_IP else f"169.254.169.254:{sport}->{dport}"
            return f"TCP metadata {way} {'+'.join(names)}"
        if proto == 1 and len(l4) >= 1:
            return f"ICMP type {l4[0]} {socket.inet_ntoa(src)}->{socket.inet_ntoa(dst)}"
        return None
    if etype == 0x86DD and len(p) >= 40:
        nh, l4 = p[6], p[40:]
        if nh == 58 and l4:
            name = {133: "router solicitation", 134: "router advertisement", 135: "neighbour solicitation",
                    136: "neighbour advertisement", 143: "MLDv2 report"}.get(l4[0])
            return f"ICMPv6 {name or l4[0]}"
        ports = {int.from_bytes(l4[0:2], "big"), int.from_bytes(l4[2:4], "big")} if nh == 17 and len(l4) >= 4 else set()
        if ports & {546, 547}:
            return "DHCPv6"
        if 5355 in ports:
            return "LLMNR (IPv6)"
        if 5353 in ports:
            return "mDNS (IPv6)"
        return None
    return None


class TapSniffer:
    """The frames on a guest's tap as the host sees them (guest -> switch as `guest`, switch -> guest as
    `to guest`), from the moment the tap exists; a thread, stopped by stop(). Reads only: an AF_PACKET socket
    bound to that one device."""

    def __init__(self, port_id: str):
        import threading
        self.dev = "tap" + port_id[:11]   # nova's OVS VIF name (14 characters)
        self.events: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and not Path(f"/sys/class/net/{self.dev}").exists():
            time.sleep(0.02)
        if self._stop.is_set():
            return
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((self.dev, 0))
        except OSError as exc:
            self.events.append((time.time(), f"sniffer not bound: {exc}"))
            return
        self.events.append((time.time(), f"{self.dev} exists, sniffer bound"))
        sock.settimeout(0.2)
        with sock:
            while not self._stop.is_set():
                try:
                    frame, addr = sock.recvfrom(65535)
                except socket.timeout:
                    continue
                except OSError as exc:
                    self.events.append((time.time(), f"tap gone ({exc.strerror})"))
                    return
                what = wire_event(frame)
                if what:
                    self.events.append((time.time(), f"{'to guest' if addr[2] == socket.PACKET_OUTGOING else 'guest'}: {what}"))

    def stop(self) -> list[tuple[float, str]]:
        self._stop.set()
        self._thread.join(2)
        return list(self.events)


#: The embedded cloud's logs read for a traced boot, and how much of each (lines naming the server or its port).
HOST_LOGS = ("nova-compute", "neutron-openvswitch-agent", "neutron-dhcp-agent", "neutron-rpc-server")
OSLO_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ (\w+) (\S+) (?:\[[^\]]*\] )?(.*)$")


def host_log_events(log_dir: Path, needles: list[str], t0_epoch: float, until: float,
                    per_log: int = 60) -> list[tuple[float, str]]:
    """(seconds after create, `log: message`) of the HOST_LOGS lines naming one of `needles`, between 10 s before
    create and `until` (epoch), at most `per_log` lines each (oslo's local-time stamps)."""
    out = []
    for name in HOST_LOGS:
        try:
            with open(log_dir / f"{name}.log", "rb") as f:
                f.seek(max(0, f.seek(0, 2) - (8 << 20)))
                lines = f.read().decode(errors="replace").splitlines()
        except OSError:
            continue
        kept = 0
        for line in lines:
            if not any(n in line for n in needles):
                continue
            m = OSLO_LINE.match(line)
            if not m:
                continue
            stamp = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            if t0_epoch - 10 <= stamp <= until and kept < per_log:
                out.append((stamp - t0_epoch, f"{name}: {m.group(4)[:200]}"))
                kept += 1
    return sorted(out)


def trace_timeline(r: dict, min_gap: float = 0.3) -> list[tuple[float, str]]:
    """One time line (seconds after create) of a traced boot: the host's log lines, the frames on the tap, the
    guest's stage lines and its cloud-init lines that start a silence of `min_gap` s or name DHCP/metadata."""
    t0 = r["t0_epoch"]
    rows = [(t, f"host {msg}") for t, msg in r.get("host_events", [])]
    rows += [(t - t0, f"wire {msg}") for t, msg in r.get("wire", [])]
    lines = cloudinit_lines(r.get("trace", {}).get("log", ""))
    shift = guest_to_create(lines, r["kernel_start_s"]) if "kernel_start_s" in r else None
    if shift is not None:
        key = re.compile(r"running '|dhcp|DHCP|169\.254|lease|search-|Crawl|ephemeral|finish: init-local|Resolving URL|Getting metadata|Waiting to start", re.I)
        for (t, msg), nxt in zip(lines, lines[1:] + [(None, "")]):
            gap = (nxt[0] - t) if nxt[0] is not None else 0.0
            if key.search(msg) or gap >= min_gap:
                rows.append((t + shift, f"guest {msg[:160]}" + (f"  [then {gap:.1f} s silent]" if gap >= min_gap else "")))
    return sorted(rows)


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
    if not res["boots"]:
        return
    if not ok:
        print(f"{res['variant']}: every boot failed", flush=True)
        return
    print(f"{res['variant']}: create->SSH+user data {spread([b['ssh_s'] for b in ok])} ({len(ok)}/{len(res['boots'])} ok); "
          f"guest uptime at login {spread([b['guest_uptime_s'] for b in ok])}; "
          f"ACTIVE {spread([b['active_s'] for b in ok])}", flush=True)
    for key in ("qemu_started_s", "vcpus_resumed_s", "kernel_start_s"):
        vals = [b[key] for b in ok if key in b]
        if vals:
            print(f"    create -> {key[:-2].replace('_', ' ')}: {spread(vals)}", flush=True)
    for label in dict.fromkeys(k for b in ok for k in b["milestones"]):
        vals = [b["milestones"][label] for b in ok if label in b["milestones"]]
        print(f"    {label}: {spread(vals)}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="base", help="comma-separated; '+' combines levers, '@net' boots on "
                    "another network, ':N' sets a variant's own number of boots (see the docstring)")
    ap.add_argument("--runs", type=int, default=5, help="boots per variant, in rounds: one boot of each variant "
                    "per round, so that a load change on the host falls on every variant alike")
    ap.add_argument("--image", default="Debian 13", help="the Glance image the variants start from")
    ap.add_argument("--base-file", help="a qcow2 (e.g. a new recipe's build) for the variant `file` (and "
                    "`file+…`); its Glance properties are --image's")
    ap.add_argument("--net", default="private",
                    help="the network to boot on: the member's routed `private` reached through a floating IP "
                         "(what the suite does, default), or `public` directly")
    ap.add_argument("--prepare-only", action="store_true", help="make the variants' files (cached) and stop")
    ap.add_argument("--run-id", help="8 hex digits: reuse the images a call with --keep and this id left")
    ap.add_argument("--keep", action="store_true", help="leave the uploaded images for a next call (--run-id)")
    ap.add_argument("--until", help="HH:MM UTC: start no boot after that time (the rounds stop there)")
    ap.add_argument("--details", help="comma-separated variants whose first boot also runs cloud-init analyze "
                    "and systemd-analyze in the guest (default: every variant)")
    ap.add_argument("--trace", default="", help="comma-separated variants whose boots also record where "
                    "init-local's time goes: the guest's cloud-init.log and journal, the frames on its tap, the "
                    "cloud's log lines (see the docstring)")
    args = ap.parse_args()
    try:
        variants = [parse_variant(v.strip(), args.runs) for v in args.variants.split(",") if v.strip()]
    except ValueError as exc:
        print(f"variante illisible : {exc} (forme : levier+levier@réseau:N)", file=sys.stderr)
        return 2
    for v in variants:
        bad = v["parts"] - set(LEVERS) - {"base", "file"}
        if bad:
            print(f"levier inconnu : {', '.join(sorted(bad))} (connus : base, file, {', '.join(LEVERS)})",
                  file=sys.stderr)
            return 2
        if "file" in v["parts"] and not args.base_file:
            print("la variante « file » demande --base-file", file=sys.stderr)
            return 2
    if args.run_id and not re.fullmatch(r"[0-9a-f]{8}", args.run_id):
        print("--run-id : 8 chiffres hexadécimaux", file=sys.stderr)
        return 2
    if args.keep and not args.run_id:
        print("--keep demande --run-id (pour retrouver les images à l'appel suivant)", file=sys.stderr)
        return 2
    deadline = None
    if args.until:
        try:
            hh, mm = map(int, args.until.split(":"))
            now = datetime.datetime.now(datetime.timezone.utc)
            deadline = now.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
        except ValueError:
            print("--until : HH:MM (UTC)", file=sys.stderr)
            return 2
    terminate_like_ctrl_c()  # `timeout`, `kill`: clean up as for Ctrl-C (a background job ignores SIGINT)
    state = CloudState(paths.embedded_cloud_dir())
    cache = state.image_cache / "bench-boot"
    nets = list(dict.fromkeys(v["net"] or args.net for v in variants))
    conn = bootstrap.connect(state, "popek")
    base = conn.image.find_image(args.image, ignore_missing=False)
    base_key = (base.hash_value or base.checksum or base.id)[:16]
    glance_path = cache / f"base-{base_key}.qcow2"
    if not glance_path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        part = glance_path.with_suffix(".part")
        conn.image.download_image(base, output=str(part))
        part.rename(glance_path)
    made: dict = {}
    for v in variants:   # before any cloud resource is made: an exclusive hold is spent booting
        levers = v["levers"]
        if "file" in v["parts"]:
            made[v["image"]] = made_variant(cache, Path(args.base_file), "file-" + file_key(Path(args.base_file)),
                                            levers)
        else:
            made[v["image"]] = made_variant(cache, glance_path, base_key, levers)
    if args.prepare_only:
        print(f"variants made under {cache}", flush=True)
        return 0
    props = {k: v for k, v in (base.properties or {}).items() if k.startswith(("os_", "hw_"))}
    compute_log = state.root / "log" / "nova-compute.log"
    bench = Bench(conn, nets, args.run_id, args.keep, compute_log if compute_log.exists() else None)
    bench.user = compute.login_user(base)
    results = []
    try:
        images: dict = {}
        for v in variants:
            if v["image"] in images:
                continue
            levers = v["levers"]
            slug = v["image"].replace("+", "-")
            image, warm_s = bench.held(slug), 0.0
            if image is None:
                min_disk = FIT_GIB if "fit" in levers else base.min_disk
                image = bench.upload(slug, made[v["image"]], props, base.min_ram, min_disk)
                t0 = time.monotonic()   # warm-up: fills nova's image cache, not counted
                warm = bench.create(image, v["net"] or args.net, config_drive=v["config_drive"])
                bench.conn.compute.wait_for_server(warm, wait=600, interval=1)
                warm_s = time.monotonic() - t0
                bench.gone(warm)
            images[v["image"]] = (image, made[v["image"]].get("made_s", 0.0), warm_s)
        for v in variants:
            image, made_s, warm_s = images[v["image"]]
            label = v["label"].replace("file", f"file ({Path(args.base_file).name})") if args.base_file else v["label"]
            res = {"variant": label, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "made_s": made_s,
                   "warmup_active_s": warm_s, "boots": [], "net": v["net"] or args.net, "run_id": bench.run_id,
                   "image_id": image.id}
            results.append(res)
            v["image_obj"], v["res"] = image, res
        for i in range(max(v["runs"] for v in variants)):
            this_round = [v for v in variants if v["runs"] > i]
            k = i % len(this_round)
            for v in this_round[k:] + this_round[:k]:
                if deadline is not None and time.time() > deadline:
                    print(f"  --until {args.until}: no more boots", flush=True)
                    break
                print(f"  {v['res']['variant']} #{i + 1}", flush=True)
                details = not v["res"]["boots"] and (args.details is None or v["label"] in args.details.split(","))
                v["res"]["boots"].append(bench.boot_once(v["image_obj"], v["net"] or args.net, details,
                                                         v["config_drive"], v["label"] in args.trace.split(",")))
                v["res"]["load1_after"] = float(Path("/proc/loadavg").read_text().split()[0])
            else:
                continue
            break
        for res in results:
            summary(res)
    finally:
        problems = bench.cleanup()
        if problems:
            print("cleanup problems:", problems, file=sys.stderr)
        if bench.keep:
            print(f"images kept for the next call: --run-id {bench.run_id}", flush=True)
        results = [res for res in results if res["boots"]]   # a preparing call (--runs 0) booted nothing
        if results:
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
    try:
        sys.exit(main())
    except KeyboardInterrupt:   # Ctrl-C, SIGTERM: cleaned up and recorded in main's finally
        print("interrompu : nettoyage fait (--keep : images gardées), mesures faites enregistrées", file=sys.stderr)
        sys.exit(130)
