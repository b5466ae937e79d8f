"""One-time setup of the embedded cloud: databases, identity, catalog, and the course's resources.

Each step leaves a marker (`state.marker(step)`) once it succeeded, so a warm `up` skips it. The
database steps run the services' own tools in the cloud venv; the API steps use openstacksdk over
HTTP with the admin credentials of clouds.yaml, like any client would.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from popek.checks.localcloud.errors import CloudError
from popek.checks.localcloud.services import base_env
from popek.checks.localcloud.state import ADMIN_PROJECT, HOST, MEMBER_PROJECT, MEMBER_USER, REGION, CloudState

SERVICE_USERS = ("glance", "placement", "nova", "neutron", "cinder", "swift")
#: (type, name, URL path) of each catalog entry besides identity (keystone-manage bootstrap makes that one).
CATALOG = (
    ("image", "glance", "glance", ""),
    ("placement", "placement", "placement", ""),
    ("compute", "nova", "nova", "/v2.1"),
    ("network", "neutron", "neutron", ""),
    ("volumev3", "cinderv3", "cinder", "/v3"),
    ("object-store", "swift", "swift", "/v1/AUTH_%(project_id)s"),
)
#: The course's menu: bigger costs more (name, vCPU, RAM MiB, disk GiB). `small`, the course's flavor for
#: Debian 13, has two vCPUs: QEMU's multi-threaded TCG then uses both host cores, the biggest lever on a
#: cloud-init first boot (../shared/research/dataplane.md: 42 s with two, 59-66 s with one, bare QEMU;
#: through nova here, create -> SSH 70 s with two).
FLAVORS = (("tiny", 1, 512, 1), ("small", 2, 2048, 10), ("medium", 4, 8192, 40), ("large", 8, 16384, 80))
# Not 203.0.113.0/24 (TEST-NET-3): on this machine type the package registries (apt, PyPI, npm) resolve to
# 203.0.113.80, and the dataplane puts the public gateway address on the host (br-ex): that route would
# cut the host off its registries. TEST-NET-2 is free here; dataplane.prepare() checks it stays so.
PUBLIC_CIDR, PUBLIC_GATEWAY, PUBLIC_POOL = "198.51.100.0/24", "198.51.100.1", ("198.51.100.10", "198.51.100.250")
PRIVATE_CIDR = "10.0.0.0/24"


def run(state: CloudState, argv: list[str], step: str, env: dict | None = None, input: str | None = None) -> None:
    """Run one setup command of the cloud venv, its output appended to log/setup-<step>.log (mode 0600;
    the command line is written redacted, though no password is passed on one)."""
    from popek.checks.secrets import REDACT

    log = state.log(f"setup-{step}")
    log.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(f"\n--- popek: {REDACT(' '.join(argv))}\n".encode())
        out.flush()
        rc = subprocess.run(argv, env=base_env(state) | (env or {}), stdout=out, stderr=subprocess.STDOUT,
                            cwd=str(state.root), input=input.encode() if input else None,
                            stdin=None if input else subprocess.DEVNULL).returncode
    if rc != 0:
        raise CloudError(f"étape {step} en échec (code {rc}) ; voir {log}")


def once(state: CloudState, step: str, fn, *args) -> bool:
    """Run `fn(*args)` unless step `step` already succeeded; True when it ran."""
    marker = state.marker(step)
    if marker.exists():
        return False
    fn(*args)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return True


# --- before any process starts -------------------------------------------------------------------

def init_mariadb(state: CloudState) -> None:
    """A private MariaDB data directory (socket only, no TCP), root authenticated by its unix user."""
    import pwd

    state.data("mariadb").mkdir(parents=True, exist_ok=True)
    user = pwd.getpwuid(os.geteuid()).pw_name
    run(state, ["/usr/bin/mariadb-install-db", f"--defaults-file={state.etc('mariadb') / 'my.cnf'}",
                f"--user={user}", f"--auth-root-socket-user={user}", "--skip-test-db"], "mariadb")


def init_rabbitmq(state: CloudState) -> None:
    """RabbitMQ's files under the state directory: no plugins, a small config, and a fresh node.

    The node's database is wiped before each start: every queue of OpenStack's RPC is transient, and a
    fresh node creates the configured default user and vhost (ours, with this install's password,
    instead of guest), so that any other cloud started on this machine cannot consume our topics.
    """
    from popek.checks.localcloud.state import RABBIT_USER, RABBIT_VHOST

    from popek.checks.localcloud.services import read_pid

    if read_pid(state, "rabbitmq") is None:  # never under a running node
        shutil.rmtree(state.data("rabbitmq") / "mnesia", ignore_errors=True)
    state.data("rabbitmq").mkdir(parents=True, exist_ok=True)
    (state.data("rabbitmq") / "log").mkdir(exist_ok=True)
    state.etc("rabbitmq").mkdir(parents=True, exist_ok=True)
    (state.etc("rabbitmq") / "enabled_plugins").write_text("[].\n")
    _write_private(state.etc("rabbitmq") / "rabbitmq.conf",
                   f"default_user = {RABBIT_USER}\ndefault_pass = {state.passwords()['rabbitmq']}\n"
                   f"default_vhost = {RABBIT_VHOST}\ndisk_free_limit.absolute = 50MB\n")


def keystone_db(state: CloudState) -> None:
    conf = ["--config-file", str(state.etc("keystone") / "keystone.conf")]
    manage = state.bin("keystone-manage")
    user = ["--keystone-user", str(os.geteuid()), "--keystone-group", str(os.getegid())]
    run(state, [manage, *conf, "db_sync"], "keystone")
    run(state, [manage, *conf, "fernet_setup", *user], "keystone")
    run(state, [manage, *conf, "credential_setup", *user], "keystone")
    # The password goes through the environment, not argv (visible to every `ps`).
    run(state, [manage, *conf, "bootstrap", "--bootstrap-username", "admin", "--bootstrap-project-name", ADMIN_PROJECT,
                "--bootstrap-admin-url", state.url("keystone") + "/v3",
                "--bootstrap-internal-url", state.url("keystone") + "/v3",
                "--bootstrap-public-url", state.url("keystone") + "/v3", "--bootstrap-region-id", REGION],
        "keystone", env={"OS_BOOTSTRAP_PASSWORD": state.passwords()["admin"]})


def glance_db(state: CloudState) -> None:
    run(state, [state.bin("glance-manage"), "--config-file", str(state.etc("glance") / "glance-api.conf"), "db_sync"],
        "glance")


def placement_db(state: CloudState) -> None:
    run(state, [state.bin("placement-manage"), "--config-file", str(state.etc("placement") / "placement.conf"),
                "db", "sync"], "placement")


def neutron_db(state: CloudState) -> None:
    """Neutron's schema on sqlite: create_all + stamp (`upgrade head` needs ALTER, pitfall 4)."""
    db = state.data("neutron") / "neutron.db"
    script = ("import sys, sqlalchemy\nfrom neutron.db.migration.models import head\n"
              "head.get_metadata().create_all(sqlalchemy.create_engine(sys.argv[1]))\n")
    run(state, [state.python, "-c", script, f"sqlite:///{db}"], "neutron")
    run(state, [state.bin("neutron-db-manage"), "--config-file", str(state.etc("neutron") / "neutron.conf"),
                "--config-file", str(state.etc("neutron") / "plugins/ml2/ml2_conf.ini"), "stamp", "heads"], "neutron")


