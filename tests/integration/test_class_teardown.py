"""A class torn down to nothing: a student who made a volume snapshot, a server group, a network behind a
router, a floating IP, a port, a security group, a keypair and a container loses all of it, then the
user and the project go. Counted before and after by the admin's own listings (classroom.residue), not
by the code under test's listers.

Steps: `popek class provision` one student → the student works with their own clouds.yaml → admin
counts → `popek class teardown --yes` → the project and user are gone and every count is zero."""
import uuid

import pytest
import yaml

from popek import paths
from popek.checks.cloud.connection import CloudUnavailable, connect
from popek.checks.lab import classroom

from helpers import run_popek

pytestmark = [pytest.mark.integration, pytest.mark.cloud]
ADMIN = "popek-admin"


@pytest.fixture(scope="module")
def admin():
    try:
        cloud = connect(ADMIN, {}, paths.embedded_clouds_yaml())
    except CloudUnavailable as exc:
        pytest.skip(f"cloud embarqué indisponible (popek cloud up) : {exc}")
    yield cloud.conn
    cloud.conn.close()


def student_work(conn, tag: str) -> dict:
    """What a student makes in the TP and beyond it (the kinds the old teardown left behind)."""
    made = {}
    bs = conn.block_storage
    volume = bs.create_volume(name=f"vol-{tag}", size=1)
    bs.wait_for_status(volume, "available", failures=["error"], interval=1, wait=120)
    snap = bs.create_snapshot(volume_id=volume.id, name=f"snap-{tag}")
    # a driver without snapshots leaves it in "error": it still blocks the volume's deletion
    made["snapshot"] = bs.wait_for_status(snap, "available", failures=["error"], interval=1, wait=120) \
        if _settles(bs, snap) == "available" else bs.get_snapshot(snap.id)
    made["server_group"] = conn.compute.create_server_group(name=f"sg-{tag}", policies=["anti-affinity"])
    made["keypair"] = conn.compute.create_keypair(name=f"key-{tag}")
    net = conn.network.create_network(name=f"net-{tag}")
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.77.0.0/24", name=f"sub-{tag}")
    external = next(iter(conn.network.networks(is_router_external=True)), None)
    router = conn.network.create_router(
        name=f"rt-{tag}", **({"external_gateway_info": {"network_id": external.id}} if external else {}))
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    made["port"] = conn.network.create_port(network_id=net.id, name=f"port-{tag}")
    if external:
        made["floating_ip"] = conn.network.create_ip(floating_network_id=external.id)
    made["security_group"] = conn.network.create_security_group(name=f"web-{tag}")
    try:
        conn.object_store.create_container(name=f"c-{tag}")
        conn.object_store.upload_object(container=f"c-{tag}", name="notes.txt", data=b"tp")
        made["container"] = f"c-{tag}"
    except Exception as exc:        # a cloud without Swift: the rest still counts
        made["container"] = f"pas de Swift : {type(exc).__name__}"
    return made


def _settles(bs, snap) -> str:
    from openstack import utils
    for _ in utils.iterate_timeout(120, "snapshot creation", wait=1):
        status = bs.get_snapshot(snap.id).status
        if status != "creating":
            return status


def test_a_student_with_a_snapshot_and_a_server_group_is_torn_down_to_nothing(admin, tmp_path):
    tag = uuid.uuid4().hex[:6]
    sid = f"td{tag}"
    roster = tmp_path / "roster.csv"
    roster.write_text(f"student_id,nom,prenom,email\n{sid},Dupont,Zoé,\n", encoding="utf-8")
    out = tmp_path / "out"
    try:
        proc = run_popek("class", "provision", str(roster), "--os-cloud", ADMIN, "--out", str(out), "--prefix", "td",
                         cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        entry = yaml.safe_load((out / sid / "clouds.yaml").read_text())["clouds"][sid]
        student = connect(sid, {"OS_CLIENT_CONFIG_FILE": str(out / sid / "clouds.yaml")}, paths.embedded_clouds_yaml())
        project_id, user_id = student.conn.current_project_id, student.conn.current_user_id
        try:
            made = student_work(student.conn, tag)
        finally:
            student.conn.close()
        before = classroom.residue(admin, project_id, user_id)
        print(f"snapshot status: {made['snapshot'].status}; container: {made['container']}")
        print(f"before teardown (admin listings): {before}")
        for kind in ("snapshots", "server_groups", "volumes", "routers", "ports", "keypairs", "networks"):
            assert before[kind] >= 1, (kind, before)

        gone = run_popek("class", "teardown", str(roster), "--os-cloud", ADMIN, "--prefix", "td", "--yes",
                         cwd=tmp_path)
        print(gone.stdout + gone.stderr)
        assert gone.returncode == 0 and "1/1 étudiant(s) supprimé(s)" in gone.stdout, gone.stdout + gone.stderr
        assert entry["auth"]["password"] not in gone.stdout + gone.stderr
        after = classroom.residue(admin, project_id, user_id)
        print(f"after teardown (admin listings): {after}")
        assert not any(after.values()), after
        assert admin.identity.find_project(project_id) is None
        assert admin.identity.find_user(user_id) is None
    finally:
        run_popek("class", "teardown", str(roster), "--os-cloud", ADMIN, "--prefix", "td", "--yes", cwd=tmp_path)
