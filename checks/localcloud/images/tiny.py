"""The tiny image: the Debian 13 cloud kernel and an initramfs holding busybox-static, dropbear and an
``/init`` that does DHCP, fetches instance-id, hostname, the public key and user data from the metadata
service at 169.254.169.254 (over ``busybox nc``: busybox's wget segfaults in this guest) and starts
dropbear. SSH-ready in seconds under QEMU TCG.

The initramfs's scripts and inittab are the files of ``initramfs/`` beside this module (package data),
written into the image as they are.
"""
from __future__ import annotations

import lzma
import os
import re
import shutil
import uuid
from importlib import resources
from pathlib import Path

from popek.checks.localcloud.images.disk import _extlinux_conf, make_boot_disk
from popek.checks.localcloud.images.shared import GUEST_NET_CMDLINE, ImageBuildError, Log, _run
from popek.checks.localcloud.images.trixie import TrixieApt

#: Packages of the tiny image (the kernel package is resolved from linux-image-cloud-amd64).
TINY_PACKAGES = ("busybox-static", "dropbear-bin", "libc6", "libcrypt1", "libtomcrypt1", "libtommath1",
                 "libgmp10", "zlib1g")
#: Modules /init loads (with their dependencies); the rest of virtio is built into the cloud kernel.
#: virtio_blk: the boot disk needs none (extlinux hands the kernel its initramfs), but an attached Cinder
#: volume must show up as /dev/vdX for the guest to write and read it (C15, C23).
TINY_MODULES = ("virtio_net", "virtio_blk")


def _initramfs_text(name: str) -> str:
    """The text of initramfs/`name` (package data)."""
    return resources.files(__package__).joinpath("initramfs", name).read_text()


#: The guest's /init, /etc/rc (DHCP, metadata, host key), udhcpc's hook and busybox init's inittab.
TINY_INIT = _initramfs_text("init")
TINY_RC = _initramfs_text("rc")
TINY_UDHCPC = _initramfs_text("udhcpc.script")
TINY_INITTAB = _initramfs_text("inittab")
#: A line on the serial console every 3 s (uptime in seconds): through the compute API's console log, a
#: traffic check can tell a guest that runs but is unreachable from one that died (no false "blocked").
TINY_HEARTBEAT = _initramfs_text("heartbeat")

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
