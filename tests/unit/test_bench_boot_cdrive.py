"""benchmarks/bench_boot.py's `cdrive` lever: the image's datasource list, config_drive on create, and the
datasource each boot really used (a boot that did not use the variant's datasource is never timed as it)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from popek.checks.localcloud.images.debian import DEBIAN_CLOUD_CFG

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bb():
    spec = importlib.util.spec_from_file_location("bench_boot_under_test", BENCHMARKS / "bench_boot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cdrive_variant_asks_for_a_config_drive_and_others_do_not(bb):
    assert bb.parse_variant("cdrive:4", 5) == {"label": "cdrive", "image": "cdrive", "parts": {"cdrive"},
                                               "levers": {"cdrive"}, "net": None, "runs": 4, "config_drive": True}
    assert bb.parse_variant("fit+cdrive@public", 5)["config_drive"] is True
    assert bb.parse_variant("base:4", 5)["config_drive"] is False
    assert bb.parse_variant("fit+direct", 5)["config_drive"] is False
    assert "cdrive" in bb.LEVERS
    assert bb.parse_variant("base", 5)["levers"] == set()


def test_cdimg_is_the_cdrive_image_booted_without_the_drive(bb):
    v = bb.parse_variant("fit+cdimg:3", 5)
    assert (v["label"], v["image"], v["levers"], v["config_drive"]) == ("fit+cdimg", "fit+cdrive", {"fit", "cdrive"}, False)
    assert v["image"] == bb.parse_variant("fit+cdrive", 5)["image"]   # one upload for both variants


def test_the_recipe_lists_the_datasource_the_lever_replaces(bb):
    # the lever edits the recipe's own line: a recipe that changes it must fail here, not in a timed hold
    assert bb.DS_LIST in DEBIAN_CLOUD_CFG
    cfg = bb.with_config_drive(DEBIAN_CLOUD_CFG)
    assert "datasource_list: [ConfigDrive, OpenStack, None]" in cfg and bb.DS_LIST not in cfg
    assert cfg.replace(bb.DS_LIST_CDRIVE, bb.DS_LIST) == DEBIAN_CLOUD_CFG   # nothing else changed
    with pytest.raises(RuntimeError):
        bb.with_config_drive("datasource_list: [Ec2]\n")


def test_unapplied_sees_a_config_drive_lever_missing_from_the_disk(bb, tmp_path):
    cfg = tmp_path / bb.POPEK_CLOUD_CFG
    mods = tmp_path / "etc/initramfs-tools/modules"
    cfg.parent.mkdir(parents=True)
    mods.parent.mkdir(parents=True)
    cfg.write_text(DEBIAN_CLOUD_CFG)
    mods.write_text("virtio_pci\nvirtio_blk\next4\n")
    assert bb.unapplied(tmp_path, {"cdrive"}) == ["cdrive"]
    cfg.write_text(bb.with_config_drive(DEBIAN_CLOUD_CFG))
    assert bb.unapplied(tmp_path, {"cdrive"}) == ["cdrive"]   # the drive's drivers not in the initramfs list
    mods.write_text("virtio_pci\nvirtio_blk\next4\n" + "".join(f"{m}\n" for m in bb.CDROM_MODULES))
    assert bb.unapplied(tmp_path, {"cdrive"}) == []


@pytest.mark.parametrize("platform,sub", [("configdrive", "config-disk (/dev/sr0)"),
                                          ("openstack", "metadata (http://169.254.169.254)")])
def test_the_login_reads_the_platform_from_instance_data(bb, tmp_path, platform, sub):
    # instance-data.json as cloud-init writes it (sorted keys, indented): the kernel's "platform" in sys_info
    # (seen first on a real guest: Linux-6.12…), the datasource's at the top and in v1
    data = {"_beta_keys": ["v1"], "platform": platform, "subplatform": sub,
            "sys_info": {"platform": "Linux-6.12.117+deb13-cloud-amd64-x86_64-with-glibc2.41"},
            "v1": {"cloud_name": "openstack", "platform": platform, "subplatform": sub}}
    run = tmp_path / "run/cloud-init"
    run.mkdir(parents=True)
    (run / "instance-data.json").write_text(json.dumps(data, indent=1, sort_keys=True))
    cmd = f"echo token; {bb.PLATFORM_CMD.replace('/run/cloud-init', str(run))}; echo 31.20 40.10"
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout
    assert bb.platform_of(out) == platform
    assert bb.subplatform_of(out) == sub
    assert out.split()[-2] == "31.20"   # the uptime is still the login's last line


def test_no_instance_data_is_no_platform(bb, tmp_path):
    cmd = bb.PLATFORM_CMD.replace("/run/cloud-init", str(tmp_path / "absent"))
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout
    assert bb.platform_of(out) is None


def test_a_boot_on_the_wrong_datasource_is_a_problem(bb):
    assert bb.datasource_problem(True, "configdrive") is None
    assert bb.datasource_problem(False, "openstack") is None
    assert "configdrive" in bb.datasource_problem(True, "openstack")
    assert "openstack" in bb.datasource_problem(False, "configdrive")
    assert "unknown" in bb.datasource_problem(True, None)


def test_create_passes_config_drive_only_when_asked(bb):
    calls = []
    compute = SimpleNamespace(create_server=lambda **kw: calls.append(kw) or kw)
    bench = object.__new__(bb.Bench)
    bench.conn = SimpleNamespace(compute=compute)
    bench.ledger = SimpleNamespace(create=lambda kind, purpose, make: make(f"popek-x-{purpose}"))
    bench.flavor, bench.key, bench.sg = SimpleNamespace(id="f"), SimpleNamespace(name="k"), SimpleNamespace(name="g")
    bench.nets = {"private": SimpleNamespace(id="n")}
    image = SimpleNamespace(id="i")
    bench.create(image, "private", "#cloud-config\n", config_drive=True)
    bench.create(image, "private", "#cloud-config\n")
    assert calls[0]["config_drive"] is True and "config_drive" not in calls[1]
    assert calls[0]["user_data"] == calls[1]["user_data"]
