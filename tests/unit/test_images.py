"""Pure logic of the guest image builder: MBR layout, newc cpio, module dependencies, recipe hashing."""
import struct
import subprocess
from pathlib import Path

import pytest

from popek.checks.localcloud import images
from popek.checks.localcloud.images import disk, tiny, trixie


def test_mbr_has_one_active_linux_partition_after_the_boot_code(tmp_path, monkeypatch):
    code = tmp_path / "mbr.bin"
    code.write_bytes(b"\xeb" * 440)
    monkeypatch.setattr(disk, "MBR_BIN", code)
    mbr = disk._mbr(64 << 20, 1 << 20)
    assert len(mbr) == 512 and mbr[510:] == b"\x55\xaa" and mbr[:440] == b"\xeb" * 440
    status, ptype = mbr[446], mbr[450]
    start, count = struct.unpack("<II", mbr[454:462])
    assert (status, ptype, start, count) == (0x80, 0x83, 2048, (63 << 20) // 512)
    assert mbr[462:510] == b"\0" * 48  # the three other entries are empty


@pytest.mark.skipif(subprocess.run(["which", "cpio"], capture_output=True).returncode != 0, reason="no cpio")
def test_cpio_newc_is_read_back_by_cpio(tmp_path):
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(b"\x7fELF" + b"x" * 1001)
    (root / "bin" / "busybox").chmod(0o755)
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "init").write_text("#!/bin/sh\n")
    archive = tiny._cpio_newc(root)
    assert len(archive) % 512 == 0
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet"], input=archive, cwd=out, check=True)
    assert (out / "bin/busybox").read_bytes() == (root / "bin/busybox").read_bytes()
    assert (out / "bin/busybox").stat().st_mode & 0o777 == 0o755
    assert (out / "bin/sh").is_symlink() and str((out / "bin/sh").readlink()) == "busybox"
    assert (out / "init").read_text() == "#!/bin/sh\n"


def test_module_depends_reads_modinfo():
    ko = b"\0license=GPL\0depends=failover,net_failover\0vermagic=6.12\0"
    assert tiny._module_depends(ko) == ["failover", "net_failover"]
    assert tiny._module_depends(b"\0depends=\0") == []
    assert tiny._module_depends(b"nothing") == []


def test_recipe_digest_is_stable_and_follows_the_recipe():
    tiny = next(r for r in images.RECIPES if r.name == "popek-tiny")
    assert tiny.digest() == tiny.digest()
    changed = images._Recipe(tiny.name, tiny.slug, tiny.builder, tiny.inputs + ("x",), tiny.properties,
                             tiny.min_ram, tiny.min_disk)
    assert changed.digest() != tiny.digest()


def test_every_image_boots_with_the_ovs_checksum_fix():
    # The OVS userspace datapath does not complete partial checksums: the guests must not leave them to it.
    assert "virtio_net.csum=0" in images.TINY_CMDLINE and "virtio_net.gso=0" in images.TINY_CMDLINE
    assert "virtio_net.csum=0" in images.DEBIAN_CMDLINE and "console=ttyS0" in images.DEBIAN_CMDLINE


def test_machine_debian_mirror_reads_deb822_and_one_line_sources(tmp_path, monkeypatch):
    real_path = trixie.Path
    files = {"/etc/apt/sources.list": "deb [arch=amd64] http://mirror.example/debian bookworm main\n"}

    class FakePath(type(real_path())):
        def read_text(self, *a, **k):
            if str(self) in files:
                return files[str(self)]
            raise OSError

        def glob(self, pattern):
            return iter(())

    monkeypatch.setattr(trixie, "Path", FakePath)
    assert images.machine_debian_mirror() == "http://mirror.example/debian"
    files["/etc/apt/sources.list"] = "Types: deb\nURIs: http://other.example/debian/\nSuites: bookworm\n"
    assert images.machine_debian_mirror() == "http://other.example/debian"


def test_the_tiny_guests_scripts_are_the_package_data_files_as_they_are():
    """Each file of images/initramfs/ goes into the tiny image's initramfs byte for byte (and is hashed into
    its recipe through TINY_FILES); none lies there unused."""
    folder = Path(tiny.__file__).with_name("initramfs")
    used = {rel.rsplit("/", 1)[-1]: text for rel, (text, _mode) in tiny.TINY_FILES.items()}
    for path in folder.iterdir():
        assert used.get(path.name) == path.read_text(), path.name
    assert tiny.TINY_FILES["init"][0].startswith("#!/bin/busybox sh\n")
    assert {rel: mode for rel, (_text, mode) in tiny.TINY_FILES.items() if mode == 0o755} == {
        "etc/heartbeat": 0o755, "etc/rc": 0o755, "etc/udhcpc.script": 0o755, "init": 0o755}
