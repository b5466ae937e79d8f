"""The embedded cloud for real: catalog, a server to ACTIVE, a volume attached, a Swift object.

The session fixture brings the cloud up when it is not running and leaves it as it found it. The
`down` check stops the shared cloud (and brings it back): it runs only when asked for with
POPEK_CLOUD_DOWN_TEST=1, since other work may be using the cloud at that moment.
"""
import os
import uuid

import pytest

from popek import paths
from popek.checks.localcloud import apt, bootstrap, dataplane, install, lifecycle, services
from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.state import CloudState

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

CATALOG_TYPES = {"identity", "compute", "image", "network", "placement", "object-store"}
VOLUME_TYPES = {"volumev3", "block-storage", "volume"}


def _running(state: CloudState) -> bool:
    mode, rows = lifecycle.status(state)
    return bool(rows) and all(r.ok for r in rows)


def _started(state: CloudState) -> bool:
    """Whether someone started the cloud (any of its services has a process), healthy or not: such a
    cloud is repaired in place by `up` and never stopped by this module (a service that did not answer
    `status` for a moment under load once made the fixture take a running cloud for its own)."""
    _mode, rows = lifecycle.status(state)
    return any(r.pid for r in rows)


@pytest.fixture(scope="session")
def cloud_state():
    state = CloudState(paths.embedded_cloud_dir())
    started_here = not _started(state)
    if not _running(state):
        missing = apt.missing(install.APT_PACKAGES)
        if missing and os.geteuid() != 0:
            pytest.skip(f"paquets {' '.join(missing)} absents et pas root : le cloud embarqué ne peut pas démarrer")
        lifecycle.up(state, dataplane=True, log=lambda line: None)  # starts it, or repairs it in place
    yield state
    if started_here:
        lifecycle.down(state)


@pytest.fixture
def admin(cloud_state):
    return bootstrap.connect(cloud_state, "popek-admin")


@pytest.fixture
def member(cloud_state):
    return bootstrap.connect(cloud_state, "popek")


def _cleanup(fn, *args, **kw):
    """Delete something that may already be gone (tempest's call_and_ignore_notfound_exc)."""
    from openstack import exceptions

    try:
        fn(*args, **kw)
    except exceptions.NotFoundException:
        pass


def test_catalog_lists_every_service_and_each_answers(admin):
    catalog = admin.config.get_service_catalog().catalog
    types = {entry["type"] for entry in catalog}
    assert CATALOG_TYPES <= types, sorted(types)
    assert types & VOLUME_TYPES, sorted(types)
    import requests

    for entry in catalog:
        for ep in entry["endpoints"]:
            if ep["interface"] == "public":
                url = ep["url"].split("/AUTH_")[0]  # swift's URL names a project; the root answers
                assert requests.get(url, timeout=10).status_code < 500, (entry["type"], url)


def test_course_flavors_image_and_networks(member):
    sizes = {f.name: (f.vcpus, f.ram, f.disk) for f in member.compute.flavors()}
    order = [sizes[n] for n in ("tiny", "small", "medium", "large")]
    assert all(a <= b for a, b in zip(order, order[1:])) and order[0] < order[-1], sizes
    assert member.image.find_image("Debian 13") is not None
    public = member.network.find_network("public")
    assert public.is_shared and public.is_router_external
    rules = list(member.network.security_group_rules(
        security_group_id=member.network.find_security_group("default", project_id=member.current_project_id).id))
    assert {r.direction for r in rules} == {"ingress", "egress"}, rules


def _boot(member, name):
    image = member.image.find_image("Debian 13")
    flavor = member.compute.find_flavor("small")
    net = member.network.find_network("public")
    server = member.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id,
                                          networks=[{"uuid": net.id}])
    return member.compute.wait_for_server(server, status="ACTIVE", wait=180, interval=0.5)


def _delete_server(member, server):
    _cleanup(member.compute.delete_server, server)
    member.compute.wait_for_delete(server, wait=180)


