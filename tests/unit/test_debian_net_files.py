"""The Debian 13 recipe's network-path files (DEBIAN_NET_FILES, dhcpcd's nodelay): written into the image by the
builder, part of the recipe's digest. The builder runs on a made-up rootfs: mmdebstrap, chroot and the disk faked."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

from popek.checks.localcloud import images
from popek.checks.localcloud.images import debian
from popek.checks.localcloud.images.shared import ImageBuildError

KVER = "6.12.117+deb13-cloud-amd64"


def _fake_mmdebstrap(work: Path, with_dhcpcd: bool = True):
    def run(cmd, *a, **kw):
        if cmd[0] == "mmdebstrap":
            root = Path(cmd[-2])
            for d in ("boot", "etc/initramfs-tools/conf.d", "etc/modprobe.d", "etc/cloud/cloud.cfg.d"):
                (root / d).mkdir(parents=True, exist_ok=True)
            (root / f"boot/vmlinuz-{KVER}").write_text("")
            (root / "etc/initramfs-tools/modules").write_text("")
            (root / "etc/cloud/cloud.cfg").write_text("cloud_init_modules:\n - bootcmd\n - locale\n")
            if with_dhcpcd:
                (root / "etc/dhcpcd.conf").write_text("hostname\nduid\nslaac private\n")
        return ""
    return run


@pytest.mark.parametrize("with_dhcpcd", [True, False])
def test_builder_writes_the_network_path_files(tmp_path, monkeypatch, with_dhcpcd):
    monkeypatch.setattr(debian, "_run", _fake_mmdebstrap(tmp_path, with_dhcpcd))
    monkeypatch.setattr(debian, "make_boot_disk", lambda *a, **kw: None)
    apt = SimpleNamespace(mirror="http://mirror.invalid/debian")
    if not with_dhcpcd:
        with pytest.raises(ImageBuildError, match="dhcpcd.conf"):
            debian._build_debian(apt, tmp_path, tmp_path / "out.qcow2", lambda line: None)
        return
    assert debian._build_debian(apt, tmp_path, tmp_path / "out.qcow2", lambda line: None) == {"kernel": KVER}
    root = tmp_path / "rootfs"
    resolved = (root / "etc/systemd/resolved.conf.d/90-popek.conf").read_text()
    assert "[Resolve]" in resolved and "LLMNR=no" in resolved.splitlines()
    sysctl = (root / "etc/sysctl.d/90-popek-nodad.conf").read_text().splitlines()
    assert "net.ipv6.conf.default.dad_transmits = 0" in sysctl and "net.ipv6.conf.default.accept_dad = 0" in sysctl
    dhcpcd = (root / "etc/dhcpcd.conf").read_text().splitlines()
    assert dhcpcd[:3] == ["hostname", "duid", "slaac private"] and dhcpcd[-1] == "nodelay"


def test_the_network_path_files_are_in_the_recipe_digest():
    recipe = next(r for r in images.RECIPES if r.name == "Debian 13")
    assert debian.DEBIAN_NET_FILES in recipe.inputs and debian.DEBIAN_DHCPCD_APPEND in recipe.inputs
    files = dict(debian.DEBIAN_NET_FILES)
    files["etc/systemd/resolved.conf.d/90-popek.conf"] = "[Resolve]\nLLMNR=yes\n"
    changed = dataclasses.replace(recipe, inputs=tuple(files if i is debian.DEBIAN_NET_FILES else i
                                                       for i in recipe.inputs))
    assert changed.digest() != recipe.digest()
