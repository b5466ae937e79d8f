"""The course's resources after an `up` interrupted in the middle of making them (a first install, Ctrl-C or a
kill during « images et ressources du cours »): the next `up` completes what is missing and duplicates
nothing. Before: a network found was taken as whole (its subnet, router, interface never made), and an image
upload cut short (queued, the recipe already set) stood for the image for good. Fakes of openstacksdk's
proxies: only the logic of bootstrap.networks / bootstrap.images."""
import types

from popek.checks.localcloud import bootstrap


class Net:
    """A fake network proxy: a dict of networks, subnets, routers and router-interface ports."""

    def __init__(self, project="p1"):
        self.project = project
        self.networks, self.subnets_, self.routers_, self.ports_, self.calls = {}, [], [], [], []

    def find_network(self, name, project_id=None):
        return self.networks.get(name)

    def create_network(self, name, **kw):
        self.calls.append(("network", name))
        self.networks[name] = types.SimpleNamespace(id=f"net-{name}", name=name)
        return self.networks[name]

    def subnets(self, network_id):
        return [s for s in self.subnets_ if s.network_id == network_id]

    def create_subnet(self, name, network_id, **kw):
        self.calls.append(("subnet", name))
        self.subnets_.append(types.SimpleNamespace(id=f"sub-{name}", name=name, network_id=network_id))
        return self.subnets_[-1]

    def routers(self, project_id=None, name=None):
        return [r for r in self.routers_ if r.name == name]

    def create_router(self, name, **kw):
        self.calls.append(("router", name))
        self.routers_.append(types.SimpleNamespace(id=f"r{len(self.routers_)}", name=name))
        return self.routers_[-1]

    def add_interface_to_router(self, router, subnet_id):
        self.calls.append(("interface", router.id, subnet_id))
        net = next(s.network_id for s in self.subnets_ if s.id == subnet_id)
        self.ports_.append(types.SimpleNamespace(network_id=net, device_owner="network:router_interface"))

    def ports(self, network_id, device_owner):
        return [p for p in self.ports_ if p.network_id == network_id and p.device_owner == device_owner]

    def security_groups(self, project_id=None):
        return []


def run_networks(monkeypatch, net):
    conn = types.SimpleNamespace(network=net, current_project_id="p1")
    monkeypatch.setattr(bootstrap, "connect", lambda state, cloud="popek-admin", **kw: conn)
    bootstrap.networks(None, conn)


def test_a_fresh_cloud_gets_every_part_once(monkeypatch):
    net = Net()
    run_networks(monkeypatch, net)
    assert [c[0] for c in net.calls] == ["network", "subnet", "network", "subnet", "router", "interface"]
    net.calls.clear()
    run_networks(monkeypatch, net)      # a warm `up`: nothing made again
    assert net.calls == []


def test_networks_left_without_their_subnets_are_completed(monkeypatch):
    net = Net()
    net.create_network("public")        # the interrupted `up` made these two, then stopped
    net.create_network("private")
    net.calls.clear()
    run_networks(monkeypatch, net)
    assert net.calls == [("subnet", "public-subnet"), ("subnet", "private-subnet"), ("router", "router"),
                         ("interface", "r0", "sub-private-subnet")]


def test_a_router_left_without_its_interface_gets_it_and_no_twin(monkeypatch):
    net = Net()
    public = net.create_network("public")
    net.create_subnet("public-subnet", public.id)
    private = net.create_network("private")
    net.create_subnet("private-subnet", private.id)
    net.create_router("router")         # interrupted before add_interface_to_router
    net.calls.clear()
    run_networks(monkeypatch, net)
    assert net.calls == [("interface", "r0", "sub-private-subnet")]


class Images:
    def __init__(self, held):
        self.held, self.calls = held, []

    def images(self):
        return list(self.held)

    def create_image(self, name, **kw):
        self.calls.append(("create", name))

    def delete_image(self, image, ignore_missing=True):
        self.calls.append(("delete", image.id))


def test_an_upload_cut_short_is_uploaded_again_and_the_queued_one_deleted(tmp_path):
    from popek.checks.localcloud.state import CloudState

    spec = types.SimpleNamespace(name="Debian 13", recipe="r1", path=tmp_path / "d.qcow2", disk_format="qcow2",
                                 container_format="bare", properties={})
    recipe = {bootstrap.RECIPE_PROPERTY: "r1"}
    queued = types.SimpleNamespace(id="q", name="Debian 13", status="queued", properties=recipe)
    active = types.SimpleNamespace(id="a", name="Debian 13", status="active", properties=recipe)
    state = CloudState(tmp_path / "cloud")
    state.mkdirs()
    glance = Images([queued])
    bootstrap.images(state, types.SimpleNamespace(image=glance), [spec])
    assert glance.calls == [("create", "Debian 13"), ("delete", "q")]
    glance = Images([active])
    bootstrap.images(state, types.SimpleNamespace(image=glance), [spec])
    assert glance.calls == []
