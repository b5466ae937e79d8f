"""F5 (hR review 20:45): compute.pick_image applied the special-image filter (aarch64, UEFI, … : compute.special_boot)
before `avoid`, so once the run judged its plain image unbootable (probe.unbootable / Shared's pair) and the only
other image was special, the filter left the avoided plain image alone and `avoid` fell back on it: the broken
image was booted again by every scenario, even when the special image had just booted beside it as the
tie-breaker. Order now: the images the run found not booting are passed over first, then special ones among the
rest, each step falling back on its input when it would leave nothing. Forged images; no cloud."""
import types

from popek.checks.cloud import compute

from tests.unit.test_probe_console import _img

PLAIN = _img("img-1", "debian-plain", 300 << 20)
UEFI = _img("img-2", "debian-uefi", 400 << 20, {"hw_firmware_type": "uefi"})
ARM = _img("img-3", "cirros-aarch64", 15 << 20, {"architecture": "aarch64"})
OTHER = _img("img-4", "cirros-x86_64", 500 << 20)


def glance(*images):
    return types.SimpleNamespace(image=types.SimpleNamespace(images=lambda: list(images)))


def test_an_avoided_plain_image_gives_way_to_a_special_one():
    assert compute.pick_image(glance(PLAIN, UEFI)).id == "img-1"                  # plain first, as before
    assert compute.pick_image(glance(PLAIN, UEFI), avoid={"img-1": "…"}).id == "img-2"
    assert compute.pick_image(glance(PLAIN, UEFI), cloud_init=True, avoid={"img-1"}).id == "img-2"


def test_a_plain_image_still_comes_before_a_special_one_among_those_not_avoided():
    assert compute.pick_image(glance(PLAIN, ARM, UEFI, OTHER), avoid={"img-1"}).id == "img-4"


def test_every_image_avoided_still_boots_the_smallest_plain_one():
    """Never IGNORÉ « rien à démarrer »: with every image avoided the choice is the one without `avoid`."""
    every = {"img-1", "img-2", "img-3", "img-4"}
    assert compute.pick_image(glance(PLAIN, ARM, UEFI, OTHER), avoid=every).id == "img-1"
    assert compute.pick_image(glance(ARM, UEFI), avoid={"img-3", "img-2"}).id == "img-3"