def neutron_connection(state: CloudState) -> str:
    """The database URL written in neutron.conf (sqlite in API-only mode; MariaDB with the dataplane)."""
    import configparser

    conf = configparser.ConfigParser(interpolation=None)
    conf.read(state.etc("neutron") / "neutron.conf")
    return conf.get("database", "connection", fallback="")


def mariadb_database(state: CloudState, name: str) -> None:
    """Database `name` on the cloud's MariaDB, for its account `nova` (socket only, this cloud's own server)."""
    pw = state.passwords()["mariadb_nova"].replace("'", "''")
    run(state, ["/usr/bin/mariadb", f"--defaults-file={state.etc('mariadb') / 'my.cnf'}", "-uroot"], name,
        input=f"CREATE DATABASE IF NOT EXISTS {name}; CREATE USER IF NOT EXISTS 'nova'@'localhost' IDENTIFIED BY "
              f"'{pw}'; GRANT ALL PRIVILEGES ON {name}.* TO 'nova'@'localhost'; FLUSH PRIVILEGES;\n")


def neutron_db_mariadb(state: CloudState) -> None:
    """Neutron's schema on MariaDB (dataplane mode: the agents' RPC writes beside the API's lock sqlite,
    "database is locked"). A real `upgrade heads` there, default security-group templates included.
    Uses the MariaDB account of nova (socket only, this cloud's own server)."""
    mariadb_database(state, "neutron")
    run(state, [state.bin("neutron-db-manage"), "--config-file", str(state.etc("neutron") / "neutron.conf"),
                "--config-file", str(state.etc("neutron") / "plugins/ml2/ml2_conf.ini"), "upgrade", "heads"], "neutron")


