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
    # the agents and nova-compute run their privsep contexts in-process, no daemon (privsep_inproc.py)
    table = {s.name: s for s in dataplane.services(state)}
    launcher = [state.python, "-P", str(dataplane.PRIVSEP_INPROC_SCRIPT)]
    for name in ("neutron-openvswitch-agent", "neutron-dhcp-agent"):
        assert table[name].argv[:4] == [*launcher, state.bin(name)] and "--config-file" in table[name].argv
    assert table["neutron-l3-agent"].argv[:5] == [*launcher, str(dataplane.L3_GUARD_SCRIPT),
                                                  state.bin("neutron-l3-agent")]
    assert table["nova-compute"].argv[:4] == [*launcher, str(services.NOVA_COMPUTE_SCRIPT)]
    assert not [n for n in table if n.startswith("privsep")]
    # no sudo here: a context of any other process execs the venv's own helper, with its config
    for section in ("nova_sys_admin", "vif_plug_ovs_privileged"):
        assert nova[section]["helper_command"].split()[:2] == [state.bin("privsep-helper"), "--config-file"]
    for section in dataplane.NEUTRON_PRIVSEP_SECTIONS:
        assert cfg["neutron/neutron.conf"][section]["helper_command"].startswith(state.bin("privsep-helper") + " ")
    ml2 = cfg["neutron/plugins/ml2/ml2_conf.ini"]
    assert ml2["ml2"]["mechanism_drivers"] == "openvswitch"
    assert ml2["ml2"]["tenant_network_types"] == "local"  # no dummy links here: no VXLAN tunnels
    agent = cfg["neutron/plugins/ml2/openvswitch_agent.ini"]
    assert agent["ovs"]["datapath_type"] == "netdev" and agent["ovs"]["bridge_mappings"] == "public:popek-ex"
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
        # the agents with privileged calls behind privsep_inproc.py (python -P script), the L3 one also l3_guard.py
        skip = {"neutron-l3-agent": 4, "neutron-openvswitch-agent": 3, "neutron-dhcp-agent": 3}.get(name, 0)
        argv = svc.argv[skip:]
        assert argv[0].endswith(name) and Path(argv[2]).name == "neutron.conf"
    l3 = next(s for s in table if s.name == "neutron-l3-agent")
    # -P: the script's folder (popek's checks/localcloud: config.py, state.py…) is not on the agent's sys.path
    assert l3.argv[:4] == [state.python, "-P", str(dataplane.PRIVSEP_INPROC_SCRIPT), str(dataplane.L3_GUARD_SCRIPT)]
    assert dataplane.L3_GUARD_SCRIPT.is_file() and dataplane.PRIVSEP_INPROC_SCRIPT.is_file()


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
    out = subprocess.run(["sh", "-c", 'xml=$(cat)\n' + line + '\nprintf "%s\\n" $taps'], input=DOMAIN_XML, text=True,
                         capture_output=True).stdout.split()
    assert out == ["tap5adb3aee-21", "tap0123456789a-bc"]
    assert str(state.log("tap-repair")) in text


def _autogroup_nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/autogroup").read_text().split()[-1])


@pytest.mark.parametrize("vcpus, boosted", [(2, True), (1, False)])
def test_the_qemu_hook_boots_a_multi_vcpu_guest_at_a_higher_priority_then_gives_it_back(state, vcpus, boosted):
    """The hook, run as libvirt runs it at a guest's start, on a real process standing for that guest's QEMU
    (its own session, so its own scheduler autogroup; its command line names the domain as libvirt's -name
    does, its pid in libvirt's pid file): a guest of 2 vCPUs gets BOOST_NICE, then its nice back after the
    boost; a 1-vCPU guest is left as it was."""
    import os
    import subprocess
    import sys
    import time

    if not Path("/proc/self/autogroup").exists():
        pytest.skip("no scheduler autogroups in this kernel")
    qemu = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "guest=instance-dom,debug-threads=on"],
                            start_new_session=True)
    try:
        pids = dataplane.libvirt_dir(state, "run") / "qemu"
        pids.mkdir(parents=True)
        (pids / "instance-dom.pid").write_text(f"{qemu.pid}\n")
        hook = state.root / "qemu-hook"
        hook.write_text(dataplane.qemu_hook_text(state, 1, boost=2))
        xml = DOMAIN_XML.replace("<devices>", f"<vcpu placement='static'>{vcpus}</vcpu><devices>")
        before = _autogroup_nice(qemu.pid)
        subprocess.run(["sh", str(hook), "instance-dom", "started", "begin", "-"], input=xml, text=True, timeout=10,
                       check=True, capture_output=True)
        if boosted and os.geteuid() != 0:
            pytest.skip("raising a priority needs CAP_SYS_NICE")
        assert _autogroup_nice(qemu.pid) == (dataplane.BOOST_NICE if boosted else before)
        time.sleep(3 if boosted else 0)
        assert _autogroup_nice(qemu.pid) == before  # the boost is over: the nice it had
    finally:
        qemu.kill()
        qemu.wait()


