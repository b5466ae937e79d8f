"""Pure logic of the removal of Open vSwitch ports whose Neutron port is gone (dataplane.remove_stale_ports),
on forged `ovs-vsctl` and Neutron listings: which ports are candidates, the two reads apart while an agent
runs, what is deleted and how."""
import json

import pytest

from popek.checks.localcloud import dataplane
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import CloudState

LIVE = "429e322e-22f9-4a9f-ae8d-920c2a9ac4f9"
GONE = "ea8effcf-47a4-4380-ac00-70d000e1ccb3"


def _iface(name, **ext):
    return [name, ["map", [[k.replace("_", "-") if k != "skip_cleanup" else k, v] for k, v in ext.items()]]]


def listing(*rows):
    """`ovs-vsctl --format=json --columns=name,external_ids list Interface`, as Open vSwitch 3.1 prints it."""
    return {"headings": ["name", "external_ids"], "data": list(rows)}


INTERFACES = listing(
    _iface("popek-int"),
    _iface("int-popek-ex"),
    _iface("qr-429e322e-22", attached_mac="fa:16:3e:19:aa:50", iface_id=LIVE, iface_status="active"),
    _iface("qr-ea8effcf-47", attached_mac="fa:16:3e:37:25:4e", iface_id=GONE, iface_status="active"),
    _iface("tapkeepme-00", attached_mac="fa:16:3e:00:00:01", iface_id="11111111-0000-0000-0000-000000000000",
           skip_cleanup="true"),
    _iface("hostport"),  # someone's port without any iface-id
    _iface("qr-elsewhere", iface_id="22222222-0000-0000-0000-000000000000"),  # on a bridge not popek's
)
BRIDGES = {"popek-int": ["int-popek-ex", "qr-429e322e-22", "qr-ea8effcf-47", "tapkeepme-00", "hostport"],
           "popek-ex": ["phy-popek-ex"]}


def test_only_ports_of_popeks_bridges_with_an_iface_id_are_listed():
    ports = dataplane.neutron_ovs_ports(BRIDGES, INTERFACES)
    assert ports == [dataplane.OvsPort("popek-int", "qr-429e322e-22", LIVE),
                     dataplane.OvsPort("popek-int", "qr-ea8effcf-47", GONE)]


def test_a_port_is_stale_when_its_iface_id_is_no_neutron_port():
    ports = dataplane.neutron_ovs_ports(BRIDGES, INTERFACES)
    assert dataplane.stale_ports(ports, {LIVE}) == [dataplane.OvsPort("popek-int", "qr-ea8effcf-47", GONE)]
    assert dataplane.stale_ports(ports, {LIVE, GONE}) == []


def test_a_bond_or_an_unparsable_row_is_not_listed():
    rows = listing(["bond0-a", ["map", [["iface-id", GONE]]]], ["weird", "not-a-map"], [None, ["map", []]])
    assert dataplane.neutron_ovs_ports({"popek-int": ["bond0", "weird"]}, rows) == []


class World:
    """Forged Open vSwitch and Neutron; `meanwhile` changes them while remove_stale_ports waits."""

    def __init__(self, ovs_bridges, interfaces, neutron):
        self.bridges, self.interfaces, self.neutron = ovs_bridges, interfaces, set(neutron)
        self.deleted, self.links_deleted, self.ovs_reads, self.sleeps = [], [], 0, []
        self.links = set()
        self.meanwhile = lambda: None
        self.clock = 1000.0

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.clock += seconds
        self.meanwhile()

    def vsctl(self, state, *args, check=True):
        class P:
            stdout = ""
        p = P()
        if args[0] == "list-ports":
            p.stdout = "\n".join(self.bridges.get(args[1], []))
        elif args[0] == "--format=json":
            self.ovs_reads += 1
            p.stdout = json.dumps(self.interfaces)
        elif args[:2] == ("--if-exists", "del-port"):
            self.deleted.append(args[2:])
            self.bridges[args[2]].remove(args[3])
        else:
            raise AssertionError(args)
        return p