def cinder_db(state: CloudState) -> None:
    """Cinder's schema on MariaDB: on sqlite, the API's quota reservations and cinder-volume's updates
    collided under parallel runs ("database is locked", HTTP 500 on volume create)."""
    mariadb_database(state, "cinder")
    run(state, [state.bin("cinder-manage"), "--config-file", str(state.etc("cinder") / "cinder.conf"), "db", "sync"],
        "cinder")


def nova_db(state: CloudState) -> None:
    """MariaDB databases and account for nova, then nova's schemas and its two cells."""
    pw = state.passwords()["mariadb_nova"].replace("'", "''")
    sql = ("CREATE DATABASE IF NOT EXISTS nova_api; CREATE DATABASE IF NOT EXISTS nova; "
           "CREATE DATABASE IF NOT EXISTS nova_cell0; "
           f"CREATE USER IF NOT EXISTS 'nova'@'localhost' IDENTIFIED BY '{pw}'; "
           "GRANT ALL PRIVILEGES ON nova_api.* TO 'nova'@'localhost'; "
           "GRANT ALL PRIVILEGES ON nova.* TO 'nova'@'localhost'; "
           "GRANT ALL PRIVILEGES ON nova_cell0.* TO 'nova'@'localhost'; FLUSH PRIVILEGES;\n")
    run(state, ["/usr/bin/mariadb", f"--defaults-file={state.etc('mariadb') / 'my.cnf'}", "-uroot"], "nova", input=sql)
    manage = [state.bin("nova-manage"), "--config-file", str(state.etc("nova") / "nova.conf")]
    run(state, [*manage, "api_db", "sync"], "nova")
    # No --database_connection (its URL holds the password: every `ps` and the setup log would show it):
    # nova-manage derives cell0's from nova.conf's [database] connection, `nova` -> `nova_cell0`.
    run(state, [*manage, "cell_v2", "map_cell0"], "nova")
    run(state, [*manage, "cell_v2", "create_cell", "--name", "cell1"], "nova")
    run(state, [*manage, "db", "sync"], "nova")


def swift_rings(state: CloudState) -> None:
    """One-replica rings of one device each, on 127.0.0.1 (account, container, object)."""
    from popek.checks.localcloud.state import PORTS

    (state.data("swift") / "d1").mkdir(parents=True, exist_ok=True)
    builder = state.bin("swift-ring-builder")
    for kind in ("account", "container", "object"):
        path = str(state.etc("swift") / f"{kind}.builder")
        run(state, [builder, path, "create", "8", "1", "1"], "swift")
        run(state, [builder, path, "add", f"r1z1-{HOST}:{PORTS['swift-' + kind]}/d1", "1"], "swift")
        run(state, [builder, path, "rebalance"], "swift")


def databases(state: CloudState) -> None:
    """Every schema, two at a time (the machine has two cores); nova needs MariaDB running."""
    steps = {"db-keystone": keystone_db, "db-glance": glance_db, "db-placement": placement_db,
             "db-neutron": neutron_db, "db-cinder-mariadb": cinder_db, "db-nova": nova_db, "swift-rings": swift_rings}
    if neutron_connection(state).startswith("mysql"):
        del steps["db-neutron"]
        steps["db-neutron-mariadb"] = neutron_db_mariadb
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(once, state, name, fn, state) for name, fn in steps.items()]
        for f in futures:
            f.result()


