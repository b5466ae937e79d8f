"""Cloud suite benchmark: wall time of `popek run cloud` beside (a) a plain openstacksdk script making the
same API calls and (b) Tempest's equivalent API tests, against the same cloud, in one run; popek serial
and with `-n 2`, Tempest with concurrency 1 and 2.

Prints a markdown table of wall times and ratios to the SDK script, writes benchmarks/results/cloud_suite.json.
Usage: .venv/bin/python benchmarks/bench_cloud_suite.py [--os-cloud NAME] [--skip-tempest]
Without --os-cloud: the embedded cloud (`popek cloud up`); Tempest is configured with its admin entry.

With --traffic (embedded cloud in dataplane mode; each run takes `/tmp/popek-cloud.lock` exclusively for
itself, so that it has an idle cloud and others may use it between runs; --no-lock when the caller holds it): popek's
five traffic scenarios (C18, C19, C24, C25, C26: serial, then -n 2) and Tempest's two network scenario classes
(TestNetworkBasicOps, TestSecurityGroupsBasicOps, whole) one after the other on the same cloud, with the ratio
of each popek run to Tempest's, each run's verdicts, and what each run left behind in the cloud (must be
nothing). Writes benchmarks/results/traffic_vs_tempest.json and the Tempest log beside it.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent

#: Tempest tests that check what the popek cloud suite checks at the API level (the dataplane is out).
TEMPEST_REGEX = (r"^tempest\.api\.(identity\.v3\.test_catalog\.IdentityCatalogTest"
                 r"|compute\.test_versions\.TestVersions"
                 r"|compute\.flavors\.test_flavors\.FlavorsV2TestJSON"
                 r"|compute\.keypairs\.test_keypairs\.KeyPairsV2TestJSON"
                 r"|compute\.servers\.test_create_server\.ServersTestJSON"
                 r"|compute\.volumes\.test_attach_volume\.AttachVolumeTestJSON"
                 r"|image\.v2\.test_images\.ListUserImagesTest"
                 r"|network\.test_floating_ips\.FloatingIPTestJSON"
                 r"|network\.test_security_groups\.SecGroupTest"
                 r"|object_storage\.test_object_services\.ObjectTest\.test_(create|get)_object)\.")


#: The dataplane scenarios (features/cloud/plan_de_donnees.feature: SSH, packets) are out, as they are out
#: of the SDK script and of the Tempest regex: the three columns make the same API-level checks.
DATAPLANE_SCENARIOS = ("paire_ouvre_linstance or groupe_de_sécurité_bloque or groupe_distant or flottante_déplacée "
                       "or cloudinit")
API_ONLY = f"not ({DATAPLANE_SCENARIOS})"


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, result


def run_popek(workers: int | None, os_cloud: str | None) -> tuple[float, dict]:
    return run_popek_k(API_ONLY, workers, os_cloud)


def run_popek_k(keyword: str, workers: int | None = None, os_cloud: str | None = None) -> tuple[float, dict]:
    """Wall time and summary of `popek run cloud -k KEYWORD` (optionally -n WORKERS, --os-cloud)."""
    with tempfile.TemporaryDirectory(prefix="popek-bench-cloud-") as tmp:
        argv = [str(VENV_BIN / "popek"), "run", "cloud", "--no-report", "--results", tmp, "-k", keyword]
        argv += ["-n", str(workers or 0)]      # -n 0: one process (popek run's default is 2 workers on 2 cores)
        argv += ["--os-cloud", os_cloud] if os_cloud else []
        wall, proc = timed(subprocess.run, argv, cwd=tmp, capture_output=True, text=True)
        tail = [l for l in proc.stdout.splitlines() if " in " in l and ("passed" in l or "failed" in l)]
        return wall, {"exit": proc.returncode, "summary": tail[-1].strip("= ") if tail else proc.stdout[-300:],
                      "tests": junit_verdicts(Path(tmp) / "junit.xml")}


def junit_verdicts(path: Path) -> dict:
    """{test name: [verdict, seconds]} from a JUnit XML file (empty when there is none)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    out = {}
    for case in root.iter("testcase"):
        verdict = ("ÉCHEC" if case.find("failure") is not None or case.find("error") is not None
                   else "IGNORÉ" if case.find("skipped") is not None else "RÉUSSI")
        out[case.get("name", "?")] = [verdict, round(float(case.get("time") or 0), 1)]
    return out


