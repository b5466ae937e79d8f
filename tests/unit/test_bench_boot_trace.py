"""benchmarks/bench_boot.py's --trace (where init-local's time goes: the guest's cloud-init.log, the frames on its
tap, the cloud's log lines, on one time line) and its `nollmnr` lever. Pure logic on made-up inputs."""
from __future__ import annotations

import datetime
import importlib.util
import socket
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

#: A cloud-init.log cut as TRACE_CMD reads it (the shapes of cloud-init 25.1's lines, times made up).
LOG = """\
2026-12-07 19:28:17,100 - log_util.py[DEBUG]: Cloud-init v. 25.1.4 running 'init-local' at Mon, 07 Dec 2026 19:28:17 +0000. Up 27.03 seconds.
2026-12-07 19:28:17,250 - handlers.py[DEBUG]: start: init-local/search-OpenStackLocal: searching for local data from DataSourceOpenStackLocal
2026-12-07 19:28:17,660 - subp.py[DEBUG]: Running command ['dhcpcd', '--ipv4only', '--waitip', 'ens2'] with allowed return codes [0] (shell=False, capture=True)
2026-12-07 19:28:19,208 - performance.py[DEBUG]: Running ['dhcpcd', '--ipv4only', '--waitip', 'ens2'] took 1.546 seconds
2026-12-07 19:28:19,300 - dhcp.py[DEBUG]: Parsing dhcpcd lease for interface ens2: 'classless_static_routes=169.254.169.254/32 10.0.0.2'
2026-12-07 19:28:19,421 - performance.py[DEBUG]: Running ['ip', '-4', 'route', 'append', '0.0.0.0/0'] took 0.024 seconds
2026-12-07 19:28:22,650 - performance.py[DEBUG]: Resolving URL took 3.225 seconds
2026-12-07 19:28:22,832 - url_helper.py[DEBUG]: [0/1] open 'http://169.254.169.254/openstack' with {} configuration
2026-12-07 19:28:24,400 - url_helper.py[DEBUG]: Read from http://169.254.169.254/latest/meta-data/security-groups (200, 34b) after 1 attempts
2026-12-07 19:28:24,700 - handlers.py[DEBUG]: finish: init-local/search-OpenStackLocal: SUCCESS: found local data from DataSourceOpenStackLocal
2026-12-07 19:28:24,690 - performance.py[DEBUG]: Getting metadata took 7.190 seconds
2026-12-07 19:28:25,312 - handlers.py[DEBUG]: finish: init-local: SUCCESS: searching for local datasources
a continuation line without a time stamp
2026-12-07 19:28:28,556 - log_util.py[DEBUG]: Cloud-init v. 25.1.4 running 'init' at Mon, 07 Dec 2026 19:28:28 +0000. Up 38.55 seconds.
2026-12-07 19:28:28,557 - performance.py[DEBUG]: Waiting to start stage network took 3.228 seconds
"""


