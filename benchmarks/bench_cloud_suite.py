"""Cloud suite benchmark: wall time of `popek run cloud` beside (a) a plain openstacksdk script making the
same API calls and (b) Tempest's equivalent API tests, against the same cloud, in one run; popek serial
and with `-n 2`, Tempest with concurrency 1 and 2.

Prints a markdown table of wall times and ratios to the SDK script, writes benchmarks/results/cloud_suite.json.
Usage: .venv/bin/python benchmarks/bench_cloud_suite.py [--os-cloud NAME] [--skip-tempest]
Without --os-cloud: the embedded cloud (`popek cloud up`); Tempest is configured with its admin entry.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
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
        argv += ["-n", str(workers)] if workers else []
        argv += ["--os-cloud", os_cloud] if os_cloud else []
        wall, proc = timed(subprocess.run, argv, cwd=tmp, capture_output=True, text=True)
        tail = [l for l in proc.stdout.splitlines() if " in " in l and ("passed" in l or "failed" in l)]
        return wall, {"exit": proc.returncode, "summary": tail[-1].strip("= ") if tail else proc.stdout[-300:]}


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
    conf.write_text(textwrap.dedent(f"""\
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


def run_tempest(workspace: Path, concurrency: int) -> tuple[float, dict]:
    argv = [str(VENV_BIN / "tempest"), "run", "--regex", TEMPEST_REGEX, "--concurrency", str(concurrency)]
    wall, proc = timed(subprocess.run, argv, cwd=workspace, capture_output=True, text=True)
    totals = [l.strip() for l in proc.stdout.splitlines() if l.strip().startswith(("- Passed", "- Skipped", "- Failed"))]
    return wall, {"exit": proc.returncode, "summary": ", ".join(totals) or proc.stdout[-500:] + proc.stderr[-500:]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--os-cloud", default=None, help="cloud of clouds.yaml (default: the embedded cloud)")
    parser.add_argument("--skip-tempest", action="store_true")
    args = parser.parse_args(argv)

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