def sdk_script(conn) -> dict:
    """The popek cloud suite's API calls (dataplane excluded), written as a plain openstacksdk script."""
    import requests

    from popek.checks.cloud.ledger import new_run_id

    # popek-style names, so that `popek cloud sweep` finds anything a crashed benchmark leaves
    p = f"popek-{new_run_id()}-bench"
    made = []  # delete callables: plain try/finally cleanup, as a script author would write it
    counts = {}
    try:
        conn.session.get_token()
        catalog = conn.session.auth.get_access(conn.session).service_catalog.catalog
        for service in catalog:
            url = next(e["url"] for e in service["endpoints"] if e["interface"] == "public")
            conn.session.get(url, raise_exc=False)
        for st in ("compute", "identity", "image", "network", "block-storage"):
            conn.session.get(conn.endpoint_for(st), authenticated=False, raise_exc=False)
        images = [i for i in conn.image.images() if i.status == "active"]
        flavors = list(conn.compute.flavors(details=True))
        image = min(images, key=lambda i: i.size or 0)
        flavor = min((f for f in flavors if f.disk > 0), key=lambda f: (f.ram, f.vcpus))
        net = next(n for n in conn.network.networks() if not n.is_router_external and n.subnet_ids)
        external = next(iter(conn.network.networks(is_router_external=True)))
        # keypair
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
        pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        kp = conn.compute.create_keypair(name=f"{p}-key", public_key=pub)
        made.append(lambda: conn.compute.delete_keypair(kp, ignore_missing=True))
        conn.compute.get_keypair(kp.name)

        def boot(name, network, **access):
            server = conn.compute.create_server(name=name, flavor_id=flavor.id, image_id=image.id,
                                                networks=[{"uuid": network.id}], **access)
            made.append(lambda: (conn.compute.delete_server(server, ignore_missing=True),
                                 conn.compute.wait_for_delete(server, wait=120)))
            return server

        # one server created, listed, then deleted (the "server create" scenario)
        s0 = conn.compute.wait_for_server(boot(f"{p}-s0", net), wait=300)
        list(conn.network.ports(device_id=s0.id))
        conn.compute.delete_server(s0)
        conn.compute.wait_for_delete(s0, wait=120)
        # the run's shared resources, as popek makes them: a routed network and two servers on it
        rnet = conn.network.create_network(name=f"{p}-net")
        made.append(lambda: conn.network.delete_network(rnet, ignore_missing=True))
        sub = conn.network.create_subnet(network_id=rnet.id, ip_version=4, cidr="10.79.0.0/24", name=f"{p}-sub")
        made.append(lambda: conn.network.delete_subnet(sub, ignore_missing=True))
        router = conn.network.create_router(name=f"{p}-r", external_gateway_info={"network_id": external.id})
        made.append(lambda: conn.network.delete_router(router, ignore_missing=True))
        conn.network.add_interface_to_router(router, subnet_id=sub.id)
        made.append(lambda: conn.network.remove_interface_from_router(router, subnet_id=sub.id))
        # ... booted with the run's keypair, in its SSH-only group
        run_kp = conn.compute.create_keypair(name=f"{p}-runkey", public_key=pub)
        made.append(lambda: conn.compute.delete_keypair(run_kp, ignore_missing=True))
        run_sg = conn.network.create_security_group(name=f"{p}-sg-ssh")
        made.append(lambda: conn.network.delete_security_group(run_sg, ignore_missing=True))
        conn.network.create_security_group_rule(security_group_id=run_sg.id, direction="ingress", ether_type="IPv4",
                                                protocol="tcp", port_range_min=22, port_range_max=22,
                                                remote_ip_prefix="0.0.0.0/0")
        access = {"key_name": run_kp.name, "security_groups": [{"name": run_sg.name}]}
        s1, s2 = boot(f"{p}-s1", rnet, **access), boot(f"{p}-s2", rnet, **access)
        s1, s2 = conn.compute.wait_for_server(s1, wait=300), conn.compute.wait_for_server(s2, wait=300)
        # list via REST and SDK, and the CLI lists
        token = conn.session.get_token()
        requests.get(conn.compute.get_endpoint() + "/servers", headers={"X-Auth-Token": token}, timeout=30).json()
        list(conn.compute.servers())
        for what in ("server", "image", "network"):
            subprocess.run([str(VENV_BIN / "openstack"), what, "list", "-f", "json"], capture_output=True,
                           env={**os.environ, "OS_CLOUD": conn.config.name}, check=False)
        # volume: attach, detach, attach to the other server
        vol = conn.block_storage.create_volume(name=f"{p}-vol", size=1)
        made.append(lambda: conn.block_storage.delete_volume(vol, ignore_missing=True))
        conn.block_storage.wait_for_status(vol, "available", wait=120)
        conn.compute.create_volume_attachment(s1, vol.id)
        conn.block_storage.wait_for_status(vol, "in-use", wait=120)
        conn.compute.delete_volume_attachment(s1, vol.id)
        conn.block_storage.wait_for_status(vol, "available", wait=120)
        conn.compute.create_volume_attachment(s2, vol.id)
        conn.block_storage.wait_for_status(vol, "in-use", wait=120)
        conn.compute.delete_volume_attachment(s2, vol.id)
        conn.block_storage.wait_for_status(vol, "available", wait=120)
        # object storage over HTTP
        swift = conn.object_store.get_endpoint()
        data = os.urandom(65536)
        requests.put(f"{swift}/{p}-bucket", headers={"X-Auth-Token": token}, timeout=30)
        made.append(lambda: (requests.delete(f"{swift}/{p}-bucket/o", headers={"X-Auth-Token": token}, timeout=30),
                             requests.delete(f"{swift}/{p}-bucket", headers={"X-Auth-Token": token}, timeout=30)))
        requests.put(f"{swift}/{p}-bucket/o", data=data, headers={"X-Auth-Token": token}, timeout=30)
        assert requests.get(f"{swift}/{p}-bucket/o", headers={"X-Auth-Token": token}, timeout=30).content == data
        # floating IP moved between the two servers on the routed network
        fip = conn.network.create_ip(floating_network_id=external.id, description=f"{p}-fip")
        made.append(lambda: conn.network.delete_ip(fip, ignore_missing=True))
        for server in (s1, s2):
            port = next(iter(conn.network.ports(device_id=server.id)))
            conn.network.update_ip(fip, port_id=port.id)
            conn.network.get_ip(fip.id)
        # security groups: default rules, one rule, 25 valid round trips, 25 refusals
        list(conn.network.security_groups(name="default"))
        sg = conn.network.create_security_group(name=f"{p}-sg")
        made.append(lambda: conn.network.delete_security_group(sg, ignore_missing=True))
        for i in range(26):
            rule = conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress",
                                                           protocol="tcp", port_range_min=1000 + i,
                                                           port_range_max=1000 + i, remote_ip_prefix="10.0.0.0/8")
            conn.network.get_security_group_rule(rule.id)
            conn.network.delete_security_group_rule(rule)
        refused = 0
        for i in range(25):
            try:
                conn.network.create_security_group_rule(security_group_id=sg.id, direction="sideways")
            except Exception:
                refused += 1
            list(conn.network.security_group_rules(security_group_id=sg.id))
        counts = {"servers": 3, "refused": refused}
    finally:
        for delete in reversed(made):
            try:
                delete()
            except Exception:
                pass
    return counts


