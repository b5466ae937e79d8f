"""compute.pick_flavor: the smallest flavor that fits the image, preferring the vCPUs asked for."""
from types import SimpleNamespace as NS

import pytest

from popek.checks.cloud import compute

MENU = [NS(name="tiny", vcpus=1, ram=512, disk=1), NS(name="small", vcpus=2, ram=2048, disk=10),
        NS(name="medium", vcpus=4, ram=8192, disk=40)]


def _conn(menu):
    return NS(compute=NS(flavors=lambda details=True: list(menu)))


def _image(min_ram=0, min_disk=0, size=2**20):
    return NS(name="img", min_ram=min_ram, min_disk=min_disk, size=size)


def test_the_smallest_flavor_that_fits():
    assert compute.pick_flavor(_conn(MENU), _image()).name == "tiny"
    assert compute.pick_flavor(_conn(MENU), _image(min_ram=1024)).name == "small"
    assert compute.pick_flavor(_conn(MENU), _image(min_disk=20)).name == "medium"


def test_vcpus_asked_for_are_preferred_then_dropped_when_no_flavor_has_them():
    assert compute.pick_flavor(_conn(MENU), _image(), vcpus=2).name == "small"
    assert compute.pick_flavor(_conn(MENU[:1]), _image(), vcpus=2).name == "tiny"


def test_nothing_fits():
    with pytest.raises(LookupError):
        compute.pick_flavor(_conn(MENU), _image(min_ram=10**6))


def _glance(*imgs):
    return NS(image=NS(images=lambda: list(imgs)))


def _img(name, size, container="bare", disk="qcow2", **props):
    return NS(name=name, size=size, status="active", container_format=container, disk_format=disk,
              properties=props)


def test_pick_image_never_takes_another_runs_upload_nor_a_kernel_or_ramdisk():
    chosen = compute.pick_image(_glance(_img("popek-0123abcd-img-1", 10), _img("initrd", 20, "ari", "ari"),
                                        _img("vmlinuz", 30, "aki", "aki"), _img("cirros", 40),
                                        _img("Debian 13", 400)))
    assert chosen.name == "cirros"
    assert compute.pick_image(_glance(_img("popek-tiny", 5), _img("cirros", 40))).name == "popek-tiny"
    with pytest.raises(LookupError):
        compute.pick_image(_glance(_img("popek-0123abcd-img-1", 10)))
