"""Guest images for the embedded cloud, built on this machine from Debian 13 (trixie) packages.

Two images, each a whole-disk qcow2 (MBR, one ext4 partition, extlinux) that Glance stores as
`--disk-format qcow2 --container-format bare` and nova's libvirt driver boots like any cloud image:

- ``popek-tiny``: the Debian 13 cloud kernel and an initramfs holding busybox-static, dropbear and an
  ``/init`` that does DHCP, fetches instance-id, hostname, the public key and user data from the
  metadata service at 169.254.169.254 (over ``busybox nc``: busybox's wget segfaults in this guest)
  and starts dropbear. SSH-ready in seconds under QEMU TCG.
- ``Debian 13``: a real minimal trixie (mmdebstrap) with cloud-init, systemd-networkd, systemd-resolved
  and openssh-server, trimmed for first boot under TCG (see shared/research/dataplane.md).

Both kernel command lines carry ``virtio_net.csum=0 virtio_net.gso=0``: Open vSwitch's userspace
(netdev) datapath does not complete partial checksums, so a guest that offloads them sends TCP segments
that arrive with bad checksums and carry no data. The guest defuses the trap by itself, with no change to
nova or libvirt.

Debian 13 packages come from the machine's own Debian mirror, through apt with its own sources, lists,
status and cache directories under the cache directory: the machine's apt setup is never touched.

Each image is rebuilt only when its recipe changes: the recipe (package lists, the files written into the
image, the builder's source) is hashed into the image's file name.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Optional

#: Debian 12 packages the image builds need on the build machine (installed on demand, as root).
IMAGE_BUILD_APT = ("mmdebstrap", "extlinux", "syslinux-common", "qemu-utils", "e2fsprogs")

#: The suite the guests run.
SUITE = "trixie"

#: Kernel command line shared by both images (serial console for nova's console log; csum/gso off for
#: the OVS userspace datapath, see the module docstring).
GUEST_NET_CMDLINE = "virtio_net.csum=0 virtio_net.gso=0"

MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
EXTLINUX_C32_DIR = Path("/usr/lib/syslinux/modules/bios")

Log = Callable[[str], None]


@dataclasses.dataclass
class ImageSpec:
    """One image ready for Glance.

    name: the Glance image name; path: the image file; disk_format/container_format: Glance's formats;
    properties: Glance image properties (os_distro, os_admin_user, …); min_ram (MiB) / min_disk (GiB);
    build_seconds: time spent building it now (0.0 when it came from the cache); recipe: its recipe hash.
    """
    name: str
    path: Path
    disk_format: str = "qcow2"
    container_format: str = "bare"
    properties: dict = dataclasses.field(default_factory=dict)
    min_ram: int = 0
    min_disk: int = 0
    build_seconds: float = 0.0
    recipe: str = ""


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says which step failed and why."""


# ----------------------------------------------------------------------------------------------------
# Running commands and installing build tools