def tempest_conf(workspace: Path, admin: dict, conn) -> Path:
    """tempest.conf for the cloud of `conn`, with `admin` = the admin entry's auth section."""
    images = sorted((i for i in conn.image.images() if i.status == "active"), key=lambda i: i.size or 0)
    flavors = sorted((f for f in conn.compute.flavors(details=True) if f.disk > 0), key=lambda f: (f.ram, f.vcpus))
    external = next(iter(conn.network.networks(is_router_external=True)))
    conf = workspace / "etc" / "tempest.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    write_private(conf, textwrap.dedent(f"""\
        [DEFAULT]
        log_dir = {workspace}/logs
        log_file = tempest.log
        [oslo_concurrency]
        lock_path = {workspace}/lock
        [auth]
        admin_username = {admin['username']}
        admin_password = {admin['password']}
        admin_project_name = {admin['project_name']}
        admin_domain_name = {admin.get('user_domain_name', 'Default')}
        use_dynamic_credentials = true
        [identity]
        uri_v3 = {admin['auth_url']}
        auth_version = v3
        region = RegionOne
        [identity-feature-enabled]
        api_v2 = false
        [compute]
        image_ref = {images[0].id}
        image_ref_alt = {images[-1].id}
        flavor_ref = {flavors[0].id}
        flavor_ref_alt = {flavors[1].id if len(flavors) > 1 else flavors[0].id}
        min_compute_nodes = 1
        [compute-feature-enabled]
        console_output = true
        [network]
        public_network_id = {external.id}
        floating_network_name = {external.name}
        project_network_cidr = 10.100.0.0/16
        [network-feature-enabled]
        ipv6 = false
        [service_available]
        nova = true
        glance = true
        neutron = true
        cinder = true
        swift = true
        [validation]
        run_validation = false
        [volume]
        catalog_type = volumev3
        [object-storage]
        operator_role = member
        """))
    return conf


def write_private(path: Path, text: str) -> None:
    """Write `text` (it holds the admin password) readable by its owner only, from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the file may have existed with wider rights
    with os.fdopen(fd, "w") as f:
        f.write(text)


