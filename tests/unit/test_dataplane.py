"""Pure logic of the dataplane hooks: the configuration they lay over the API-only cloud, the guard that
keeps the public network off the addresses the host needs, the process table they add."""
from pathlib import Path

import pytest

from popek.checks.localcloud import config, dataplane, services
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import CloudState


@pytest.fixture
def state(tmp_path):
    st = CloudState(tmp_path / "cloud")
    st.mkdirs()
    return st


def test_overrides_switch_nova_to_libvirt_and_neutron_to_ovs_agents(state, monkeypatch):
    monkeypatch.setattr(dataplane, "kvm_is_hardware", lambda: False)
    cfg = config.merge(config.generate(state), dataplane.config_overrides(state))
    nova = cfg["nova/nova.conf"]
    assert nova["DEFAULT"]["compute_driver"] == "libvirt.LibvirtDriver"
    assert nova["libvirt"]["virt_type"] == "qemu"  # PVM's /dev/kvm is never used
    assert 0 < nova["libvirt"]["tb_cache_size"] < 1024  # QEMU's TCG default is 1 GiB per guest
    assert nova["neutron"]["service_metadata_proxy"] is True
    secret = nova["neutron"]["metadata_proxy_shared_secret"]
    assert secret and cfg["neutron/metadata_agent.ini"]["DEFAULT"]["metadata_proxy_shared_secret"] == secret
    # no sudo here: every privsep context asks its project's fork server (privsep_fork.py), with its config
    for section in ("nova_sys_admin", "vif_plug_ovs_privileged"):
        command = nova[section]["helper_command"].split()
        assert command[:4] == [state.python, "-I", "-S", str(dataplane.PRIVSEP_FORK_SCRIPT)]
        assert command[4] == str(dataplane.privsep_socket(state, "nova")) and "--config-file" in command
    for section in dataplane.NEUTRON_PRIVSEP_SECTIONS:
        assert str(dataplane.privsep_socket(state, "neutron")) in cfg["neutron/neutron.conf"][section]["helper_command"]
    fork_servers = {s.name: s for s in dataplane.services(state) if s.name.startswith("privsep-fork-")}
    assert fork_servers["privsep-fork-neutron"].argv[2:] == ["serve", str(dataplane.privsep_socket(state, "neutron")),
                                                             "neutron.privileged"]
    # before the agents (stage 2) and nova-compute (stage 3) ask for their daemons
    assert fork_servers["privsep-fork-neutron"].stage < 2 and fork_servers["privsep-fork-nova"].stage < 3
    ml2 = cfg["neutron/plugins/ml2/ml2_conf.ini"]
    assert ml2["ml2"]["mechanism_drivers"] == "openvswitch"
    assert ml2["ml2"]["tenant_network_types"] == "local"  # no dummy links here: no VXLAN tunnels
    agent = cfg["neutron/plugins/ml2/openvswitch_agent.ini"]
    assert agent["ovs"]["datapath_type"] == "netdev" and agent["ovs"]["bridge_mappings"] == "public:br-ex"
    assert agent["securitygroup"]["firewall_driver"] == "openvswitch"
    assert cfg["neutron/neutron.conf"]["agent"]["root_helper"] == ""
    for agent_file in ("dhcp_agent.ini", "l3_agent.ini"):
        assert cfg[f"neutron/{agent_file}"]["ovs"]["ovsdb_connection"] == dataplane.ovsdb_socket(state)
    text = config.render("nova/nova.conf", nova)
    assert "[libvirt]" in text and "tb_cache_size = " in text
    # dnsmasq must not drop to `nobody`: it could not read neutron's files under a 0700 home
    assert cfg["neutron/dhcp_agent.ini"]["DEFAULT"]["dnsmasq_config_file"] == str(dataplane.dnsmasq_conf(state))
    assert "user=root" in dataplane.DNSMASQ_CONF.splitlines()
    cinder = cfg["cinder/cinder.conf"]  # volumes a libvirt guest can attach: loop devices, not the fake driver
    assert cinder["DEFAULT"]["enabled_backends"] == "loop"
    assert cinder["loop"]["volume_driver"] == dataplane.LOOP_VOLUME_DRIVER