@pytest.fixture
def world(monkeypatch, tmp_path):
    w = World({k: list(v) for k, v in BRIDGES.items()}, INTERFACES, {LIVE})
    monkeypatch.setattr(dataplane, "_vsctl", w.vsctl)
    monkeypatch.setattr(dataplane, "neutron_port_ids", lambda state: set(w.neutron))
    monkeypatch.setattr(dataplane.time, "sleep", w.sleep)
    monkeypatch.setattr(dataplane.time, "monotonic", lambda: w.clock)
    monkeypatch.setattr(dataplane, "_link_exists", lambda name: name in w.links)
    monkeypatch.setattr(dataplane, "_tun_links", lambda: set(w.links))

    def run(argv, **kw):
        assert argv[:3] == ["ip", "link", "delete"]
        w.links_deleted.append(argv[3])
        w.links.discard(argv[3])
    monkeypatch.setattr(dataplane.subprocess, "run", run)
    w.state = CloudState(tmp_path / "cloud")
    return w


def test_without_agents_one_read_removes_the_stale_port_and_its_leftover_device(world):
    world.links = {"qr-ea8effcf-47"}  # in the host's namespace, a tap no vswitchd holds any more
    removed = dataplane.remove_stale_ports(world.state, settle=0)
    assert removed == [dataplane.OvsPort("popek-int", "qr-ea8effcf-47", GONE)]
    assert world.deleted == [("popek-int", "qr-ea8effcf-47")]
    assert world.links_deleted == ["qr-ea8effcf-47"]
    assert world.ovs_reads == 1 and not [s for s in world.sleeps if s >= 1]
    assert "qr-429e322e-22" in world.bridges["popek-int"] and "hostport" in world.bridges["popek-int"]


def test_settle_is_automatic_from_the_agents_pids(world, monkeypatch):
    monkeypatch.setattr(dataplane.svcmod, "read_pid", lambda state, name: 4242 if name == "neutron-l3-agent" else None)
    dataplane.remove_stale_ports(world.state)
    assert world.ovs_reads == 2 and dataplane.STALE_SETTLE in world.sleeps
    monkeypatch.setattr(dataplane.svcmod, "read_pid", lambda state, name: None)
    world.ovs_reads = 0
    assert dataplane.remove_stale_ports(world.state) == []  # already gone
    assert world.ovs_reads == 1


def test_a_port_the_agent_unplugs_meanwhile_is_left_to_it(world):
    def agent_unplugs():
        world.bridges["popek-int"].remove("qr-ea8effcf-47")
    world.meanwhile = agent_unplugs
    assert dataplane.remove_stale_ports(world.state, settle=5) == []
    assert world.deleted == [] and 5 in world.sleeps


def test_a_port_that_reappears_in_neutron_is_kept(world):
    world.meanwhile = lambda: world.neutron.add(GONE)
    assert dataplane.remove_stale_ports(world.state, settle=5) == []
    assert world.deleted == []


def test_nothing_stale_means_no_wait(world):
    world.neutron.add(GONE)
    assert dataplane.remove_stale_ports(world.state, settle=5) == []
    assert world.ovs_reads == 1 and world.sleeps == []


def test_the_up_line_names_what_was_removed_in_french(world):
    lines = []
    dataplane.clean_stale_ports(world.state, lines.append)
    assert len(lines) == 1 and "qr-ea8effcf-47" in lines[0] and "orphelins retirés" in lines[0] and GONE in lines[0]


def test_a_failed_check_says_why_and_removes_nothing(world, monkeypatch):
    def no_db(state):
        raise CloudError("la base de Neutron n'est pas sur MariaDB")
    monkeypatch.setattr(dataplane, "neutron_port_ids", no_db)
    lines = []
    assert dataplane.clean_stale_ports(world.state, lines.append) == []
    assert world.deleted == [] and lines == ["ports Open vSwitch orphelins : vérification impossible "
                                             "(la base de Neutron n'est pas sur MariaDB)"]