def tempest_traffic_conf(workspace: Path, admin: dict, admin_conn) -> Path:
    """tempest.conf as tempest_conf writes it, plus what the network scenarios need to reach guests: the tiny
    image (root: busybox ping needs it inside the guest), SSH over floating IPs, short timeouts. The timeouts
    only bound the positive checks: Tempest 47's negative ping returns at the first unanswered ping
    (`ping_ip_address`: `(returncode == 0) == should_succeed` under `call_until_true`)."""
    tiny = admin_conn.image.find_image("popek-tiny")
    flavor = admin_conn.compute.find_flavor("tiny")
    if tiny is None or flavor is None:
        raise LookupError("image popek-tiny ou gabarit tiny absent : le cloud embarqué n'est pas en mode plan de données")
    conf = tempest_conf(workspace, admin, admin_conn)
    text = conf.read_text().replace("run_validation = false\n", "")
    for key in ("image_ref", "image_ref_alt"):
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {tiny.id}", text)
    for key in ("flavor_ref", "flavor_ref_alt"):
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {flavor.id}", text)
    text += ("[validation]\nrun_validation = true\nimage_ssh_user = root\nconnect_method = floating\n"
             "auth_method = keypair\nip_version_for_ssh = 4\nping_timeout = 20\nconnect_timeout = 20\n"
             "ssh_timeout = 120\n[network-feature-enabled]\nport_security = true\n")
    write_private(conf, text)
    return conf


def run_tempest(workspace: Path, concurrency: int, regex: str = TEMPEST_REGEX) -> tuple[float, dict]:
    argv = [str(VENV_BIN / "tempest"), "run", "--regex", regex, "--concurrency", str(concurrency)]
    wall, proc = timed(subprocess.run, argv, cwd=workspace, capture_output=True, text=True)
    totals = [l.strip() for l in proc.stdout.splitlines() if l.strip().startswith(("- Passed", "- Skipped", "- Failed"))]
    # subunit-trace: "{0} tempest.scenario.….test_x [78.1s] ... ok" (or "... SKIPPED: reason", "... FAILED")
    tests = {}
    for m in re.finditer(r"(?m)^\{\d+\} (\S+?)(?:\[[^\]]*\])? \[([\d.]+)s\] \.\.\. (\w+)", proc.stdout):
        tests[m.group(1).rsplit(".", 1)[-1]] = [m.group(3), float(m.group(2))]
    for m in re.finditer(r"(?m)^\{\d+\} (\S+?)(?:\[[^\]]*\])? \.\.\. SKIPPED: (.*)$", proc.stdout):
        tests[m.group(1).rsplit(".", 1)[-1]] = ["SKIPPED", m.group(2)[:120]]
    return wall, {"exit": proc.returncode, "summary": ", ".join(totals) or proc.stdout[-500:] + proc.stderr[-500:],
                  "tests": tests, "log": proc.stdout[-40000:] + proc.stderr[-5000:]}


#: Tempest's two network scenario classes, whole (tests the configuration cannot run skip, and say why).
TEMPEST_TRAFFIC_REGEX = (r"^tempest\.scenario\.(test_network_basic_ops\.TestNetworkBasicOps"
                         r"|test_security_groups_basic_ops\.TestSecurityGroupsBasicOps)\.")