def _run(cmd: list[str], log: Optional[Log] = None, **kw) -> subprocess.CompletedProcess:
    """Run `cmd`, raising ImageBuildError with its stderr's tail when it fails."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-15:]
        raise ImageBuildError(f"{' '.join(cmd[:4])}… exited {proc.returncode}:\n" + "\n".join(tail))
    return proc


def missing_apt(packages: Iterable[str]) -> list[str]:
    """The Debian packages among `packages` that are not installed on this machine."""
    missing = []
    for pkg in packages:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in out.stdout:
            missing.append(pkg)
    return missing


def ensure_apt(packages: Iterable[str], log: Log = print) -> float:
    """Install the missing ones of `packages` with the machine's apt, through popek's one apt helper
    (install.apt_install: the list shown first, nothing removed, no service started or enabled).

    Returns the seconds spent (0.0 when nothing was missing). Raises ImageBuildError when it cannot.
    """
    from popek.checks.localcloud.errors import CloudError
    from popek.checks.localcloud.install import apt_install

    if not missing_apt(packages):
        return 0.0
    t0 = time.monotonic()
    try:
        installed = apt_install(packages, log)
    except CloudError as exc:
        raise ImageBuildError(str(exc)) from None
    took = time.monotonic() - t0
    log(f"apt: installed {' '.join(installed)} in {took:.1f} s")
    return took


# ----------------------------------------------------------------------------------------------------
# Debian 13 through an apt of its own


def machine_debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (first `.../debian` URI), so the guests come from the
    same registry as the host's packages."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            texts.append(path.read_text())
        except OSError:
            continue
    for text in texts:
        for m in re.finditer(r"(?m)^\s*(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text):
            uri = m.group(1).rstrip("/")
            if uri.endswith("/debian"):
                return uri
    raise ImageBuildError("no Debian mirror found in /etc/apt/sources.list{,.d}")


class TrixieApt:
    """apt-get/apt-cache pointed at Debian 13 with its own sources, lists, status and cache under `root`.

    root: directory for apt's state; mirror: Debian mirror URI.
    """

    def __init__(self, root: Path, mirror: str):
        self.root = root
        self.mirror = mirror
        self.archives = root / "cache" / "archives"
        (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (self.archives / "partial").mkdir(parents=True, exist_ok=True)
        (root / "sources.list").write_text(
            f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} {SUITE} main\n")
        (root / "status").touch()

    def _opts(self) -> list[str]:
        r = self.root
        return ["-o", f"Dir::Etc::SourceList={r}/sources.list", "-o", "Dir::Etc::SourceParts=/nonexistent",
                "-o", f"Dir::State::Lists={r}/lists", "-o", f"Dir::State::status={r}/status",
                "-o", f"Dir::Cache={r}/cache", "-o", "Dir::Etc::Preferences=/nonexistent",
                "-o", "Dir::Etc::PreferencesParts=/nonexistent", "-o", "APT::Sandbox::User=root"]

    def update(self, max_age_s: float = 6 * 3600) -> None:
        """Refresh the package lists unless they are younger than `max_age_s`."""
        stamp = self.root / "lists" / ".updated"
        if stamp.exists() and time.time() - stamp.stat().st_mtime < max_age_s:
            return
        _run(["apt-get", *self._opts(), "update"])
        stamp.touch()

    def depends(self, package: str) -> list[str]:
        """The names `package` depends on directly (first alternative of each)."""
        out = _run(["apt-cache", *self._opts(), "show", "--no-all-versions", package]).stdout
        m = re.search(r"(?m)^Depends: (.*)$", out)
        if not m:
            return []
        return [alt.split("|")[0].split("(")[0].strip() for alt in m.group(1).split(",")]

    def download(self, packages: list[str]) -> list[Path]:
        """Download `packages` (exact names, no dependencies) into the cache; returns the .deb files."""
        _run(["apt-get", *self._opts(), "download", *packages], cwd=self.archives)
        debs = []
        for pkg in packages:
            found = sorted(self.archives.glob(f"{pkg}_*.deb"), key=lambda p: p.stat().st_mtime)
            if not found:
                raise ImageBuildError(f"apt-get download {pkg}: no .deb in {self.archives}")
            debs.append(found[-1])
        return debs


# ----------------------------------------------------------------------------------------------------
# Disk assembly: MBR + one ext4 partition + extlinux, then compressed qcow2


def _mbr(disk_bytes: int, part_start: int) -> bytes:
    """syslinux's mbr.bin followed by a partition table with one active Linux partition."""
    code = MBR_BIN.read_bytes()[:440]
    start_lba, count = part_start // 512, (disk_bytes - part_start) // 512
    # CHS fields set to the LBA-only marker (0xFE,0xFF,0xFF): every BIOS here boots by LBA.
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", start_lba, count)
    return code.ljust(440, b"\0") + b"\0" * 6 + entry + b"\0" * 48 + b"\x55\xaa"


