"""Shared by the lab tests: snapshots of a student's project as the inspection writes them (pure data)."""
from popek.checks.lab.snapshot import Snapshot

SSH_RULE = {"direction": "ingress", "protocol": "tcp", "port_min": 22, "port_max": 22,
            "remote_ip_prefix": "0.0.0.0/0", "ethertype": "IPv4"}
EGRESS = {"direction": "egress", "protocol": None, "port_min": None, "port_max": None,
          "remote_ip_prefix": None, "ethertype": "IPv4"}


def server(name="mon-instance", flavor="small", image="Debian 13", networks=("public",), status="ACTIVE",
           key_name="ma-cle", groups=("ssh",), sid="s1"):
    return {"id": sid, "name": name, "status": status, "flavor": flavor, "image": image,
            "networks": list(networks), "key_name": key_name, "security_groups": list(groups)}


def full_snapshot() -> Snapshot:
    """Everything the TP asks for, done right."""
    return Snapshot(
        project_id="p1",
        keypairs=[{"name": "ma-cle", "type": "ssh", "fingerprint": "aa:bb"}],
        security_groups=[{"id": "g0", "name": "default", "rules": [EGRESS]},
                         {"id": "g1", "name": "ssh", "rules": [EGRESS, SSH_RULE]}],
        servers=[server()],
        volumes=[{"id": "v1", "name": "mon-volume", "status": "in-use", "size": 1, "attached_to": ["s1"]}],
        floating_ips=[{"id": "f1", "address": "203.0.113.7", "network": "public", "port_id": "pt1",
                       "server_id": "s1"}],
        containers=[{"name": "mon-conteneur", "objects": [{"name": "rapport.txt", "bytes": 12}]}])