def cloud_resources(admin_conn) -> set[tuple[str, str, str]]:
    """(kind, id, name) of every resource a traffic run creates, in every project: what a run leaves behind
    is the difference of two snapshots (the cloud is idle meanwhile: run under flock -x)."""
    found = set()
    listings = {
        "server": lambda: admin_conn.compute.servers(all_projects=True),
        "network": admin_conn.network.networks, "subnet": admin_conn.network.subnets,
        "router": admin_conn.network.routers, "port": admin_conn.network.ports,
        "floating_ip": admin_conn.network.ips, "security_group": admin_conn.network.security_groups,
        "volume": lambda: admin_conn.block_storage.volumes(all_projects=True),
        "project": admin_conn.identity.projects, "user": admin_conn.identity.users,
    }
    for kind, listing in listings.items():
        for r in listing():
            if kind == "security_group" and r.name == "default":
                continue  # Neutron makes one per project on first look; it goes with its project
            found.add((kind, r.id, r.name or getattr(r, "floating_ip_address", "") or ""))
    return found


@contextlib.contextmanager
def exclusive(lock: str | None):
    """Hold `lock` exclusively (flock) for the block; None: the caller holds it."""
    if lock is None:
        yield
        return
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"attente du verrou exclusif {lock} (le cloud est utilisé)…", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def traffic(args) -> int:
    """popek's traffic scenarios, then Tempest's two network scenario classes, on the embedded cloud."""
    import yaml

    from popek import paths
    from popek.checks.localcloud import bootstrap, lifecycle
    from popek.checks.localcloud.state import CloudState

    state = CloudState(paths.embedded_cloud_dir())
    if not lifecycle.read_mode(state).get("dataplane"):
        print("le cloud embarqué ne tourne pas en mode plan de données : `popek cloud up` d'abord", file=sys.stderr)
        return 2
    admin_conn = bootstrap.connect(state, "popek-admin")
    admin = yaml.safe_load(state.clouds_yaml.read_text())["clouds"]["popek-admin"]["auth"]
    rows: dict[str, tuple[float, dict]] = {}

    def leaving(label, fn, *a, **kw):
        with exclusive(None if args.no_lock else args.lock):
            sick = lifecycle.diagnose(state, lifecycle.table(state, lifecycle.dataplane_module()))
            if sick:  # a cloud someone stopped or broke meanwhile: no figure from it
                raise SystemExit(f"le cloud embarqué n'est pas en état : {sick} ; rien n'est mesuré")
            before = cloud_resources(admin_conn)
            wall, info = fn(*a, **kw)
            info["left_behind"] = sorted(f"{k} {n or i}" for k, i, n in cloud_resources(admin_conn) - before)
        rows[label] = (wall, info)
        print(f"{label}: {wall:.0f} s, {info['summary']}, laissé : {len(info['left_behind'])}", file=sys.stderr)

    if not args.no_serial:
        leaving("popek run cloud — trafic, 5 scénarios (série)", run_popek_k, DATAPLANE_SCENARIOS)
    leaving("popek run cloud -n 2 — trafic, 5 scénarios", run_popek_k, DATAPLANE_SCENARIOS, workers=2)
    with tempfile.TemporaryDirectory(prefix="popek-bench-tempest-traffic-") as tmp:
        ws = Path(tmp)  # 0700, deleted with the 0600 tempest.conf in it
        subprocess.run([str(VENV_BIN / "tempest"), "init", str(ws)], capture_output=True, text=True, check=True)
        tempest_traffic_conf(ws, admin, admin_conn)
        leaving(f"tempest run — TestNetworkBasicOps + TestSecurityGroupsBasicOps (concurrence {args.concurrency})",
                run_tempest, ws, args.concurrency, TEMPEST_TRAFFIC_REGEX)
    tlabel = list(rows)[-1]
    twall, tinfo = rows[tlabel]
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "traffic_vs_tempest.log").write_text(tinfo.pop("log", "").replace(admin["password"], "***"))

    print(f"Trafic réel, popek contre Tempest, un seul run sur le même cloud ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    print("| exécution | durée (s) | ratio / Tempest | verdicts | laissé dans le cloud |\n|---|---:|---:|---|---|")
    for label, (wall, info) in rows.items():
        left = ", ".join(info["left_behind"]) or "rien"
        print(f"| {label} | {wall:.0f} | {wall / twall:.2f} | {info['summary']} (code {info['exit']}) | {left} |")
    print("\n| test | verdict | s |\n|---|---|---:|")
    for label, (_, info) in rows.items():
        for name, (verdict, secs) in info["tests"].items():
            print(f"| {label.split(' — ')[0]} : {name} | {verdict} | {secs} |")
    (out / "traffic_vs_tempest.json").write_text(json.dumps(
        {k: {"wall_s": w, "ratio_to_tempest": w / twall, "info": i} for k, (w, i) in rows.items()},
        indent=2, ensure_ascii=False, default=str))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--os-cloud", default=None, help="cloud of clouds.yaml (default: the embedded cloud)")
    parser.add_argument("--skip-tempest", action="store_true")
    parser.add_argument("--traffic", action="store_true",
                        help="popek's traffic scenarios vs Tempest's network scenario classes (embedded cloud)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="Tempest's concurrency with --traffic (default 2: tempest run's own default here, "
                             "one worker per core)")
    parser.add_argument("--lock", default="/tmp/popek-cloud.lock", help="the cloud lock taken for each run (--traffic)")
    parser.add_argument("--no-lock", action="store_true", help="the caller already holds the cloud lock exclusively")
    parser.add_argument("--no-serial", action="store_true", help="with --traffic: popek with -n 2 only")
    args = parser.parse_args(argv)
    if args.traffic:
        return traffic(args)

    import openstack
    import yaml

    from popek import paths

    embedded = paths.embedded_clouds_yaml()
    name = args.os_cloud or "popek"
    files = None if args.os_cloud else [str(embedded)]
    if files:  # the embedded cloud: its clouds.yaml, for the SDK, the `openstack` client and popek alike
        os.environ["OS_CLIENT_CONFIG_FILE"] = files[0]
    conn = openstack.connect(cloud=name)

    rows = {}
    def sdk_or_error(conn):
        try:
            return {"exit": 0, **sdk_script(conn)}
        except Exception as exc:  # reported in the table: a failing baseline is no baseline
            return {"exit": 1, "error": f"{type(exc).__name__}: {exc}"[:300]}

    rows["script openstacksdk (mêmes appels, série)"] = timed(sdk_or_error, conn)
    rows["popek run cloud (série)"] = run_popek(None, args.os_cloud)
    rows["popek run cloud -n 2"] = run_popek(2, args.os_cloud)
    if not args.skip_tempest:
        admin = yaml.safe_load(Path(files[0] if files else os.environ["OS_CLIENT_CONFIG_FILE"]).read_text())
        admin = admin["clouds"]["popek-admin" if files else name]["auth"]
        with tempfile.TemporaryDirectory(prefix="popek-bench-tempest-") as tmp:
            ws = Path(tmp)
            subprocess.run([str(VENV_BIN / "tempest"), "init", str(ws)], capture_output=True, text=True, check=True)
            tempest_conf(ws, admin, conn)
            rows["tempest run (API équivalentes, concurrence 1)"] = run_tempest(ws, 1)
            rows["tempest run (API équivalentes, concurrence 2)"] = run_tempest(ws, 2)
    for _, info in rows.values():
        info.pop("log", None)
        info.pop("tests", None)

    sdk_wall, sdk_info = rows["script openstacksdk (mêmes appels, série)"]
    base = sdk_wall if sdk_info.get("exit") == 0 else None  # a failing baseline is no baseline
    tempest = rows.get("tempest run (API équivalentes, concurrence 1)")
    tbase = tempest[0] if tempest and tempest[1].get("exit") == 0 else None

    def ratio(wall, ref):
        return f"{wall / ref:.2f}" if ref else "n/a"

    print("| exécution | durée (s) | ratio / script SDK | ratio / Tempest (série) | résultat |\n|---|---:|---:|---:|---|")
    for label, (wall, info) in rows.items():
        print(f"| {label} | {wall:.1f} | {ratio(wall, base)} | {ratio(wall, tbase)} | "
              f"{json.dumps(info, ensure_ascii=False) if isinstance(info, dict) else info} |")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "cloud_suite.json").write_text(json.dumps(
        {k: {"wall_s": w, "info": i} for k, (w, i) in rows.items()}, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