def make_boot_disk(tree: Path, out_qcow2: Path, size_mib: int, label: str, fs_uuid: str,
                   workdir: Path) -> None:
    """Make a bootable whole-disk qcow2 from `tree`, whose /boot/extlinux/extlinux.conf is the bootloader
    configuration.

    tree: the root filesystem's files; out_qcow2: where to write the image; size_mib: the disk's virtual
    size; label/fs_uuid: the ext4 label and UUID (the kernel command line finds root by them);
    workdir: scratch space.
    """
    part_start = 1 << 20
    part = workdir / "part.ext4"
    part.unlink(missing_ok=True)
    with open(part, "wb") as f:
        f.truncate(size_mib * (1 << 20) - part_start)
    # extlinux 6.04 cannot read ext4 with 64bit, metadata_csum_seed or orphan_file; with the 1 KiB
    # blocks mkfs picks for a small file system it finds the config but fails to load the kernel.
    _run(["mkfs.ext4", "-q", "-F", "-O", "^64bit,^metadata_csum_seed,^orphan_file", "-L", label,
          "-U", fs_uuid, "-b", "4096", "-E", "root_owner=0:0", "-d", str(tree), str(part)])
    mnt = workdir / "mnt"
    mnt.mkdir(exist_ok=True)
    _run(["mount", "-o", "loop", str(part), str(mnt)])
    try:
        # extlinux installs on the file system alone; the MBR code hands it the partition's start.
        _run(["extlinux", "--install", str(mnt / "boot" / "extlinux")])
    finally:
        _run(["umount", str(mnt)])
    raw = workdir / "disk.raw"
    raw.unlink(missing_ok=True)
    with open(raw, "wb") as disk, open(part, "rb") as src:
        disk.write(_mbr(size_mib * (1 << 20), part_start))
        disk.seek(part_start)
        # Copy sparsely: skip the all-zero blocks so the raw file stays small.
        while chunk := src.read(1 << 20):
            if chunk.count(0) == len(chunk):
                disk.seek(len(chunk), os.SEEK_CUR)
            else:
                disk.write(chunk)
        disk.truncate(size_mib * (1 << 20))
    part.unlink()
    tmp = out_qcow2.with_suffix(".tmp")
    _run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw), str(tmp)])
    raw.unlink()
    tmp.rename(out_qcow2)


def _extlinux_conf(kernel: str, initrd: str, append: str) -> str:
    return (f"DEFAULT linux\nTIMEOUT 1\nPROMPT 0\nLABEL linux\n  LINUX {kernel}\n"
            f"  INITRD {initrd}\n  APPEND {append}\n")


# ----------------------------------------------------------------------------------------------------
# The tiny image: cloud kernel + busybox + dropbear in an initramfs

#: Packages of the tiny image (the kernel package is resolved from linux-image-cloud-amd64).
TINY_PACKAGES = ("busybox-static", "dropbear-bin", "libc6", "libcrypt1", "libtomcrypt1", "libtommath1",
                 "libgmp10", "zlib1g")
#: Modules /init loads (with their dependencies); the rest of virtio is built into the cloud kernel.
#: virtio_blk: the boot disk needs none (extlinux hands the kernel its initramfs), but an attached Cinder
#: volume must show up as /dev/vdX for the guest to write and read it (C15, C23).
TINY_MODULES = ("virtio_net", "virtio_blk")

TINY_INIT = r"""#!/bin/busybox sh
# popek-tiny: network up by DHCP, identity and key from the metadata service, then dropbear.
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /usr/bin /usr/sbin /sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
exec </dev/console >/dev/console 2>&1
# Module parameters from the kernel command line (modprobe would read them; busybox insmod does not).
for m in $(cat /lib/modules/load-order); do
  params=$(tr ' ' '\n' </proc/cmdline | sed -n "s/^$m\.//p" | tr '\n' ' ')
  insmod /lib/modules/$m.ko $params || echo "popek-tiny: insmod $m failed"
done
exec /sbin/init
"""

