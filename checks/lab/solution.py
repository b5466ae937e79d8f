"""The TP done by a scripted student, with the student's own credentials (openstacksdk), step by
step as the course's commands would: used by the integration test and the benchmark to make
projects with nothing, half or all of the lab done, and by a teacher to try a lab definition.

Steps (names are the student's, not popek's: the class teardown removes them with the project):
  keypair        openstack keypair create --public-key … ma-cle
  security_group openstack security group create ssh + rule --ingress --protocol tcp --dst-port 22
  server         openstack server create --flavor F --image 'Debian 13' --net public [--net prive]
                   --key-name ma-cle --security-group ssh mon-instance   (prive: see floating_ip)
  volume         openstack volume create --size 1 mon-volume ; server add volume
  floating_ip    network prive + subnet + router (gateway public) + interface, then floating ip
                   create public ; associated to the instance's port on prive
  container      openstack container create mon-conteneur
  object         openstack object create mon-conteneur rapport.txt
"""
from __future__ import annotations

from popek.checks.cloud import compute

STEPS = ("keypair", "security_group", "server", "volume", "floating_ip", "container", "object")
#: Not a TP step: boot the server with a port on `prive` too (so that a later call can add a floating IP).
PRIVATE = "private_network"


def _network(conn, name: str):
    found = conn.network.find_network(name)
    if found is None:
        raise LookupError(f"réseau « {name} » introuvable")
    return found


def private_network(conn, external: str = "public"):
    """`prive` (10.99.0.0/24) routed to `external`, created once."""
    net = conn.network.find_network("prive", project_id=conn.current_project_id)
    if net is not None:
        return net
    net = conn.network.create_network(name="prive")
    subnet = conn.network.create_subnet(name="prive-sous-reseau", network_id=net.id, ip_version=4,
                                        cidr="10.99.0.0/24")
    router = conn.network.create_router(name="routeur", external_gateway_info={
        "network_id": _network(conn, external).id})
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    return net


def perform(conn, steps=STEPS, flavor: str = "small", image: str = "Debian 13", network: str = "public",
            timeout: float = 180) -> dict:
    """Do `steps` (see module doc) in the project of `conn`; returns {step: resource id or name}."""
    done: dict[str, str] = {}
    steps = set(steps)
    if "keypair" in steps:
        _private, public = compute.ssh_keypair()
        done["keypair"] = conn.compute.create_keypair(name="ma-cle", public_key=public).name
    if "security_group" in steps:
        group = conn.network.create_security_group(name="ssh", description="SSH")
        conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", protocol="tcp",
                                                port_range_min=22, port_range_max=22, ether_type="IPv4",
                                                remote_ip_prefix="0.0.0.0/0")
        done["security_group"] = group.id
    server = None
    if "server" in steps:
        nets = [{"uuid": _network(conn, network).id}]
        if "floating_ip" in steps or PRIVATE in steps:
            nets.append({"uuid": private_network(conn, network).id})
        kwargs = {"key_name": "ma-cle"} if "keypair" in steps else {}
        if "security_group" in steps:
            kwargs["security_groups"] = [{"name": "ssh"}]
        server = conn.compute.create_server(
            name="mon-instance", flavor_id=conn.compute.find_flavor(flavor, ignore_missing=False).id,
            image_id=conn.image.find_image(image, ignore_missing=False).id, networks=nets, **kwargs)
        server = compute.wait_active(conn, server, timeout)   # an ERROR names Nova's fault
        done["server"] = server.id
    if server is None and steps & {"volume", "floating_ip"}:
        server = conn.compute.find_server("mon-instance")     # booted by an earlier call
    if "volume" in steps:
        volume = conn.block_storage.create_volume(name="mon-volume", size=1)
        volume = conn.block_storage.wait_for_status(volume, status="available", failures=["error"], interval=1,
                                                    wait=timeout)
        if server is not None:
            conn.compute.create_volume_attachment(server, volume_id=volume.id)
            conn.block_storage.wait_for_status(volume, status="in-use", failures=["error", "error_attaching"],
                                               interval=1, wait=timeout)
        done["volume"] = volume.id
    if "floating_ip" in steps:
        fip = conn.network.create_ip(floating_network_id=_network(conn, network).id)
        if server is not None:
            prive = private_network(conn, network)
            port = next(iter(conn.network.ports(device_id=server.id, network_id=prive.id)), None)
            if port is not None:
                conn.network.update_ip(fip, port_id=port.id)
        done["floating_ip"] = fip.floating_ip_address
    if "container" in steps or "object" in steps:
        conn.object_store.create_container(name="mon-conteneur")
        done["container"] = "mon-conteneur"
    if "object" in steps:
        conn.object_store.upload_object(container="mon-conteneur", name="rapport.txt", data=b"TP OpenStack\n")
        done["object"] = "rapport.txt"
    return done