def test_the_qemu_hook_ignores_other_operations(state):
    import subprocess

    for op in ("start", "stopped", "migrate"):     # prepare and release: the fence's set (test_fence_taps.py)
        proc = subprocess.run(["sh", "-s", "dom", op, "begin", "-"], input=dataplane.qemu_hook_text(state, 1),
                              text=True, capture_output=True, timeout=5)
        assert proc.returncode == 0 and proc.stdout == ""


def test_nova_reaches_popeks_own_libvirtd_in_its_own_mount_namespace(state):
    cfg = dataplane.config_overrides(state)["nova/nova.conf"]
    sock = dataplane.libvirt_socket(state)
    assert cfg["libvirt"]["connection_uri"] == f"qemu+unix:///system?socket={sock}"
    assert str(sock).startswith(str(state.root) + "/")  # never the host's /run/libvirt/libvirt-sock
    assert cfg["neutron"]["ovs_bridge"] == dataplane.INT_BRIDGE
    libvirtd = next(s for s in dataplane.services(state) if s.name == "libvirtd")
    prefix = dataplane.nothp_prefix(state)
    assert libvirtd.argv[:len(prefix) + 3] == [*prefix, "/usr/bin/unshare", "--mount", "--propagation"]
    assert libvirtd.argv[-1] == str(dataplane.libvirtd_script(state)) and libvirtd.health == f"unix://{sock}"
    script = dataplane.libvirtd_script_text(state, own_passwd=False)
    for key, target in dataplane.LIBVIRT_DIRS.items():
        assert f"mount --bind '{dataplane.libvirt_dir(state, key)}' '{target}'" in script
    assert "/etc/passwd" not in script and script.splitlines()[-1].startswith("exec /usr/sbin/libvirtd")
    assert "mount --bind '%s' '/etc/passwd'" % dataplane.libvirt_dir(state, "passwd") in \
        dataplane.libvirtd_script_text(state, own_passwd=True)
    import subprocess

    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0


def test_a_cloud_of_an_older_popek_is_still_answered_on_its_libvirtd_socket(state):
    import json

    state.pidfile("libvirtd").write_text(json.dumps({"pid": 1, "start": "0", "argv": ["/usr/sbin/libvirtd", "-x"]}))
    libvirtd = next(s for s in dataplane.services(state) if s.name == "libvirtd")
    assert libvirtd.health == "unix:///run/libvirt/libvirt-sock"


def test_libvirt_tree_is_popeks_and_the_mount_points_it_made_are_recorded(state, tmp_path, monkeypatch):
    host = tmp_path / "host"
    (host / "etc/libvirt").mkdir(parents=True)
    dirs = {"etc": str(host / "etc/libvirt"), "log": str(host / "var/log/libvirt")}
    monkeypatch.setattr(dataplane, "LIBVIRT_DIRS", dirs)
    dataplane._libvirt_tree(state)
    assert (dataplane.libvirt_dir(state, "etc") / "qemu.conf").read_text() == dataplane.QEMU_CONF_TEXT
    hook = dataplane.qemu_hook_path(state)
    assert hook.read_text() == dataplane.qemu_hook_text(state) and hook.stat().st_mode & 0o111
    assert list((host / "etc/libvirt").iterdir()) == []  # the host's own: nothing written there
    assert state.host_record.names("dir") == [str(host / "var"), str(host / "var/log"), str(host / "var/log/libvirt")]
    dataplane.remove_recorded_dirs(state)
    assert not (host / "var").exists() and (host / "etc/libvirt").is_dir() and state.host_record.names("dir") == []