# --- client side ---------------------------------------------------------------------------------

def write_client_config(state: CloudState) -> None:
    """clouds.yaml with `popek` (member) and `popek-admin`, and an openrc beside it for each (0600)."""
    pw = state.passwords()
    entries = {"popek": (MEMBER_USER, MEMBER_PROJECT, pw["member"]), "popek-admin": ("admin", ADMIN_PROJECT, pw["admin"])}
    clouds = {}
    for cloud, (user, project, password) in entries.items():
        clouds[cloud] = {"auth": {"auth_url": state.url("keystone") + "/v3", "username": user, "password": password,
                                  "project_name": project, "user_domain_name": "Default",
                                  "project_domain_name": "Default"},
                         "region_name": REGION, "identity_api_version": 3, "interface": "public"}
        rc = (f"# popek embedded cloud, {cloud}: source this file, then e.g. `openstack server list`\n"
              f"export OS_AUTH_URL={state.url('keystone')}/v3\nexport OS_USERNAME={user}\n"
              f"export OS_PASSWORD='{password}'\nexport OS_PROJECT_NAME={project}\n"
              "export OS_USER_DOMAIN_NAME=Default\nexport OS_PROJECT_DOMAIN_NAME=Default\n"
              f"export OS_IDENTITY_API_VERSION=3\nexport OS_REGION_NAME={REGION}\nunset OS_CLOUD\n")
        _write_private(state.openrc(cloud), rc)
    _write_private(state.clouds_yaml, yaml.safe_dump({"clouds": clouds}, sort_keys=False))


def _write_private(path: Path, text: str) -> None:
    from popek.checks.localcloud.config import write_private

    write_private(path, text)


def connect(state: CloudState, cloud: str = "popek-admin"):
    """An openstacksdk connection from the embedded clouds.yaml (the same file the `openstack` CLI reads)."""
    import openstack
    from openstack.config import loader

    state.passwords()  # feeds popek's redactor with every password of the file about to be read
    config = loader.OpenStackConfig(config_files=[str(state.clouds_yaml)], vendor_files=[])
    return openstack.connection.Connection(config=config.get_one(cloud=cloud))


# --- identity and catalog (keystone running) ---------------------------------------------------

def identity(state: CloudState) -> None:
    """Service project and users (roles admin + service), the member user and project, the catalog."""
    conn = connect(state)
    idn = conn.identity
    pw = state.passwords()
    roles = {r.name: r for r in idn.roles()}
    for name in ("admin", "member", "reader", "service"):
        if name not in roles:
            roles[name] = idn.create_role(name=name)
    default = idn.find_domain("default") or idn.find_domain("Default")
    projects = {p.name: p for p in idn.projects()}
    for name in ("service", MEMBER_PROJECT):
        if name not in projects:
            projects[name] = idn.create_project(name=name, domain_id=default.id)
    users = {u.name: u for u in idn.users()}

    def user(name, password, project, role_names):
        u = users.get(name) or idn.create_user(name=name, password=password, domain_id=default.id,
                                               default_project_id=projects[project].id)
        if name in users:
            idn.update_user(u, password=password)
        for r in role_names:
            idn.assign_project_role_to_user(projects[project], u, roles[r])

    for name in SERVICE_USERS:
        user(name, pw[name], "service", ("admin", "service"))
    user(MEMBER_USER, pw["member"], MEMBER_PROJECT, ("member",))

    services = {s.type: s for s in idn.services()}
    for stype, sname, port_key, path in CATALOG:
        svc = services.get(stype) or idn.create_service(type=stype, name=sname, is_enabled=True)
        existing = {e.interface for e in idn.endpoints(service_id=svc.id)}
        for interface in ("public", "internal", "admin"):
            if interface not in existing:
                idn.create_endpoint(service_id=svc.id, interface=interface, url=state.url(port_key) + path,
                                    region_id=REGION)


