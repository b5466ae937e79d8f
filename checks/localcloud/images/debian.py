"""The Debian 13 image: a real minimal trixie (mmdebstrap) with cloud-init, systemd-networkd,
systemd-resolved and openssh-server, trimmed for first boot under TCG: cloud-init's locale, apt-configure and
keys-to-console modules cost seconds there, and only the ed25519 host key is made (first boot under bare QEMU, 2 vCPUs: 40-43 s)."""
from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path

from popek.checks.localcloud.images.disk import _extlinux_conf, make_boot_disk
from popek.checks.localcloud.images.shared import GUEST_NET_CMDLINE, SUITE, ImageBuildError, Log, _run
from popek.checks.localcloud.images.trixie import TrixieApt

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
#: `norandmaps`: no address space randomization of user processes. QEMU's TCG keys the code it translates by
#: the guest's virtual address too (Debian 12's QEMU 7.2.22, x86: 7.2.0 shared PC-relative blocks across
#: addresses, a sharing that 7.2 stable and 8.x reverted, QEMU issue 2092): with randomization, every process
#: re-translates the shared libraries it maps (a Debian 13 first boot made ~1 GiB of host code, 13 flushes of
#: nova's 128 MiB cache); without, 4-5 flushes and the boot ~20 s shorter (measured 2026-12-06,
#: benchmarks/README.md). A test guest of the course, reached by its owner's key only, trades this hardening for
#: a boot that fits the suite.
DEBIAN_CMDLINE = f"ro console=tty0 console=ttyS0,115200 {GUEST_NET_CMDLINE} norandmaps"
#: Files of the guest's network path to cloud-init's metadata (C18), each taking seconds off cloud-init's init-local
#: or the wait before its network stage on a first boot under TCG (traced with `bench_boot.py --trace`,
#: benchmarks/README.md, 2026-12-07: init-local -> network stage 10.1-14.1 s, 6.3-6.6 s with the three):
#: - systemd-resolved without LLMNR: cloud-init's DNS-redirect probe (util.is_resolvable) looks up a single-label
#:   name that must not exist, which resolved asks the link by LLMNR, waiting 2-4 s for no answer;
#: - no IPv6 duplicate address detection: networkd takes the link over, bounces it, and is « configured » (what
#:   systemd-networkd-wait-online waits for) only once the link-local address passed DAD again, 1-2 s after the
#:   DHCPv4 lease; link-local addresses come from Neutron's unique MACs;
#: - dhcpcd's `nodelay` (appended to Debian's dhcpcd.conf): cloud-init's ephemeral DHCP waits a random 0-1 s
#:   before its first DISCOVER otherwise (RFC 2131's initial delay); networkd's own DHCP client is not dhcpcd.
DEBIAN_NET_FILES = {
    "etc/systemd/resolved.conf.d/90-popek.conf": "# popek: no LLMNR (see DEBIAN_NET_FILES)\n[Resolve]\nLLMNR=no\n",
    "etc/sysctl.d/90-popek-nodad.conf": ("# popek: no IPv6 duplicate address detection (see DEBIAN_NET_FILES)\n"
                                         "net.ipv6.conf.default.dad_transmits = 0\nnet.ipv6.conf.all.dad_transmits = 0\n"
                                         "net.ipv6.conf.default.accept_dad = 0\nnet.ipv6.conf.all.accept_dad = 0\n"),
}
DEBIAN_DHCPCD_APPEND = "# popek: no initial delay before the first DISCOVER (see DEBIAN_NET_FILES)\nnodelay\n"


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
    for rel, text in DEBIAN_NET_FILES.items():
        (rootfs / rel).parent.mkdir(parents=True, exist_ok=True)
        (rootfs / rel).write_text(text)
    dhcpcd_conf = rootfs / "etc/dhcpcd.conf"
    if not dhcpcd_conf.is_file():
        raise ImageBuildError("debian: no /etc/dhcpcd.conf (dhcpcd-base) to append nodelay to")
    dhcpcd_conf.write_text(dhcpcd_conf.read_text().rstrip("\n") + "\n" + DEBIAN_DHCPCD_APPEND)

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
