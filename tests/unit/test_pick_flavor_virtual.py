"""compute.pick_flavor sizes the root disk by the image's virtual size when Glance knows it (hF2, 2026-12-07): a
Debian genericcloud qcow2 of ~330 MB holds a 3 GiB disk, and libvirt refuses a 1 GiB flavor at spawn (« Flavor's
disk is too small for requested image »): the server goes ERROR for popek's own choice of flavor."""
from types import SimpleNamespace as NS

from popek.checks.cloud import compute

from test_pick_flavor import MENU, _conn


def test_the_virtual_size_counts():
    image = NS(name="debian-13-genericcloud", min_ram=0, min_disk=0, size=330 * 2**20, virtual_size=3 * 2**30)
    assert compute.pick_flavor(_conn(MENU), image, 512).name == "small"
    # a cloud whose Glance did not compute it (None) or an image without the field: the file size, as before
    assert compute.pick_flavor(_conn(MENU), NS(**{**vars(image), "virtual_size": None}), 512).name == "tiny"
    assert compute.pick_flavor(_conn(MENU), NS(name="x", min_ram=0, min_disk=0, size=2**20), 512).name == "tiny"
    # exactly the flavor's disk fits (the embedded cloud's Debian 13: 1 GiB virtual, tiny's 1 GiB)
    assert compute.pick_flavor(_conn(MENU), NS(**{**vars(image), "virtual_size": 2**30}), 512).name == "tiny"