# --- the course's resources (everything running) -------------------------------------------------

def fake_compute_identity(state: CloudState, host: str) -> None:
    """Give the fake driver's compute node the identity file nova demands from its second start on.

    nova-compute refuses to start again without `<state_path>/compute_id`; real drivers write it, the
    fake one does not. Its node UUID is uuid5(DNS, host), so the file can be written before the start.
    """
    import uuid

    path = state.data("nova") / "compute_id"
    if not path.exists():
        path.write_text(str(uuid.uuid5(uuid.NAMESPACE_DNS, host)))


def forget_compute(state: CloudState) -> None:
    """Forget the compute host (and the private network) of the other mode (fake ↔ libvirt) before
    nova-compute starts again.

    nova-compute refuses a compute node whose hypervisor name changed ("possible rename"), and the fake
    servers of the API-only mode mean nothing to libvirt (nor libvirt's to the fake driver): delete every
    server, then the nova-compute service records (nova drops their nodes and resource providers).
    """
    conn = connect(state)
    computes = list(conn.compute.services(binary="nova-compute"))
    # nova-compute is stopped: marked forced-down, its servers are deleted by the API itself at once
    # (otherwise the deletion waits for a compute that will never answer).
    for svc in computes:
        conn.compute.update_service_forced_down(svc, forced=True)
    for server in list(conn.compute.servers(all_projects=True)):
        conn.compute.delete_server(server, force=True)
    for server in list(conn.compute.servers(all_projects=True)):
        conn.compute.wait_for_delete(server, wait=60)
    for svc in computes:
        conn.compute.delete_service(svc)
    _undefine_nova_domains(state)
    (state.data("nova") / "compute_id").unlink(missing_ok=True)
    state.marker("discover-hosts").unlink(missing_ok=True)
    # The member's private network was made with the other mode's project network type (vxlan for the
    # API-only cloud, which a dataplane without tunnels cannot bind): `resources` makes it again.
    member = connect(state, "popek")
    net = member.network
    router = net.find_router("router", project_id=member.current_project_id)
    private = net.find_network("private", project_id=member.current_project_id)
    if router is not None:
        for port in net.ports(device_id=router.id, device_owner="network:router_interface"):
            net.remove_interface_from_router(router, port_id=port.id)
        net.delete_router(router)
    if private is not None:
        for port in net.ports(network_id=private.id):
            net.delete_port(port)
        net.delete_network(private)


def utcnow():
    """Naive UTC now, as nova stores its heartbeats."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).replace(tzinfo=None)


def _undefine_nova_domains(state: CloudState) -> None:
    """Remove the libvirt domains nova defined (`instance-*`) when popek's libvirtd runs: a nova-compute
    that finds domains but no service record of its own refuses to start ("existing instances"). Only
    popek's own libvirtd is asked (dataplane.libvirt_uri): a host's libvirt and its guests are not popek's."""
    from popek.checks.localcloud import dataplane

    if shutil.which("virsh") is None or not dataplane.libvirt_socket(state).exists():
        return
    virsh = ["virsh", "-c", dataplane.libvirt_uri(state)]
    names = subprocess.run([*virsh, "list", "--all", "--name"], capture_output=True, text=True, timeout=30)
    for name in names.stdout.split() if names.returncode == 0 else []:
        if name.startswith("instance-"):
            subprocess.run([*virsh, "destroy", name], capture_output=True, timeout=30)
            subprocess.run([*virsh, "undefine", "--nvram", name], capture_output=True, timeout=30)


