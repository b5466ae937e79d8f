"""Disk assembly: MBR + one ext4 partition + extlinux, then a compressed qcow2 (a whole-disk image that
Glance stores as `--disk-format qcow2 --container-format bare` and nova's libvirt driver boots like any
cloud image)."""
from __future__ import annotations

import os
import struct
from pathlib import Path

from popek.checks.localcloud.images.shared import _run

MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")


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
