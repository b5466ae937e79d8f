"""checks/localcloud/ovs_conntrack.py: Neutron's `conntrack -D` reaches ovs-vswitchd's own conntrack
(the userspace datapath), on the commands Neutron's openvswitch firewall runs and dump lines recorded on
the embedded cloud (issue #20)."""
import os
import subprocess
import sys

from popek.checks.localcloud import ovs_conntrack as oc

# recorded with `ovs-appctl dpctl/dump-conntrack` on the embedded cloud (a ping -e 4242 that straddled the
# removal and re-creation of the ICMP rule: marked 1, dropped; the other pings passed)
MARKED = ("icmp,orig=(src=198.51.100.1,dst=10.99.7.23,id=4242,type=8,code=0),reply=(src=10.99.7.23,"
          "dst=198.51.100.1,id=4242,type=0,code=0),id=0,zone=2,status=0,mark=1")
PASSED = ("icmp,orig=(src=198.51.100.1,dst=10.99.7.23,id=24280,type=8,code=0),reply=(src=10.99.7.23,"
          "dst=198.51.100.1,id=24280,type=0,code=0),id=0,zone=2,status=0")
OTHER_PORT = ("icmp,orig=(src=198.51.100.1,dst=10.99.7.40,id=4243,type=8,code=0),reply=(src=10.99.7.40,"
              "dst=198.51.100.1,id=4243,type=0,code=0),id=0,zone=2,status=0,mark=1")
TCP = ("tcp,orig=(src=198.51.100.1,dst=10.99.7.23,sport=40022,dport=22),reply=(src=10.99.7.23,dst=198.51.100.1,"
       "sport=22,dport=40022),zone=2,mark=1,protoinfo=(state=ESTABLISHED)")

# what neutron's OvsIpConntrackManager runs for a port after a rule was removed (ip_conntrack.py)
INGRESS = ["-D", "-f", "ipv4", "-m", "1", "-d", "10.99.7.23/32", "-w", "2"]
EGRESS = ["-D", "-f", "ipv4", "-m", "1", "-s", "10.99.7.23/32", "-w", "2"]


def test_neutron_commands_are_read():
    d = oc.parse_deletion(INGRESS)
    assert (d.zone, d.family, d.mark, str(d.dst), d.src) == (2, 4, 1, "10.99.7.23/32", None)
    d = oc.parse_deletion(["-D", "-p", "icmp", "-f", "ipv4", "-d", "10.99.7.23/32", "-w", "2", "-s", "198.51.100.1"])
    assert (d.proto, str(d.src), d.mark) == (1, "198.51.100.1/32", None)


def test_only_zoned_deletions_reach_ovs():
    assert oc.parse_deletion(["-L"]) is None
    assert oc.parse_deletion(["-D", "-d", "10.0.0.1"]) is None  # no zone: a router namespace's kernel table
    assert oc.parse_deletion(["-D", "-w", "2", "--weird", "x"]) is None  # unknown option: left to the kernel
    assert oc.parse_deletion(["-D", "-w"]) is None


def test_the_marked_entry_of_the_port_is_selected_and_nothing_else():
    entries = [oc.parse_entry(line) for line in (MARKED, PASSED, OTHER_PORT, TCP)]
    assert entries[0] == {"proto": "icmp", "zone": 2, "mark": 1,
                          "orig": {"src": "198.51.100.1", "dst": "10.99.7.23", "id": "4242", "type": "8", "code": "0"}}
    chosen = [e for e in entries if oc.selected(oc.parse_deletion(INGRESS), e)]
    assert [e["orig"].get("id") or e["orig"].get("sport") for e in chosen] == ["4242", "40022"]
    assert not [e for e in entries if oc.selected(oc.parse_deletion(EGRESS), e)]  # the port is never the source here
    other_zone = oc.parse_deletion(INGRESS[:-1] + ["3"])
    assert not [e for e in entries if oc.selected(other_zone, e)]
    icmp_only = oc.parse_deletion(["-D", "-p", "1"] + INGRESS[1:])
    assert [e["proto"] for e in entries if oc.selected(icmp_only, e)] == ["icmp"]


def test_flush_tuples():
    assert oc.flush_tuple(oc.parse_entry(MARKED)) == (
        "ct_nw_src=198.51.100.1,ct_nw_dst=10.99.7.23,ct_nw_proto=1,icmp_id=4242,icmp_type=8,icmp_code=0")
    assert oc.flush_tuple(oc.parse_entry(TCP)) == (
        "ct_nw_src=198.51.100.1,ct_nw_dst=10.99.7.23,ct_nw_proto=6,ct_tp_src=40022,ct_tp_dst=22")
    assert oc.parse_entry("garbage") is None


