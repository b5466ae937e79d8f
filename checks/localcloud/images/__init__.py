"""Guest images for the embedded cloud, built on this machine from Debian 13 (trixie) packages.

Two images, each a whole-disk qcow2 (MBR, one ext4 partition, extlinux: disk.py):

- ``popek-tiny`` (tiny.py): the cloud kernel and an initramfs of busybox and dropbear that takes its
  address, identity and key from Neutron's DHCP and the metadata service. SSH-ready in seconds under TCG.
- ``Debian 13`` (debian.py): a real minimal trixie with cloud-init, trimmed for first boot under TCG.

Both kernel command lines carry ``virtio_net.csum=0 virtio_net.gso=0`` (shared.py): Open vSwitch's
userspace (netdev) datapath does not complete partial checksums; the guest defuses the trap by itself,
with no change to nova or libvirt.

Debian 13 packages come from the machine's own Debian mirror, through an apt with its own sources, lists,
status and cache directories under the cache directory (trixie.py): the machine's apt setup is never
touched. The build tools (IMAGE_BUILD_APT) are installed on the machine by popek's one apt helper.

Each image is rebuilt only when its recipe changes: the recipe (package lists, the files written into the
image, the builder's source) is hashed into the image's file name (this module: the catalogue and the cache).
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

from popek.checks.localcloud import apt
from popek.checks.localcloud.images.debian import (DEBIAN_CLOUD_CFG, DEBIAN_CLOUDINIT_DROP, DEBIAN_CMDLINE,
                                                   DEBIAN_DPKG_FILTERS, DEBIAN_INITRAMFS_MODULES,
                                                   DEBIAN_DHCPCD_APPEND, DEBIAN_MODPROBE_BLACKLIST,
                                                   DEBIAN_NET_FILES, DEBIAN_PACKAGES, _build_debian)
from popek.checks.localcloud.images.disk import _mbr, make_boot_disk
from popek.checks.localcloud.images.shared import ImageBuildError, Log
from popek.checks.localcloud.images.tiny import (TINY_CMDLINE, TINY_FILES, TINY_MODULES, TINY_PACKAGES,
                                                 _build_tiny, _cpio_newc)
from popek.checks.localcloud.images.trixie import TrixieApt, machine_debian_mirror

__all__ = ["DEBIAN_CMDLINE", "IMAGE_BUILD_APT", "IMAGE_NAMES", "RECIPES", "TINY_CMDLINE", "ImageBuildError",
           "ImageSpec", "build_image", "build_images", "machine_debian_mirror"]

#: Debian 12 packages the image builds need on the build machine (installed on demand, as root).
IMAGE_BUILD_APT = ("mmdebstrap", "extlinux", "syslinux-common", "qemu-utils", "e2fsprogs")


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
             DEBIAN_CLOUD_CFG, DEBIAN_CMDLINE, DEBIAN_MODPROBE_BLACKLIST, DEBIAN_NET_FILES, DEBIAN_DHCPCD_APPEND),
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
    t0 = time.monotonic()
    installed = apt.install(IMAGE_BUILD_APT, log)
    if installed:
        log(f"apt: installed {' '.join(installed)} in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    trixie = TrixieApt(Path(cache_dir) / "apt-trixie", mirror or machine_debian_mirror())
    trixie.update()
    with tempfile.TemporaryDirectory(prefix=f"build-{recipe.slug}-", dir=cache_dir) as tmp:
        info = recipe.builder(trixie, Path(tmp), out, log)
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
        except (ImageBuildError, apt.AptError, OSError) as exc:
            log(f"image {name}: NOT built: {exc}")
    return specs

