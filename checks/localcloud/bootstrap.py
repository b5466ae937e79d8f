"""One-time setup of the embedded cloud: databases, identity, catalog, and the course's resources.

Each step leaves a marker (`state.marker(step)`) once it succeeded, so a warm `up` skips it. The
database steps run the services' own tools in the cloud venv; the API steps use openstacksdk over
HTTP with the admin credentials of clouds.yaml, like any client would.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

from popek.checks.localcloud import runcmd
from popek.checks.localcloud.config import write_private
from popek.checks.localcloud.services import base_env, read_pid
from popek.checks.localcloud.state import (ADMIN_PROJECT, HOST, MEMBER_PROJECT, MEMBER_USER, PORTS, RABBIT_USER,
                                          RABBIT_VHOST, REGION, CloudState)

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
#: The swift storage servers' keys in the port map (their ports are in the rings).
SWIFT_STORAGE = ("swift-account", "swift-container", "swift-object")
#: The course's menu: bigger costs more (name, vCPU, RAM MiB, disk GiB). `small`, the course's flavor for
#: Debian 13, has two vCPUs: QEMU's multi-threaded TCG then uses both host cores, the biggest lever on a
#: cloud-init first boot (bare QEMU on this machine type: 42 s with two, 59-66 s with one;
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
    runcmd.run(argv, env=base_env(state) | (env or {}), inherit_env=False, cwd=state.root, input=input,
               log=state.log(f"setup-{step}"), what=f"étape {step} : ")


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
    if read_pid(state, "rabbitmq") is None:  # never under a running node
        shutil.rmtree(state.data("rabbitmq") / "mnesia", ignore_errors=True)
    state.data("rabbitmq").mkdir(parents=True, exist_ok=True)
    (state.data("rabbitmq") / "log").mkdir(exist_ok=True)
    state.etc("rabbitmq").mkdir(parents=True, exist_ok=True)
    (state.etc("rabbitmq") / "enabled_plugins").write_text("[].\n")
    write_private(state.etc("rabbitmq") / "rabbitmq.conf",
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
    """One-replica rings of one device each, on 127.0.0.1 (account, container, object), at the storage
    servers' ports of the cloud's map. Made anew when those moved (one device: every partition stays on it)."""
    (state.data("swift") / "d1").mkdir(parents=True, exist_ok=True)
    builder = state.bin("swift-ring-builder")
    ports = state.ports
    for kind in ("account", "container", "object"):
        path = str(state.etc("swift") / f"{kind}.builder")
        for old in (state.etc("swift") / f"{kind}.builder", state.etc("swift") / f"{kind}.ring.gz"):
            old.unlink(missing_ok=True)
        run(state, [builder, path, "create", "8", "1", "1"], "swift")
        run(state, [builder, path, "add", f"r1z1-{HOST}:{ports['swift-' + kind]}/d1", "1"], "swift")
        run(state, [builder, path, "rebalance"], "swift")


def swift_ring_ports(state: CloudState) -> str:
    """What the rings' marker holds: the storage servers' ports they were made with."""
    return json.dumps({k: v for k, v in state.ports.items() if k in SWIFT_STORAGE})


def swift_rings_moved(state: CloudState) -> bool:
    """The rings were made (marker "swift-rings") with other storage ports than the map's: to be made anew."""
    rings = state.marker("swift-rings")
    if not rings.exists():
        return False
    try:  # an older popek wrote a date there: its rings are at the standard ports
        made = json.loads(rings.read_text())
    except ValueError:
        made = {k: PORTS[k] for k in SWIFT_STORAGE}
    return made != json.loads(swift_ring_ports(state))


def databases(state: CloudState) -> None:
    """Every schema, two at a time (the machine has two cores); nova needs MariaDB running."""
    rings = state.marker("swift-rings")
    if swift_rings_moved(state):
        rings.unlink()
    steps = {"db-keystone": keystone_db, "db-glance": glance_db, "db-placement": placement_db,
             "db-neutron": neutron_db, "db-cinder-mariadb": cinder_db, "db-nova": nova_db, "swift-rings": swift_rings}
    if neutron_connection(state).startswith("mysql"):
        del steps["db-neutron"]
        steps["db-neutron-mariadb"] = neutron_db_mariadb
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(once, state, name, fn, state) for name, fn in steps.items()]
        for f in futures:
            f.result()
    if not rings.exists() or rings.read_text().strip() != swift_ring_ports(state):
        rings.write_text(swift_ring_ports(state) + "\n")


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
        write_private(state.openrc(cloud), rc)
    write_private(state.clouds_yaml, yaml.safe_dump({"clouds": clouds}, sort_keys=False))