def test_main_runs_the_real_tool_then_flushes_ovs(monkeypatch, tmp_path):
    ctl = tmp_path / "ovs-vswitchd.ctl"
    ctl.write_text("")
    calls = []
    monkeypatch.setattr(oc.subprocess, "call", lambda argv, timeout=None: calls.append(argv) or 1)

    def appctl(argv, **kw):
        calls.append(argv)
        out = "\n".join((MARKED, PASSED, OTHER_PORT)) if "dpctl/dump-conntrack" in argv else ""
        return subprocess.CompletedProcess(argv, 0, out, "")
    monkeypatch.setattr(oc.subprocess, "run", appctl)
    assert oc.main(str(ctl), INGRESS) == 0
    assert calls[0] == [oc.REAL, *INGRESS]
    flushes = [c for c in calls if "dpctl/flush-conntrack" in c]
    assert flushes == [["ovs-appctl", "-t", str(ctl), "dpctl/flush-conntrack", "zone=2",
                        oc.flush_tuple(oc.parse_entry(MARKED))]]
    calls.clear()
    assert oc.main(str(ctl), ["-L"]) == 1 and calls == [[oc.REAL, "-L"]]  # anything else: the real tool alone


def test_install_writes_the_shim_once(tmp_path):
    oc.install(tmp_path, "/cloud/venv/bin/python", "/cloud/ovs/ovs-vswitchd.ctl")
    shim = tmp_path / "conntrack"
    text = shim.read_text()
    assert text.startswith("#!/bin/sh") and 'exec /cloud/venv/bin/python -I -S ' in text
    assert text.rstrip().endswith('ovs_conntrack.py /cloud/ovs/ovs-vswitchd.ctl "$@"') and shim.stat().st_mode & 0o111
    before = shim.stat().st_mtime_ns
    oc.install(tmp_path, "/cloud/venv/bin/python", "/cloud/ovs/ovs-vswitchd.ctl")
    assert shim.stat().st_mtime_ns == before


def test_the_shim_runs_from_a_state_directory_with_a_space(tmp_path):
    root = tmp_path / "my cloud"
    root.mkdir()
    python = root / "python"  # stands in for the venv's Python: prints the arguments it was given
    python.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    python.chmod(0o755)
    oc.install(root, str(python), str(root / "ovs-vswitchd.ctl"))
    ran = subprocess.run([str(root / "conntrack"), "-D", "-w", "2"], capture_output=True, text=True, timeout=10)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["-I", "-S", oc.__file__, str(root / "ovs-vswitchd.ctl"), "-D", "-w", "2"]


def test_a_host_without_the_conntrack_tool_still_gets_the_ovs_flush(monkeypatch, tmp_path):
    """No /usr/sbin/conntrack (or it hangs): one line on stderr, no traceback, the userspace flush still runs."""
    ctl = tmp_path / "ovs-vswitchd.ctl"
    ctl.write_text("")

    def missing(argv, timeout=None):
        raise FileNotFoundError(2, "No such file or directory", argv[0])
    monkeypatch.setattr(oc.subprocess, "call", missing)
    monkeypatch.setattr(oc.subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(
        argv, 0, MARKED if "dpctl/dump-conntrack" in argv else "", ""))
    assert oc.main(str(ctl), INGRESS) == 0


def test_the_shim_is_replaced_whole(tmp_path):
    """Written beside, then renamed over: an agent never runs a half-written shim; idempotent."""
    oc.install(tmp_path, "/usr/bin/python3", "/run/ovs.ctl")
    first = (tmp_path / "conntrack").read_text()
    oc.install(tmp_path, "/usr/bin/python3", "/run/ovs.ctl")
    assert (tmp_path / "conntrack").read_text() == first and os.access(tmp_path / "conntrack", os.X_OK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conntrack"]


def test_the_shim_loads_no_module_it_does_not_need():
    """It runs once per port and removed rule: dataclasses (with inspect) and typing were a quarter of its CPU."""
    probe = (f"import sys; f = {oc.__file__!r}; exec(compile(open(f).read(), f, 'exec'), {{'__name__': 'probe'}}); "
             "print(sorted({'dataclasses', 'typing', 'inspect', 'shlex'} & set(sys.modules)))")
    ran = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=30)
    assert ran.returncode == 0 and ran.stdout.split() == ["[]"], (ran.stdout, ran.stderr)
    assert oc.parse_deletion(INGRESS) == oc.Deletion(zone=2, family=4, mark=1, dst=oc.ipaddress.ip_network("10.99.7.23/32"))
    assert oc.parse_deletion(INGRESS) != oc.parse_deletion(EGRESS)