def test_a_mount_point_that_is_no_longer_empty_is_kept(state, tmp_path):
    d = tmp_path / "made"
    state.host_record.add("dir", str(d))
    d.mkdir()
    (d / "someone's").write_text("x")
    dataplane.remove_recorded_dirs(state)
    assert d.is_dir() and state.host_record.names("dir") == [str(d)]


def test_what_an_older_popek_wrote_to_the_hosts_libvirt_is_given_back(tmp_path, monkeypatch):
    conf, hook = tmp_path / "qemu.conf", tmp_path / "hooks" / "qemu"
    monkeypatch.setattr(dataplane, "LEGACY_QEMU_CONF", conf)
    monkeypatch.setattr(dataplane, "LEGACY_QEMU_HOOK", hook)
    hook.parent.mkdir()
    conf.write_text(dataplane.LEGACY_QEMU_CONF_TEXT)  # popek made it: there was none
    hook.write_text(f"#!/bin/sh\n{dataplane.QEMU_HOOK_MARK}\n")
    dataplane._forget_legacy_host_setup()
    assert not conf.exists() and not hook.exists()
    conf.write_text(dataplane.LEGACY_QEMU_CONF_TEXT)  # popek kept the host's as .before-popek
    conf.with_suffix(".conf.before-popek").write_text("user = 'qemu'\n")
    dataplane._forget_legacy_host_setup()
    assert conf.read_text() == "user = 'qemu'\n" and not conf.with_suffix(".conf.before-popek").exists()
    hook.write_text("#!/bin/sh\n# the machine's own hook\n")
    dataplane._forget_legacy_host_setup()  # the host's own files: untouched
    assert conf.read_text() == "user = 'qemu'\n" and hook.read_text() == "#!/bin/sh\n# the machine's own hook\n"


def test_a_host_link_with_one_of_popeks_names_is_refused_by_name(state, monkeypatch):
    monkeypatch.setattr(dataplane, "_link_exists", lambda name: name in ("popek-ex", "ovs-netdev"))
    with pytest.raises(CloudError, match="popek-ex, ovs-netdev"):
        dataplane.check_link_names(state)
    for name in ("popek-ex", "ovs-netdev"):  # popek's own, from a run that did not end with `down`
        state.host_record.add("link", name)
    dataplane.check_link_names(state)


def test_only_this_clouds_links_namespaces_and_guests_are_its_own(state, monkeypatch):
    import subprocess
    import sys

    state.host_record.add("link", "popek-int")
    monkeypatch.setattr(dataplane, "_tun_links", lambda: {"tap0123abcd-ef", "qr-11111111-22", "tapdeadbeef-00", "popek-int"})
    assert dataplane.our_links(state, {"tap0123abcd-ef", "qr-11111111-22", "int-popek-ex"}) == \
        ["popek-int", "qr-11111111-22", "tap0123abcd-ef"]  # tapdeadbeef-00 is the host's
    net, router = "12db321a-3376-4f4f-a854-15eb5006010f", "5874f578-cf11-4bd0-8811-94517fe66369"
    (state.data("neutron") / "dhcp" / net).mkdir(parents=True)
    (state.data("neutron") / "external" / "pids").mkdir(parents=True)
    (state.data("neutron") / "external" / "pids" / f"{router}.pid.haproxy").write_text("1")
    assert dataplane.neutron_ids(state) == {net, router}
    fake = [sys.executable, "-c", "import time; time.sleep(30)"]
    ours = subprocess.Popen(["qemu-system-x86_64", *fake[1:], f"file={state.root}/data/nova/instances/x/disk"],
                            executable=sys.executable)
    hosts = subprocess.Popen(["qemu-system-x86_64", *fake[1:], "file=/var/lib/libvirt/images/vm.qcow2"],
                             executable=sys.executable)
    try:
        import time

        time.sleep(0.2)
        pids = dataplane.our_qemu_pids(state)
        assert ours.pid in pids and hosts.pid not in pids
    finally:
        ours.kill()
        hosts.kill()