def wait_nova(state: CloudState, binaries: dict, since, timeout: float = 120.0) -> None:
    """Wait until each nova service of `binaries` reports `up` with a heartbeat newer than `since`.

    binaries: {binary: alive} where alive() tells whether its process still runs (a stale `up` from
    before a restart must not count, nor a process that died after its first heartbeat); since: naive
    UTC datetime. Why wait for conductor and scheduler before nova-compute starts: a message sent to a
    topic before its consumer's queue exists is dropped, and the caller then waits out the 60 s RPC timeout.
    """
    from datetime import datetime, timedelta

    since = since - timedelta(seconds=2)
    conn = connect(state)
    deadline = time.monotonic() + timeout
    pending = dict(binaries)
    last_error = ""
    while pending:
        for binary, alive in list(pending.items()):
            log = state.log(binary)
            if not alive():
                raise CloudError(f"le service {binary} s'est arrêté au démarrage ; voir {log}")
            try:
                fresh = [s for s in conn.compute.services(binary=binary)
                         if s.state == "up" and s.updated_at and datetime.fromisoformat(s.updated_at[:19]) >= since]
            except Exception as exc:  # noqa: BLE001 - APIs still warming up; the deadline decides
                # a connection whose first discovery failed keeps failing: the next try starts afresh
                last_error = f" ; dernière erreur de l'API : {type(exc).__name__}: {str(exc)[:200]}"
                conn = connect(state)
                fresh = []
            if fresh:
                del pending[binary]
        if pending and time.monotonic() > deadline:
            binary = next(iter(pending))
            raise CloudError(f"{binary} n'est pas « up » après {timeout:.0f} s ; voir {state.log(binary)}{last_error}")
        if pending:
            time.sleep(0.5)


def wait_compute(state: CloudState, alive, since, timeout: float = 120.0) -> None:
    """Wait for nova-compute (see wait_nova) and its resource provider, then map its host into cell1
    (discover_hosts, once)."""
    wait_nova(state, {"nova-compute": alive}, since, timeout)
    conn = connect(state)
    deadline = time.monotonic() + timeout
    while not list(conn.placement.resource_providers()):
        if time.monotonic() > deadline:
            raise CloudError(f"nova-compute n'a pas de fournisseur de ressources (placement) ; voir "
                             f"{state.log('nova-compute')}")
        time.sleep(0.5)
    once(state, "discover-hosts", run, state, [state.bin("nova-manage"), "--config-file",
                                               str(state.etc("nova") / "nova.conf"), "cell_v2", "discover_hosts"],
         "nova")


def default_sg_templates(conn) -> None:
    """The default security-group rule templates that `stamp` skipped (pitfall 5): all egress, and
    ingress from members of the same group, in each project's `default` group; egress in the others."""
    if list(conn.network.default_security_group_rules()):
        return
    for ether in ("IPv4", "IPv6"):
        conn.network.create_default_security_group_rule(direction="egress", ether_type=ether,
                                                        used_in_default_sg=True, used_in_non_default_sg=True)
        conn.network.create_default_security_group_rule(direction="ingress", ether_type=ether, remote_group_id="PARENT",
                                                        used_in_default_sg=True, used_in_non_default_sg=False)


def flavors(conn) -> None:
    """The menu of FLAVORS. A flavor cannot be changed in Nova: one made by an older popek with other sizes
    is deleted and made again (servers keep their own copy of the flavor they were booted with)."""
    have = {f.name: f for f in conn.compute.flavors()}
    for name, vcpus, ram, disk in FLAVORS:
        old = have.get(name)
        if old is not None and (old.vcpus, old.ram, old.disk) == (vcpus, ram, disk):
            continue
        if old is not None:
            conn.compute.delete_flavor(old)
        conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)


#: Glance property holding the hash of the recipe an image was built from (images/).
RECIPE_PROPERTY = "popek_recipe"


def images(state: CloudState, conn, specs) -> None:
    """Upload each built image (public) unless Glance holds it from the same recipe; an image of that
    name from an older recipe is replaced (the new one uploaded first, then the old ones deleted)."""
    held = list(conn.image.images())
    for spec in specs:
        same_name = [i for i in held if i.name == spec.name]
        if any((i.properties or {}).get(RECIPE_PROPERTY) == spec.recipe for i in same_name):
            continue
        conn.image.create_image(name=spec.name, filename=str(spec.path), disk_format=spec.disk_format,
                                container_format=spec.container_format, visibility="public",
                                min_ram=getattr(spec, "min_ram", 0), min_disk=getattr(spec, "min_disk", 0),
                                wait=True, **{**dict(spec.properties or {}), RECIPE_PROPERTY: spec.recipe})
        for old in same_name:
            conn.image.delete_image(old, ignore_missing=True)
    state.marker("images").write_text("\n".join(sorted(s.name for s in specs)) + "\n")