def test_course_command_boots_a_server_to_active(member):
    """`openstack server create --flavor small --image 'Debian 13' --net public`, through the SDK."""
    name = f"popek-it-{uuid.uuid4().hex[:8]}"
    server = None
    try:
        server = _boot(member, name)
        assert server.status == "ACTIVE"
        assert "public" in server.addresses, server.addresses
    finally:
        if server is None:
            for s in member.compute.servers(name=name):
                _delete_server(member, s)
        else:
            _delete_server(member, server)


def test_volume_attached_to_a_server(member, cloud_state):
    """Both modes: the fake compute driver records the attachment; with the dataplane, libvirt gives the
    guest the volume's loop device (checks/localcloud/loopvolume.py) and cinder holds it while attached."""
    dataplane_mode = lifecycle.read_mode(cloud_state).get("dataplane")
    name = f"popek-it-{uuid.uuid4().hex[:8]}"
    server = volume = None
    try:
        server = _boot(member, name)
        volume = member.block_storage.create_volume(size=1, name=name)
        volume = member.block_storage.wait_for_status(volume, "available", wait=120, interval=0.5)
        member.compute.create_volume_attachment(server, volume=volume)
        volume = member.block_storage.wait_for_status(volume, "in-use", wait=120, interval=0.5)
        attached = [a["server_id"] for a in volume.attachments]
        assert attached == [server.id], volume.attachments
        if dataplane_mode:
            loops = dataplane.loop_devices(cloud_state)
            assert len(loops) == 1, f"one loop device expected for the attached volume, found {loops}"
        member.compute.delete_volume_attachment(server, volume.id)
        member.block_storage.wait_for_status(volume, "available", wait=120, interval=0.5)
        if dataplane_mode:
            assert dataplane.loop_devices(cloud_state) == [], "the loop device outlived the detachment"
    finally:
        if volume is not None:
            _cleanup(member.block_storage.delete_volume, volume)
        if server is not None:
            _delete_server(member, server)
        if volume is not None:
            member.block_storage.wait_for_delete(volume, wait=120)


def test_swift_put_then_get(member):
    container = f"popek-it-{uuid.uuid4().hex[:8]}"
    data = os.urandom(4096)
    member.object_store.create_container(container)
    try:
        member.object_store.upload_object(container, "objet", data=data)
        assert member.object_store.download_object("objet", container=container) == data
    finally:
        _cleanup(member.object_store.delete_object, "objet", container=container)
        _cleanup(member.object_store.delete_container, container)


def test_application_credentials_can_be_made_again_after_one_is_deleted(member):
    """keystone on SQLite enforces its schema's ON DELETE CASCADE (keystoneapi.py): without it a deleted
    application credential left its role rows, SQLite reused its internal id, and every later creation
    failed with 409 "Duplicate entry" (seen 2026-12-07)."""
    user = member.current_user_id
    made = []
    try:
        for _ in range(2):
            name = f"popek-it-{uuid.uuid4().hex[:8]}"
            made.append(member.identity.create_application_credential(user, name=name))
            member.identity.delete_application_credential(user, made[-1])
    finally:
        for cred in made:
            _cleanup(member.identity.delete_application_credential, user, cred)
    assert len(made) == 2 and made[0].id != made[1].id


@pytest.mark.skipif(os.environ.get("POPEK_CLOUD_DOWN_TEST") != "1",
                    reason="arrêt du cloud partagé non demandé (POPEK_CLOUD_DOWN_TEST=1)")
def test_down_leaves_no_process_then_up_again(cloud_state):
    pids = [services.read_pid(cloud_state, r.name) for r in lifecycle.status(cloud_state)[1]]
    assert lifecycle.down(cloud_state) == []
    assert services.ours(cloud_state) == []
    assert all(p is None or not os.path.exists(f"/proc/{p}") for p in pids)
    try:
        lifecycle.up(cloud_state, dataplane=True, log=lambda line: None)
    except CloudError as exc:
        pytest.fail(f"le cloud ne redémarre pas : {exc}")
    assert _running(cloud_state)