@pytest.fixture(scope="module")
def bb():
    spec = importlib.util.spec_from_file_location("bench_boot_trace_under_test", BENCHMARKS / "bench_boot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trace_output_is_split_into_clock_log_and_journal(bb):
    out = "1796671721.25\n51.11 99.0\n@@LOG\nline a\nline b\n@@JOURNAL\n[ 1.0] host x: y\n"
    assert bb.parse_trace(out) == {"guest_wall": 1796671721.25, "guest_uptime": 51.11, "log": "line a\nline b",
                                   "journal": "[ 1.0] host x: y"}


def test_cloudinit_lines_read_the_guest_clock_as_utc_and_skip_unstamped_lines(bb):
    lines = bb.cloudinit_lines(LOG)
    assert len(lines) == 14
    first = datetime.datetime(2026, 12, 7, 19, 28, 17, 100000, tzinfo=datetime.timezone.utc).timestamp()
    assert lines[0][0] == pytest.approx(first)
    assert lines[0][1].startswith("log_util.py: Cloud-init v. 25.1.4 running 'init-local'")


def test_init_local_breakdown_names_the_dhcp_client_the_search_and_the_silences(bb):
    b = bb.init_local_breakdown(bb.cloudinit_lines(LOG), min_gap=1.0)
    assert b["init_local_to_init_s"] == pytest.approx(11.456)
    assert b["init_local_s"] == pytest.approx(8.212)
    assert b["spans"]["datasource search"]["at_s"] == pytest.approx(0.15)
    assert b["spans"]["datasource search"]["s"] == pytest.approx(7.45)
    assert b["spans"]["DHCP client"]["s"] == pytest.approx(1.548)
    # from the first open of the metadata URL (not the lease's route to it) to the last read
    assert b["spans"]["metadata crawl"]["at_s"] == pytest.approx(5.732)
    assert b["spans"]["metadata crawl"]["s"] == pytest.approx(1.568)
    # cloud-init's own timers, the network stage's wait included; commands' timers left out
    assert b["timers"] == {"Resolving URL": 3.225, "Getting metadata": 7.19, "Waiting to start stage network": 3.228}
    gaps = [(g["at_s"], g["s"]) for g in b["gaps"]]
    # the dhcpcd run, the silence before "Resolving URL" (the DNS-redirect probe), the crawl, the wait for networkd
    assert gaps == [(pytest.approx(0.56), pytest.approx(1.548)), (pytest.approx(2.321), pytest.approx(3.229)),
                    (pytest.approx(5.732), pytest.approx(1.568)), (pytest.approx(8.212), pytest.approx(3.244))]
    assert "route" in b["gaps"][1]["after"]
    assert "sd_notify" not in b["gaps"][3]["after"] and "init-local: SUCCESS" in b["gaps"][3]["after"]


def test_init_local_breakdown_without_an_init_local_line_is_empty(bb):
    assert bb.init_local_breakdown(bb.cloudinit_lines("2026-12-07 19:28:17,100 - x.py[DEBUG]: other\n")) == {}


def test_guest_log_is_shifted_onto_the_create_time_line_by_the_stage_line_uptime(bb):
    lines = bb.cloudinit_lines(LOG)
    shift = bb.guest_to_create(lines, kernel_start_s=8.9)
    # init-local's line: uptime 27.03 s, the kernel 8.9 s after create: 35.93 s after create
    assert lines[0][0] + shift == pytest.approx(35.93)
    assert bb.guest_to_create([], 8.9) is None


def _eth(etype: int, payload: bytes) -> bytes:
    return b"\xff" * 6 + b"\xfa\x16\x3e\x00\x00\x01" + etype.to_bytes(2, "big") + payload


def _ipv4(proto: int, src: str, dst: str, l4: bytes) -> bytes:
    return (bytes([0x45, 0]) + (20 + len(l4)).to_bytes(2, "big") + bytes(5) + bytes([proto]) + bytes(2)
            + socket.inet_aton(src) + socket.inet_aton(dst) + l4)


def _udp(sport: int, dport: int, body: bytes) -> bytes:
    return sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + (8 + len(body)).to_bytes(2, "big") + bytes(2) + body


def test_wire_event_names_a_dhcp_discover_with_its_transaction(bb):
    bootp = bytes([1, 1, 6, 0]) + bytes.fromhex("bb22b22c") + bytes(228) + b"\x63\x82\x53\x63" + bytes([53, 1, 1, 255])
    frame = _eth(0x0800, _ipv4(17, "0.0.0.0", "255.255.255.255", _udp(68, 67, bootp)))
    assert bb.wire_event(frame) == "DHCP DISCOVER xid bb22b22c"


def test_wire_event_names_llmnr_arp_and_a_metadata_syn_and_ignores_ssh(bb):
    assert bb.wire_event(_eth(0x0800, _ipv4(17, "10.0.0.5", "224.0.0.252", _udp(40000, 5355, b"q")))) == "LLMNR query"
    arp = bytes(6) + (1).to_bytes(2, "big") + bytes(6) + socket.inet_aton("10.0.0.1") + bytes(6) + socket.inet_aton("10.0.0.5")
    assert bb.wire_event(_eth(0x0806, arp)) == "ARP who-has 10.0.0.5 tell 10.0.0.1"
    syn = (53070).to_bytes(2, "big") + (80).to_bytes(2, "big") + bytes(9) + bytes([0x02]) + bytes(6)
    assert bb.wire_event(_eth(0x0800, _ipv4(6, "10.0.0.5", "169.254.169.254", syn))) == \
        "TCP metadata 53070->169.254.169.254:80 SYN"
    ssh = (22).to_bytes(2, "big") + (50000).to_bytes(2, "big") + bytes(9) + bytes([0x02]) + bytes(6)
    assert bb.wire_event(_eth(0x0800, _ipv4(6, "10.0.0.5", "172.24.4.1", ssh))) is None
    assert bb.wire_event(b"short") is None


def test_host_log_events_keep_the_lines_naming_the_port_inside_the_window(bb, tmp_path):
    t0 = datetime.datetime(2026, 12, 7, 19, 27, 40).timestamp()   # oslo logs: local time, as the parser reads it
    (tmp_path / "neutron-openvswitch-agent.log").write_text(
        "2026-12-07 19:27:44.570 21778 INFO neutron.agent [None req-1 - - - - - -] Configuration for devices up "
        "['c8321f1a-b9c2'] completed.\n"
        "2026-12-07 19:27:44.600 21778 INFO neutron.agent [None req-1 - - - - - -] another port\n"
        "2026-12-07 19:20:00.000 21778 INFO neutron.agent [None req-1 - - - - - -] old c8321f1a-b9c2\n")
    events = bb.host_log_events(tmp_path, ["c8321f1a-b9c2"], t0, t0 + 60)
    assert events == [(pytest.approx(4.57), "neutron-openvswitch-agent: Configuration for devices up "
                                            "['c8321f1a-b9c2'] completed.")]


def test_trace_timeline_merges_host_wire_and_guest_lines_in_time_order(bb):
    t0 = 1796671660.0
    r = {"t0_epoch": t0, "kernel_start_s": 8.9, "host_events": [(4.57, "ovs: port up")],
         "wire": [(t0 + 37.89, "guest: DHCP DISCOVER xid bb22b22c")], "trace": {"log": LOG}}
    rows = bb.trace_timeline(r, min_gap=1.0)
    assert rows[0] == (4.57, "host ovs: port up")
    assert [t for t, _ in rows] == sorted(t for t, _ in rows)
    assert any(what == "wire guest: DHCP DISCOVER xid bb22b22c" for _, what in rows)
    resolving = next(what for _, what in rows if "Resolving URL" in what)
    assert resolving.startswith("guest performance.py: Resolving URL took 3.225 seconds")


def test_nollmnr_is_a_lever_of_its_own_read_back_from_the_disk(bb, tmp_path):
    v = bb.parse_variant("nollmnr:3", 5)
    assert (v["image"], v["levers"], v["runs"], v["config_drive"]) == ("nollmnr", {"nollmnr"}, 3, False)
    assert "nollmnr" in bb.LEVERS
    assert bb.unapplied(tmp_path, {"nollmnr"}) == ["nollmnr"]
    conf = tmp_path / bb.NOLLMNR_CONF
    conf.parent.mkdir(parents=True)
    conf.write_text(bb.NOLLMNR_TEXT)
    assert bb.unapplied(tmp_path, {"nollmnr"}) == []
    assert bb.NOLLMNR_TEXT.splitlines() == ["[Resolve]", "LLMNR=no"]


def test_nodad_lever_writes_a_sysctl_file_without_ipv6_dad(bb, tmp_path):
    assert bb.parse_variant("nollmnr+nodad:2", 5)["levers"] == {"nollmnr", "nodad"}
    assert bb.unapplied(tmp_path, {"nodad"}) == ["nodad"]
    conf = tmp_path / bb.NODAD_CONF
    conf.parent.mkdir(parents=True)
    conf.write_text(bb.NODAD_TEXT)
    assert bb.unapplied(tmp_path, {"nodad"}) == []
    assert "net.ipv6.conf.default.dad_transmits = 0" in bb.NODAD_TEXT.splitlines()


def test_nodelay_lever_is_read_back_from_dhcpcd_conf(bb, tmp_path):
    assert bb.parse_variant("nollmnr+nodad+nodelay:3", 5)["levers"] == {"nollmnr", "nodad", "nodelay"}
    conf = tmp_path / bb.DHCPCD_CONF
    conf.parent.mkdir(parents=True)
    conf.write_text("hostname\nduid\n# nodelay would go here\n")
    assert bb.unapplied(tmp_path, {"nodelay"}) == ["nodelay"]   # a comment naming it is not the option
    conf.write_text(conf.read_text() + "nodelay\n")
    assert bb.unapplied(tmp_path, {"nodelay"}) == []