def networks(state: CloudState, conn) -> None:
    """`public` (flat, shared, external: instances boot on it and floating IPs come from it) and, for the
    member, `private` + a router whose gateway is on `public`."""
    net = conn.network
    public = net.find_network("public")
    if public is None:
        public = net.create_network(name="public", is_router_external=True, is_shared=True,
                                    provider_network_type="flat", provider_physical_network="public")
        net.create_subnet(name="public-subnet", network_id=public.id, ip_version=4, cidr=PUBLIC_CIDR,
                          gateway_ip=PUBLIC_GATEWAY, is_dhcp_enabled=True,
                          allocation_pools=[{"start": PUBLIC_POOL[0], "end": PUBLIC_POOL[1]}])
    member = connect(state, "popek")
    mnet = member.network
    project_id = member.current_project_id
    private = mnet.find_network("private", project_id=project_id)
    if private is None:
        private = mnet.create_network(name="private")
        subnet = mnet.create_subnet(name="private-subnet", network_id=private.id, ip_version=4, cidr=PRIVATE_CIDR,
                                    dns_nameservers=[])
        router = mnet.create_router(name="router", external_gateway_info={"network_id": public.id})
        mnet.add_interface_to_router(router, subnet_id=subnet.id)
    # The member's default group is created on its first network call: make sure it exists now.
    list(mnet.security_groups(project_id=project_id))


def resources(state: CloudState, image_specs) -> None:
    """Flavors, images, security-group templates and networks, as the course names them."""
    conn = connect(state)
    default_sg_templates(conn)
    flavors(conn)
    images(state, conn, image_specs)
    networks(state, conn)


# --- the dataplane proven with a real guest (dataplane mode) -------------------------------------

#: What the tiny image prints once DHCP and the metadata service answered: "popek-tiny: ready NAME A.B.C.D/N".
SMOKE_READY = r"popek-tiny: ready \S+ \d+\.\d+\.\d+\.\d+/\d+"


def dataplane_smoke(state: CloudState, timeout: float = 150.0) -> float:
    """Boot the tiny image on `private` as the member and wait until its console says it got an address
    from Neutron's DHCP and its identity from the metadata service; delete it. The first guest after a
    start also warms libvirt's image cache. Returns the seconds it took; raises CloudError with the end of
    the guest's console when the dataplane does not deliver."""
    import re
    import secrets

    conn = connect(state, "popek")
    image, flavor = conn.image.find_image("popek-tiny"), conn.compute.find_flavor("tiny")
    net = conn.network.find_network("private")
    from popek.checks.cloud import compute

    marker = (image.properties or {}).get(compute.TINY_MARKER) if image is not None else None
    if marker is None or flavor is None or net is None:
        raise CloudError("plan de données : image popek-tiny (et son marqueur), gabarit tiny ou réseau private absent")

    t0 = time.monotonic()
    server = conn.compute.create_server(name=f"popek-essai-{secrets.token_hex(3)}", image_id=image.id,
                                        flavor_id=flavor.id, networks=[{"uuid": net.id}])
    try:
        try:
            compute.wait_active(conn, server, timeout)
        except AssertionError as exc:
            raise CloudError(f"plan de données : {exc}") from None
        # one hard reboot when the guest's first boot got no lease (see compute.lease_or_reboot)
        compute.lease_or_reboot(conn, server, marker, timeout)
        console = compute.console_log(conn, server, length=400)
        ready = re.findall(SMOKE_READY, console)
        if ready and "metadata instance-id" in console:
            return time.monotonic() - t0
        tail = "\n".join([l for l in console.strip().splitlines() if "alive" not in l][-6:]) or "(console vide)"
        raise CloudError(f"plan de données : l'instance d'essai n'a pas obtenu d'adresse et de metadata ; "
                         f"fin de sa console :\n{tail}\njournaux dans {state.root / 'log'}")
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
        conn.compute.wait_for_delete(server, wait=120)
