"""Any cloud's images (compute.pick_image): an image that asks the host for more than a plain x86 disk is not the
one popek boots while a plain one is there. Measured by hA6 on the embedded cloud, 2026-12-07: a copy of
popek-tiny tagged `architecture=aarch64` (19:56) or `hw_firmware_type=uefi` (19:51), as small as popek-tiny and
sorting first, was picked and C21 failed « No valid host was found » / libvirt « loader attribute 'secure' cannot
be specified when firmware autoselection is enabled », on a cloud whose popek-tiny boots."""
import types

import pytest

from popek.checks.cloud import compute

from tests.unit.test_probe_console import _img

PLAIN = _img("img-9", "popek-tiny", 15 << 20)


def glance(*images):
    return types.SimpleNamespace(image=types.SimpleNamespace(images=lambda: list(images)))


@pytest.mark.parametrize("image, said", [
    (_img("img-1", "aa arm64", 15 << 20, {"architecture": "aarch64"}), "architecture=aarch64"),
    (_img("img-1", "aa uefi", 1 << 20, {"hw_firmware_type": "uefi"}), "hw_firmware_type=uefi"),
    (_img("img-1", "aa sb", 1 << 20, {"os_secure_boot": "required"}), "os_secure_boot=required"),
    (_img("img-1", "aa vmware", 1 << 20, {"hypervisor_type": "vmware"}), "hypervisor_type=vmware"),
    (_img("img-1", "aa gold", 1 << 20, {"trait:CUSTOM_GOLD": "required"}), "trait:CUSTOM_GOLD=required"),
    (_img("img-1", "ipxe.iso", 1 << 20, disk_format="iso"), "disk_format=iso"),
])
def test_an_image_asking_the_host_for_more_is_passed_over_while_a_plain_one_is_there(image, said):
    assert compute.special_boot(image) == [said]
    assert compute.pick_image(glance(image, PLAIN)).id == "img-9"
    assert compute.pick_image(glance(image, PLAIN), cloud_init=True).id == "img-9"


def test_x86_and_qemu_tags_are_plain():
    tagged = _img("img-2", "debian", 1 << 20, {"architecture": "x86_64", "hypervisor_type": "qemu",
                                               "hw_firmware_type": "bios", "trait:CUSTOM_X": "forbidden"})
    assert compute.special_boot(tagged) == []
    assert compute.pick_image(glance(tagged, PLAIN)).id == "img-2"


def test_a_cloud_of_aarch64_images_only_still_boots_the_smallest():
    """Never IGNORÉ « aucune image » on an arm cloud: the choice falls back on every image, as before."""
    arm = [_img(f"img-{n}", f"arm{n}", n << 20, {"architecture": "aarch64"}) for n in (3, 1, 2)]
    assert compute.pick_image(glance(*arm)).id == "img-1"
