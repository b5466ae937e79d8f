"""Any cloud's flavors (compute.pick_flavor): an operator's GPU or dedicated-host flavor, smaller than the rest,
is not the one popek boots while a plain flavor fits. Measured by hA6 on the embedded cloud, 2026-12-07 19:29:
a private flavor `resources:VGPU=1` of 1 vCPU / 256 MiB granted to a fresh project was picked and C21 failed
« No valid host was found » (15 s), on a cloud whose `tiny` boots."""
from types import SimpleNamespace as NS

from popek.checks.cloud import compute

from test_pick_flavor import MENU, _conn, _image


def gpu(name="g1.gpu", vcpus=1, ram=256, specs=None):
    return NS(name=name, vcpus=vcpus, ram=ram, disk=1, extra_specs=specs or {"resources:VGPU": "1"})


def test_a_flavor_asking_the_scheduler_for_a_device_is_passed_over_while_a_plain_one_fits():
    assert compute.pick_flavor(_conn([gpu(), *MENU]), _image()).name == "tiny"
    for specs in ({"trait:CUSTOM_GOLD": "required"}, {"pci_passthrough:alias": "a1:1"}, {"hw:cpu_policy": "dedicated"},
                  {"resources1:CUSTOM_BAREMETAL": "1"}, {"aggregate_instance_extra_specs:ssd": "true"},
                  {"hw:mem_page_size": "1GB"}):
        assert compute.pick_flavor(_conn([gpu(specs=specs), *MENU]), _image()).name == "tiny", specs


def test_a_plain_flavor_with_fewer_vcpus_beats_a_gpu_one_with_enough():
    menu = [NS(name="tiny", vcpus=1, ram=512, disk=1), gpu("g2.gpu", vcpus=2, ram=1024)]
    assert compute.pick_flavor(_conn(menu), _image(), vcpus=2).name == "tiny"


def test_specs_that_ask_the_scheduler_nothing_keep_the_smallest():
    quiet = gpu("q1.small", specs={"quota:disk_read_iops_sec": "500", "hw_rng:allowed": "true", "hw:cpu_sockets": "1"})
    assert compute.scheduling_specs(quiet) == []
    assert compute.pick_flavor(_conn([quiet, *MENU]), _image()).name == "q1.small"


def test_only_gpu_flavors_fit_then_the_smallest_of_them_is_still_taken():
    """Never IGNORÉ « aucun gabarit » on a cloud whose flavors all ask for something: its scenario meets the
    cloud's own answer (a NoValidHost there is the cloud's to explain)."""
    assert compute.pick_flavor(_conn([gpu("g2", ram=512), gpu("g1")]), _image()).name == "g1"