TINY_RC = r"""#!/bin/sh
log() { echo "popek-tiny: $*"; }
hostname popek-tiny
ip link set lo up
ifc=
for i in $(seq 50); do
  for d in /sys/class/net/*; do n=${d##*/}; [ "$n" != lo ] && ifc=$n && break 2; done
  sleep 0.1
done
[ -n "$ifc" ] || { log "no network interface"; exit 0; }
ip link set "$ifc" up
# A port may be wired a moment after the guest starts (a cloud just up, a loaded host): ask for 90 s.
udhcpc -i "$ifc" -s /etc/udhcpc.script -O staticroutes -t 90 -T 1 -A 1 -n -q || log "dhcp failed"
# GET http://169.254.169.254/<path> through busybox nc; prints the body, fails unless 200.
md() {
  printf 'GET /%s HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' "$1" | nc -w 5 169.254.169.254 80 >/tmp/md.raw 2>/dev/null || return 1
  head -n1 /tmp/md.raw | grep -q ' 200 ' || return 1
  sed '1,/^\r*$/d' /tmp/md.raw
}
ok=
for i in $(seq 60); do
  md latest/meta-data/instance-id >/run/instance-id && ok=1 && break
  sleep 1
done
if [ -n "$ok" ]; then
  log "metadata instance-id $(cat /run/instance-id)"
  h=$(md latest/meta-data/hostname) && hostname "${h%%.*}"
  md latest/meta-data/public-keys/0/openssh-key >/tmp/key && for home in /root /home/debian; do
    mkdir -p $home/.ssh && cp /tmp/key $home/.ssh/authorized_keys && chmod 700 $home/.ssh && chmod 600 $home/.ssh/authorized_keys
  done
  chown -R 1000:1000 /home/debian
  if md latest/user-data >/run/user-data && head -c2 /run/user-data | grep -q '#!'; then
    chmod +x /run/user-data && /run/user-data >/run/user-data.log 2>&1
    log "user-data exited $?"
  fi
else
  log "no metadata service"
fi
# The host key now, not at the first connection (-R): "ready" then means SSH answers at once.
dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
log "ready $(hostname) $(ip -4 -o addr show dev "$ifc" | awk '{print $4}')"
"""

TINY_UDHCPC = r"""#!/bin/sh
# udhcpc hook: address, classless static routes (option 121, neutron sends the metadata route), router.
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast $broadcast} dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
      set -- $staticroutes
      while [ $# -ge 2 ]; do
        if [ "$2" = 0.0.0.0 ]; then ip route add "$1" dev "$interface"; else ip route add "$1" via "$2" dev "$interface"; fi
        shift 2
      done
    fi
    if [ -n "$router" ] && ! ip route | grep -q '^default'; then
      for r in $router; do ip route add default via "$r" dev "$interface" && break; done
    fi
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    ;;
esac
exit 0
"""

TINY_INITTAB = """::sysinit:/etc/rc
::respawn:/usr/sbin/dropbear -F -E -R -s -p 22
::respawn:/etc/heartbeat
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
"""

#: A line on the serial console every 3 s (uptime in seconds): through the compute API's console log, a
#: traffic check can tell a guest that runs but is unreachable from one that died (no false "blocked").
TINY_HEARTBEAT = """#!/bin/sh
while :; do echo "popek-tiny: alive $(cut -d. -f1 /proc/uptime)" >/dev/console; sleep 3; done
"""

TINY_FILES = {
    "etc/heartbeat": (TINY_HEARTBEAT, 0o755),
    "etc/rc": (TINY_RC, 0o755),
    "etc/udhcpc.script": (TINY_UDHCPC, 0o755),
    "etc/inittab": (TINY_INITTAB, 0o644),
    "init": (TINY_INIT, 0o755),
    "etc/passwd": ("root:*:0:0:root:/root:/bin/sh\ndebian:*:1000:1000:debian:/home/debian:/bin/sh\n", 0o644),
    "etc/group": ("root:x:0:\ndebian:x:1000:\n", 0o644),
    "etc/shells": ("/bin/sh\n", 0o644),
    "etc/nsswitch.conf": ("passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n", 0o644),
}

TINY_CMDLINE = f"console=ttyS0 quiet {GUEST_NET_CMDLINE}"


