"""The Cinder volume driver of the embedded cloud's dataplane: a volume is a sparse file, attached as a loop
block device that nova's libvirt driver hands to the guest as a virtio disk (/dev/vdb).

This module runs INSIDE the cloud's own venv (it imports cinder); popek itself never imports it.
`install.install_drivers()` ships it, beside the ML2 driver, as module `popek_loopvolume`; cinder loads
it by class path (`volume_driver = popek_loopvolume.LoopVolumeDriver`).

Why: Cinder's fake driver answers iSCSI connection info that nothing serves, and libvirt cannot attach it.
This host has no iSCSI target or initiator in its kernel, but it has loop devices, and nova-compute runs on
the same machine as cinder-volume: Cinder's `local` connection type (os-brick's LocalConnector, nova's
LibvirtVolumeDriver) passes a block device path straight to QEMU. The data are real: what a guest writes
on its /dev/vdb lands in the file, and follows the volume to the next instance it is attached to.
"""
import os
import subprocess

from oslo_config import cfg
from oslo_log import log as logging

from cinder import exception
from cinder.volume import driver

LOG = logging.getLogger(__name__)
GIB = 1 << 30


def _losetup(*args: str) -> str:
    run = subprocess.run(["losetup", *args], capture_output=True, text=True)
    if run.returncode != 0:
        raise exception.VolumeBackendAPIException(data=f"losetup {' '.join(args)}: {run.stderr.strip()}")
    return run.stdout.strip()


class LoopVolumeDriver(driver.VolumeDriver):
    """Volumes as sparse files under <state_path>/loop-volumes, exported as loop devices on attach."""

    VERSION = "1.0"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.directory = os.path.join(cfg.CONF.state_path, "loop-volumes")

    # --- setup and stats

    def do_setup(self, context):
        os.makedirs(self.directory, exist_ok=True)

    def check_for_setup_error(self):
        if not os.path.exists("/dev/loop-control"):
            raise exception.VolumeBackendAPIException(data="no /dev/loop-control: loop devices unavailable")

    def _update_volume_stats(self):
        st = os.statvfs(self.directory)
        free = st.f_bavail * st.f_frsize / GIB
        self._stats = {
            "volume_backend_name": self.configuration.safe_get("volume_backend_name") or "loop",
            "vendor_name": "popek", "driver_version": self.VERSION, "storage_protocol": "local",
            "total_capacity_gb": round(st.f_blocks * st.f_frsize / GIB, 2), "free_capacity_gb": round(free, 2),
            "reserved_percentage": 0, "thin_provisioning_support": True, "max_over_subscription_ratio": 20.0,
            "multiattach": False,
        }

    # --- volumes

    def _path(self, volume) -> str:
        return os.path.join(self.directory, f"volume-{volume.id}")

    def _loops(self, path: str) -> list[str]:
        """The loop devices backed by `path` (normally none or one)."""
        out = _losetup("-j", path, "-O", "NAME", "-n")
        return [line.strip() for line in out.splitlines() if line.strip()]

    def create_volume(self, volume):
        with open(self._path(volume), "wb") as f:
            f.truncate(volume.size * GIB)  # sparse: costs no disk until written

    def delete_volume(self, volume):
        path = self._path(volume)
        if os.path.exists(path):
            for dev in self._loops(path):
                _losetup("-d", dev)
            os.unlink(path)

    def extend_volume(self, volume, new_size):
        with open(self._path(volume), "r+b") as f:
            f.truncate(new_size * GIB)
        for dev in self._loops(self._path(volume)):
            _losetup("-c", dev)

    # --- exports: nothing to export, the block device is local to the one compute host

    def ensure_export(self, context, volume):
        pass

    def create_export(self, context, volume, connector):
        pass

    def remove_export(self, context, volume):
        pass

    def initialize_connection(self, volume, connector):
        path = self._path(volume)
        devices = self._loops(path) or [_losetup("-f", "--show", path)]
        LOG.info("volume %s attached as %s", volume.id, devices[0])
        return {"driver_volume_type": "local", "data": {"device_path": devices[0]}}

    def terminate_connection(self, volume, connector, **kwargs):
        path = self._path(volume)
        if os.path.exists(path):
            for dev in self._loops(path):
                _losetup("-d", dev)