def connect(state: CloudState, cloud: str = "popek-admin", api_timeout: float | None = None, **overrides):
    """An openstacksdk connection from the embedded clouds.yaml (the same file the `openstack` CLI reads).
    `api_timeout` (s) bounds each HTTP call, the token's included (keystoneauth's default: none, and a
    SIGSTOPped API accepts the connection but never answers). `overrides`: more client settings, e.g.
    identity_endpoint_override (the catalog's own URL not used)."""
    import openstack
    from openstack.config import loader

    state.passwords()  # feeds popek's redactor with every password of the file about to be read
    config = loader.OpenStackConfig(config_files=[str(state.clouds_yaml)], vendor_files=[])
    return openstack.connection.Connection(config=config.get_one(cloud=cloud, api_timeout=api_timeout, **overrides))


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


def catalog_urls(state: CloudState) -> dict[str, str]:
    """The URL each catalog entry must have on this cloud's port map, by service type."""
    return {"identity": state.url("keystone") + "/v3"} | {stype: state.url(key) + path for stype, _n, key, path in CATALOG}


def catalog_step(state: CloudState) -> str:
    """The one-time step (marker) of the catalog made on this port map: another map, another step."""
    import hashlib

    return "catalog-ports-" + hashlib.sha256(json.dumps(state.ports, sort_keys=True).encode()).hexdigest()[:12]


def repoint_catalog(state: CloudState, log=print) -> list[str]:
    """Every endpoint of our services at its port of the map (a port moved at this `up`: the catalog lives in
    keystone's database); returns the types re-pointed. Run once per map (`once(state, catalog_step(state),
    …)`); the markers of other maps are removed, so that a map coming back is re-pointed again. Keystone
    itself must answer at its own (new) port, which clouds.yaml names already; the identity API is reached
    there too, not at the catalog's URL (still the old port, maybe someone else's server: live 14:12 UTC,
    BadStatusLine from a squatter on 5000)."""
    want = catalog_urls(state)
    idn = connect(state, identity_endpoint_override=want["identity"]).identity
    types = {s.id: s.type for s in idn.services()}
    moved = []
    for e in idn.endpoints():
        url = want.get(types.get(e.service_id, ""))
        if url is not None and e.url != url:
            idn.update_endpoint(e, url=url)
            moved.append(types[e.service_id])
    if moved:
        log(f"catalogue de Keystone : {', '.join(sorted(set(moved)))} re-pointé(s) sur les ports de ports.json")
    for old in state.marker("x").parent.glob("catalog-ports-*"):
        old.unlink(missing_ok=True)
    return sorted(set(moved))


def rehash_passwords(state: CloudState) -> None:
    """Set every password of this cloud again, unchanged, so that keystone stores it at the cost of
    config.KEYSTONE_HASH_ROUNDS (an install made before that setting keeps bcrypt's cost 12 otherwise:
    0.33 s of keystone's CPU per login). The admin last: its own token is revoked with the change."""
    conn = connect(state)
    idn = conn.identity
    pw = state.passwords()
    users = {u.name: u for u in idn.users()}
    for name, key in [*((n, n) for n in SERVICE_USERS), (MEMBER_USER, "member"), ("admin", "admin")]:
        if name in users:
            idn.update_user(users[name], password=pw[key])


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
        # active only: an upload cut short (an `up` interrupted in it) leaves a queued image with the recipe
        # already set, which would otherwise stand for the image for good; it is deleted below, as an old one
        if any((i.properties or {}).get(RECIPE_PROPERTY) == spec.recipe and i.status == "active" for i in same_name):
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
    # each part made when absent, not only with its network: an `up` interrupted between two calls left a
    # network without its subnet (or router) that the next `up` found, and skipped
    public = net.find_network("public")
    if public is None:
        public = net.create_network(name="public", is_router_external=True, is_shared=True,
                                    provider_network_type="flat", provider_physical_network="public")
    if next(iter(net.subnets(network_id=public.id)), None) is None:
        net.create_subnet(name="public-subnet", network_id=public.id, ip_version=4, cidr=PUBLIC_CIDR,
                          gateway_ip=PUBLIC_GATEWAY, is_dhcp_enabled=True,
                          allocation_pools=[{"start": PUBLIC_POOL[0], "end": PUBLIC_POOL[1]}])
    member = connect(state, "popek")
    mnet = member.network
    project_id = member.current_project_id
    private = mnet.find_network("private", project_id=project_id)
    if private is None:
        private = mnet.create_network(name="private")
    subnet = next(iter(mnet.subnets(network_id=private.id)), None)
    if subnet is None:
        subnet = mnet.create_subnet(name="private-subnet", network_id=private.id, ip_version=4, cidr=PRIVATE_CIDR,
                                    dns_nameservers=[])
    if next(iter(mnet.ports(network_id=private.id, device_owner="network:router_interface")), None) is None:
        router = next(iter(mnet.routers(project_id=project_id, name="router")), None) or \
            mnet.create_router(name="router", external_gateway_info={"network_id": public.id})
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