def _cpio_newc(root: Path) -> bytes:
    """A newc cpio archive of `root` (the format the kernel unpacks as an initramfs)."""
    out = bytearray()
    ino = 1

    def add(name: str, mode: int, data: bytes = b"", nlink: int = 1) -> None:
        nonlocal ino
        namez = name.encode() + b"\0"
        hdr = b"070701" + b"".join(b"%08X" % v for v in (
            ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(namez), 0))
        out.extend(hdr + namez)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))
        ino += 1

    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if rel != ".":
            add(rel, 0o040755, nlink=2)
        for fn in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            p = os.path.join(dirpath, fn)
            name = fn if rel == "." else f"{rel}/{fn}"
            st = os.lstat(p)
            if os.path.islink(p):
                add(name, 0o120777, os.readlink(p).encode())
            else:
                add(name, 0o100000 | (st.st_mode & 0o7777), Path(p).read_bytes())
    add("TRAILER!!!", 0)
    out.extend(b"\0" * (-len(out) % 512))
    return bytes(out)


def _module_depends(ko: bytes) -> list[str]:
    m = re.search(rb"depends=([^\0]*)\0", ko)
    return [d.decode() for d in m.group(1).split(b",") if d] if m else []


def _elf_needed(path: Path) -> list[str]:
    out = _run(["readelf", "-d", str(path)]).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def _build_tiny(apt: TrixieApt, work: Path, out: Path, log: Log) -> dict:
    kernel_pkg = apt.depends("linux-image-cloud-amd64")[0]
    debs = apt.download([kernel_pkg, *TINY_PACKAGES])
    pkgroot = work / "debs"
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(pkgroot)])
    kver = kernel_pkg.removeprefix("linux-image-")
    modroot = pkgroot / "usr" / "lib" / "modules" / kver

    ird = work / "initramfs"
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "lib/modules", "lib/x86_64-linux-gnu", "lib64",
              "etc/dropbear", "root", "home/debian", "proc", "sys", "dev", "run", "tmp"):
        (ird / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(pkgroot / "usr/bin/busybox", ird / "bin/busybox")
    shutil.copy2(pkgroot / "usr/sbin/dropbear", ird / "usr/sbin/dropbear")
    shutil.copy2(pkgroot / "usr/bin/dropbearkey", ird / "usr/bin/dropbearkey")
    # dropbear's shared libraries, found by their DT_NEEDED entries (recursively) in the extracted debs.
    libdir = pkgroot / "usr/lib/x86_64-linux-gnu"
    todo, seen = _elf_needed(pkgroot / "usr/sbin/dropbear"), set()
    while todo:
        lib = todo.pop()
        if lib in seen or lib.startswith("ld-linux"):
            continue
        seen.add(lib)
        src = libdir / lib
        if not src.exists():
            raise ImageBuildError(f"tiny image: {lib} (needed by dropbear) not in the downloaded packages")
        shutil.copy2(src.resolve(), ird / "lib/x86_64-linux-gnu" / lib)
        todo += _elf_needed(src.resolve())
    shutil.copy2((libdir / "ld-linux-x86-64.so.2").resolve(), ird / "lib64/ld-linux-x86-64.so.2")

    # Modules, decompressed (busybox insmod hands the raw buffer to init_module), in dependency order.
    index = {p.name.split(".ko")[0].replace("-", "_"): p for p in modroot.rglob("*.ko*")}
    order: list[str] = []

    def need(name: str) -> None:
        if name in order:
            return
        src = index.get(name)
        if src is None:
            return  # built into the kernel
        data = lzma.decompress(src.read_bytes()) if src.name.endswith(".xz") else src.read_bytes()
        for dep in _module_depends(data):
            need(dep)
        (ird / "lib/modules" / f"{name}.ko").write_bytes(data)
        order.append(name)

    for m in TINY_MODULES:
        need(m)
    (ird / "lib/modules/load-order").write_text(" ".join(order) + "\n")
    for rel, (text, mode) in TINY_FILES.items():
        p = ird / rel
        p.write_text(text)
        p.chmod(mode)
    os.symlink("/proc/mounts", ird / "etc/mtab")

    tree = work / "disk"
    (tree / "boot" / "extlinux").mkdir(parents=True)
    shutil.copy2(pkgroot / "boot" / f"vmlinuz-{kver}", tree / "boot" / "vmlinuz")
    (tree / "boot" / "initrd.img").write_bytes(_gzip(_cpio_newc(ird)))
    (tree / "boot" / "extlinux" / "extlinux.conf").write_text(
        _extlinux_conf("/boot/vmlinuz", "/boot/initrd.img", TINY_CMDLINE))
    make_boot_disk(tree, out, size_mib=64, label="popek-tiny", fs_uuid=str(uuid.uuid4()), workdir=work)
    log(f"tiny: kernel {kver}, initramfs {(tree / 'boot/initrd.img').stat().st_size / 1e6:.1f} MB, "
        f"modules {' '.join(order)}")
    return {"kernel": kver}


def _gzip(data: bytes) -> bytes:
    import gzip
    return gzip.compress(data, compresslevel=6, mtime=0)


# ----------------------------------------------------------------------------------------------------
# The Debian 13 image: mmdebstrap + cloud-init, trimmed for first boot under TCG

DEBIAN_PACKAGES = (
    "linux-image-cloud-amd64", "systemd-sysv", "systemd-resolved", "udev", "dbus", "cloud-init",
    "cloud-guest-utils", "openssh-server", "netbase", "iproute2", "iputils-ping", "sudo", "e2fsprogs",
    "initramfs-tools", "curl",
)
#: dpkg path filters: no docs, man pages, locales (copyright files kept).
DEBIAN_DPKG_FILTERS = (
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias", "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/info/*",
)
#: Only what finds the root disk goes into the initramfs (MODULES=most costs seconds of TCG unpacking).
DEBIAN_INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "ext4")
#: cloud-init modules dropped: each costs seconds under TCG and none matters to a test guest.
DEBIAN_CLOUDINIT_DROP = ("locale", "apt_configure", "apt-configure", "keys_to_console", "keys-to-console",
                         "ssh_authkey_fingerprints", "ssh-authkey-fingerprints", "grub_dpkg", "grub-dpkg",
                         "apt_pipelining", "apt-pipelining", "ntp", "byobu", "fan", "landscape",
                         "lxd", "ubuntu_pro", "ubuntu-advantage", "snap", "rh_subscription",
                         "spacewalk", "puppet", "chef", "salt_minion", "mcollective", "reset_rmc",
                         "install_hotplug", "wireguard", "ansible", "disk_setup", "mounts")
DEBIAN_CLOUD_CFG = """# popek: the metadata service at 169.254.169.254 (C18), the only datasource listed, so that ds-identify
# takes it without probing (its shell search costs seconds under TCG); ed25519 host key only (fast to make).
datasource_list: [OpenStack, None]
ssh_genkeytypes: [ed25519]
ssh_deletekeys: true
"""
#: Modules udev would load at first boot for nothing a test guest uses (KVM inside a TCG guest, the kernel's
#: AES): each modprobe costs CPU that cloud-init's start needs under TCG.
DEBIAN_MODPROBE_BLACKLIST = ("kvm", "kvm_amd", "kvm_intel", "aesni_intel", "ghash_clmulni_intel")
DEBIAN_CMDLINE = f"ro console=tty0 console=ttyS0,115200 {GUEST_NET_CMDLINE}"


def _build_debian(apt: TrixieApt, work: Path, out: Path, log: Log) -> dict:
    rootfs = work / "rootfs"
    t0 = time.monotonic()
    cmd = ["mmdebstrap", "--variant=minbase", "--mode=root", "--quiet",
           "--include=" + ",".join(DEBIAN_PACKAGES),
           *[f"--dpkgopt={f}" for f in DEBIAN_DPKG_FILTERS],
           "--aptopt=APT::Install-Recommends \"false\"",
           # The resolv.conf mmdebstrap copies from the build host would point cloud-init's DNS probe at
           # an unreachable resolver for 30 s: point it at systemd-resolved's stub instead.
           "--customize-hook=ln -sf ../run/systemd/resolve/stub-resolv.conf \"$1/etc/resolv.conf\"",
           # trixie enables no network manager by default; cloud-init renders networkd's config.
           "--customize-hook=chroot \"$1\" systemctl enable systemd-networkd systemd-resolved",
           "--customize-hook=rm -f \"$1\"/etc/ssh/ssh_host_* \"$1\"/etc/hostname",
           "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*.bin",
           # What systemd would do on first boot because /usr is newer than /etc and /var
           # (ldconfig, journal catalog, ConditionNeedsUpdate): done once here instead of in every guest.
           "--customize-hook=chroot \"$1\" ldconfig",
           "--customize-hook=chroot \"$1\" journalctl --update-catalog",
           "--customize-hook=touch -r \"$1\"/usr \"$1\"/etc/.updated \"$1\"/var/.updated",
           SUITE, str(rootfs),
           f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {apt.mirror} {SUITE} main"]
    for attempt in (1, 2):  # a mirror hiccup fails apt-get update with --error-on=any: retry once
        try:
            _run(cmd)
            break
        except ImageBuildError:
            shutil.rmtree(rootfs, ignore_errors=True)
            if attempt == 2:
                raise
    log(f"debian: mmdebstrap {time.monotonic() - t0:.1f} s")

    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise ImageBuildError("debian: no kernel in the rootfs")
    kver = kernels[-1].name.removeprefix("vmlinuz-")

    # Initramfs with only the modules that find the root disk.
    conf = rootfs / "etc/initramfs-tools"
    (conf / "conf.d" / "popek.conf").write_text("MODULES=list\nCOMPRESS=zstd\n")
    with open(conf / "modules", "a") as f:
        f.write("\n".join(DEBIAN_INITRAMFS_MODULES) + "\n")
    t1 = time.monotonic()
    _run(["chroot", str(rootfs), "update-initramfs", "-u", "-k", kver])
    log(f"debian: initramfs {time.monotonic() - t1:.1f} s")

    (rootfs / "etc/modprobe.d/popek.conf").write_text(
        "".join(f"blacklist {m}\n" for m in DEBIAN_MODPROBE_BLACKLIST))
    cfg = rootfs / "etc/cloud/cloud.cfg"
    kept = [line for line in cfg.read_text().splitlines()
            if not re.fullmatch(r"\s*-\s*(%s)\s*" % "|".join(map(re.escape, DEBIAN_CLOUDINIT_DROP)), line)]
    cfg.write_text("\n".join(kept) + "\n")
    (rootfs / "etc/cloud/cloud.cfg.d/90-popek.cfg").write_text(DEBIAN_CLOUD_CFG)

    fs_uuid = str(uuid.uuid4())
    # fsck pass 0: the root file system is made fresh by this build and every guest boots a copy of it;
    # checking it at each boot put 2.6 s of TCG on the way to SSH (systemd-fsck-root).
    (rootfs / "etc/fstab").write_text(f"UUID={fs_uuid} / ext4 defaults,errors=remount-ro 0 0\n")
    (rootfs / "boot/extlinux").mkdir(exist_ok=True)
    # trixie makes no /vmlinuz link: the bootloader names the installed kernel.
    (rootfs / "boot/extlinux/extlinux.conf").write_text(
        _extlinux_conf(f"/boot/vmlinuz-{kver}", f"/boot/initrd.img-{kver}",
                       f"root=UUID={fs_uuid} {DEBIAN_CMDLINE}"))
    t2 = time.monotonic()
    make_boot_disk(rootfs, out, size_mib=1024, label="cloudimg-rootfs", fs_uuid=fs_uuid, workdir=work)
    log(f"debian: disk {time.monotonic() - t2:.1f} s")
    return {"kernel": kver}


# ----------------------------------------------------------------------------------------------------
# The catalogue and the cache


@dataclasses.dataclass
class _Recipe:
    name: str
    slug: str
    builder: Callable[[TrixieApt, Path, Path, Log], dict]
    inputs: tuple
    properties: dict
    min_ram: int
    min_disk: int

    def digest(self) -> str:
        src = inspect.getsource(self.builder) + inspect.getsource(make_boot_disk) + inspect.getsource(_mbr)
        blob = json.dumps([self.name, repr(self.inputs), self.properties, src], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


RECIPES = (
    _Recipe("popek-tiny", "popek-tiny", _build_tiny,
            (TINY_PACKAGES, TINY_MODULES, TINY_FILES, TINY_CMDLINE, inspect.getsource(_cpio_newc)),
            {"os_distro": "debian", "os_version": "13", "os_type": "linux", "os_admin_user": "debian",
             "hw_disk_bus": "virtio", "hw_vif_model": "virtio",
             # busybox init has no ACPI power button handler: nova would wait 60 s before destroying.
             "os_shutdown_timeout": "0", "popek_ready_marker": "popek-tiny: ready",
             "popek_heartbeat": "popek-tiny: alive"},
            min_ram=128, min_disk=1),
    _Recipe("Debian 13", "debian-13", _build_debian,
            (DEBIAN_PACKAGES, DEBIAN_DPKG_FILTERS, DEBIAN_INITRAMFS_MODULES, DEBIAN_CLOUDINIT_DROP,
             DEBIAN_CLOUD_CFG, DEBIAN_CMDLINE, DEBIAN_MODPROBE_BLACKLIST),
            {"os_distro": "debian", "os_version": "13", "os_type": "linux", "os_admin_user": "debian",
             "hw_disk_bus": "virtio", "hw_vif_model": "virtio", "os_shutdown_timeout": "10"},
            min_ram=256, min_disk=1),
)

#: Image names, in build order.
IMAGE_NAMES = tuple(r.name for r in RECIPES)


def _spec(recipe: _Recipe, path: Path, digest: str, seconds: float) -> ImageSpec:
    return ImageSpec(name=recipe.name, path=path, properties=dict(recipe.properties),
                     min_ram=recipe.min_ram, min_disk=recipe.min_disk, build_seconds=seconds, recipe=digest)


def build_image(name: str, cache_dir: Path, mirror: Optional[str] = None, log: Log = print) -> ImageSpec:
    """Build image `name` (one of IMAGE_NAMES) under `cache_dir`, or return the cached one.

    cache_dir: where images, apt state and scratch space live; mirror: Debian mirror URI (default: the
    machine's own); log: receives one line per step with its measured time.
    """
    recipe = next((r for r in RECIPES if r.name == name), None)
    if recipe is None:
        raise ImageBuildError(f"unknown image {name!r}; known: {', '.join(IMAGE_NAMES)}")
    digest = recipe.digest()
    images = Path(cache_dir)
    images.mkdir(parents=True, exist_ok=True)
    out = images / f"{recipe.slug}-{digest}.qcow2"
    if out.exists():
        return _spec(recipe, out, digest, 0.0)
    if os.geteuid() != 0:
        raise ImageBuildError(f"{name}: building needs root (mount, chroot)")
    ensure_apt(IMAGE_BUILD_APT, log)
    t0 = time.monotonic()
    apt = TrixieApt(Path(cache_dir) / "apt-trixie", mirror or machine_debian_mirror())
    apt.update()
    with tempfile.TemporaryDirectory(prefix=f"build-{recipe.slug}-", dir=cache_dir) as tmp:
        info = recipe.builder(apt, Path(tmp), out, log)
    took = time.monotonic() - t0
    for stale in images.glob(f"{recipe.slug}-*.qcow2"):
        if stale != out:
            stale.unlink()
    (out.with_suffix(".json")).write_text(json.dumps({"built_s": round(took, 1), **info}))
    log(f"image {name}: built in {took:.1f} s, {out.stat().st_size / 2**20:.0f} MiB qcow2 ({out.name})")
    return _spec(recipe, out, digest, took)


def build_images(cache_dir: Path, mirror: Optional[str] = None, log: Log = print,
                 names: Iterable[str] = IMAGE_NAMES) -> list[ImageSpec]:
    """Build (or take from the cache) every image in `names`; returns those that exist.

    An image that fails to build is left out and its reason logged, so one broken recipe does not
    keep the cloud from its other images; `build_image` raises instead.
    """
    specs = []
    for name in names:
        try:
            specs.append(build_image(name, cache_dir, mirror, log))
        except (ImageBuildError, OSError) as exc:
            log(f"image {name}: NOT built: {exc}")
    return specs