def test_kvm_only_with_real_hardware_virtualisation(state, monkeypatch):
    monkeypatch.setattr(dataplane, "kvm_is_hardware", lambda: True)
    assert dataplane.config_overrides(state)["nova/nova.conf"]["libvirt"]["virt_type"] == "kvm"


def test_public_cidr_that_swallows_a_registry_is_refused():
    needed = {"pypi.org": "203.0.113.80", "nameserver": "10.255.255.53", "default gateway": "192.0.2.1"}
    with pytest.raises(CloudError, match="pypi.org = 203.0.113.80"):
        dataplane.check_public_cidr("203.0.113.1/24", needed)
    with pytest.raises(CloudError, match="default gateway"):
        dataplane.check_public_cidr("192.0.2.0/30", needed)
    dataplane.check_public_cidr("198.51.100.1/24", needed)  # no clash: no exception


def test_bootstrap_public_network_is_clear_of_this_machine_types_registries():
    from popek.checks.localcloud.bootstrap import PUBLIC_CIDR

    dataplane.check_public_cidr(PUBLIC_CIDR, {"registries": "203.0.113.80", "uplink": "192.0.2.1"})


def test_services_replace_nova_compute_and_add_ovs_libvirt_agents(state):
    table = services.with_extra(services.core_services(state), dataplane.services(state))
    names = [s.name for s in table]
    assert names.count("nova-compute") == 1
    compute = next(s for s in table if s.name == "nova-compute")
    assert compute.env["OVS_RUNDIR"] == str(dataplane.ovs_dir(state)) and compute.stage == 3
    for name in ("ovsdb-server", "ovs-vswitchd", "libvirtd"):
        assert next(s for s in table if s.name == name).stage == 0
    for name in ("neutron-openvswitch-agent", "neutron-dhcp-agent", "neutron-l3-agent", "neutron-metadata-agent",
                 "neutron-rpc-server"):
        svc = next(s for s in table if s.name == name)
        assert svc.argv[0].endswith(name) and Path(svc.argv[2]).name == "neutron.conf"


DOMAIN_XML = """<domain type='qemu'><devices>
    <interface type='ethernet'>
      <mac address='fa:16:3e:00:00:01'/>
      <target dev='tap5adb3aee-21'/>
    </interface>
    <interface type="ethernet"><target dev="tap0123456789a-bc"/></interface>
    <console type='pty'><target type='serial' port='0'/></console>
</devices></domain>"""


def test_the_qemu_hook_is_valid_sh_and_finds_every_guest_tap(state):
    import subprocess

    text = dataplane.qemu_hook_text(state, seconds=1)
    assert subprocess.run(["sh", "-n"], input=text, text=True).returncode == 0
    line = next(l for l in text.splitlines() if l.startswith("taps="))
    out = subprocess.run(["sh", "-c", line + '\nprintf "%s\\n" $taps'], input=DOMAIN_XML, text=True,
                         capture_output=True).stdout.split()
    assert out == ["tap5adb3aee-21", "tap0123456789a-bc"]
    assert str(state.log("tap-repair")) in text


def test_the_qemu_hook_ignores_other_operations(state):
    import subprocess

    for op in ("prepare", "start", "stopped", "release"):
        proc = subprocess.run(["sh", "-s", "dom", op, "begin", "-"], input=dataplane.qemu_hook_text(state, 1),
                              text=True, capture_output=True, timeout=5)
        assert proc.returncode == 0 and proc.stdout == ""


def test_a_machines_own_qemu_hook_is_left_alone(state, tmp_path, monkeypatch):
    hook = tmp_path / "hooks" / "qemu"
    monkeypatch.setattr(dataplane, "QEMU_HOOK", hook)
    assert dataplane._ensure_qemu_hook(state) is True
    assert hook.read_text() == dataplane.qemu_hook_text(state) and hook.stat().st_mode & 0o111
    dataplane._remove_qemu_hook()
    assert not hook.exists()
    hook.write_text("#!/bin/sh\n# the machine's own hook\n")
    assert dataplane._ensure_qemu_hook(state) is False
    dataplane._remove_qemu_hook()
    assert hook.read_text() == "#!/bin/sh\n# the machine's own hook\n"
