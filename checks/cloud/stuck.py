"""Why a server stays in BUILD: the component named from the cloud's own health records, as soon as they are
conclusive, instead of openstacksdk's bare "Timeout waiting for the server to come ready" after 300 s.

A boot goes nova-api → RabbitMQ → nova-conductor → nova-scheduler (→ Placement) → nova-compute (→ Neutron's
port binding by the L2 agent, the hypervisor). When one of the Nova services is dead, the request just waits
in its queue: nothing turns ERROR. Every Nova service writes a heartbeat (`openstack compute service list`:
state down once it is older than the cloud's service_down_time, 60 s by default), every Neutron agent too
(`openstack network agent list`: alive False); both lists need the admin role. nova-compute's heartbeat goes
through nova-conductor, so a dead conductor also makes every compute service "down": the conductor is named
first. A stale record of some old host does not count: a binary is blamed only when no service of that binary
is up (for nova-compute, when the server's own host is down, or every compute host).

Without the admin role, only the server's own task_state is left: the message at the time limit says which
step the boot never left, and which services that step waits for.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Optional

#: Seconds a server may stay in BUILD before the health records are read: a healthy cloud turns ACTIVE in
#: 4–20 s (fake driver, QEMU TCG); a heartbeat goes stale only after service_down_time anyway.
GRACE = 20.0
#: Seconds a server may stay in BUILD, while the health records name nothing, before a service of the embedded
#: cloud found frozen (state T) or dead from its pid file is named as what the boot waits for: three times a
#: healthy boot here. ovs-vswitchd frozen leaves every agent and Nova service alive, and os-vif then waits
#: for it up to 120 s per OVS transaction (ovsdbapp waits until ovs-vswitchd applies the new configuration).
EMBEDDED_GRACE = 60.0

#: The Nova services a boot needs, in the order their failure is named (the conductor carries the others'
#: heartbeats and the scheduling request).
NOVA_BOOT = ("nova-conductor", "nova-scheduler", "nova-compute")
#: Neutron agents a boot needs on the server's host (port binding); named when none of them is alive.
L2_AGENTS = ("neutron-openvswitch-agent", "neutron-linuxbridge-agent", "neutron-sriov-nic-agent")

#: What carries every heartbeat (the agents' through neutron-rpc-server, Nova's through nova-conductor, both over
#: RabbitMQ, each written to the database): one of them frozen or dead makes the records go stale one after
#: another (each at its own last report), so the first stale record names an innocent agent or service. Words
#: of an embedded trouble line (connection.embedded_trouble) that name one of them, matched lowercased.
CARRIERS = ("neutron-rpc-server", "rabbitmq", "mariadb")

#: What each step of a boot (task_state) waits for, for the message when the health records say nothing.
STEP_WAITS = {
    "scheduling": "nova-conductor, nova-scheduler, Placement ou le bus RabbitMQ : la demande n'a pas été placée",
    "block_device_mapping": "Cinder (volume de démarrage) ou nova-compute",
    "networking": "Neutron (création ou liaison des ports) ou nova-compute",
    "spawning": "nova-compute et son hyperviseur (ou l'événement « vif plugged » de l'agent L2 de Neutron)",
    None: "nova-compute (aucune étape en cours)",
}


@dataclasses.dataclass(frozen=True)
class Health:
    """One health record: a Nova service (`up`: state up) or a Neutron agent (`up`: alive)."""
    binary: str
    host: str
    up: bool
    enabled: bool = True
    updated: str = ""      # last heartbeat as the API gives it
    reason: str = ""       # why it is disabled (Nova's disabled_reason: the operator's words, or "AUTO: …")


def _named(records: list[Health]) -> str:
    return ", ".join(f"{r.binary}@{r.host} (dernier signe de vie {r.updated or '?'})" for r in records)


def dead_component(host: Optional[str], services: Iterable[Health], agents: Iterable[Health]) -> Optional[str]:
    """The component a stuck boot waits for, from the health records, or None when they are all well.

    host: the server's compute host (admin view), None when not scheduled yet."""
    services = [s for s in services if s.enabled]
    agents = [a for a in agents if a.enabled]
    computes = [s for s in services if s.binary == "nova-compute"]
    conductor_up = any(s.up for s in services if s.binary == "nova-conductor")
    if conductor_up and computes and agents and not any(s.up for s in computes + agents):
        # both reach the cloud only over the bus (compute through the conductor, agents through
        # neutron-rpc-server), while the conductor's own heartbeat is a database write
        return ("le bus RabbitMQ ne transmet plus : nova-compute et tous les agents de Neutron sont « down » "
                f"(leurs signes de vie passent par lui), nova-conductor est en vie : {_named(computes + agents)}")
    for binary in NOVA_BOOT:
        mine = [s for s in services if s.binary == binary]
        if binary == "nova-compute" and host:
            mine = [s for s in mine if s.host == host] or mine
        if mine and not any(s.up for s in mine):
            also = ""
            if binary == "nova-conductor":
                computes = [s for s in services if s.binary == "nova-compute" and not s.up]
                if computes:
                    also = " ; nova-compute aussi « down » : son signe de vie passe par nova-conductor"
            return (f"{binary} ne donne plus signe de vie (openstack compute service list : state down) : "
                    f"{_named(mine)}{also}")
    if len(agents) > 1 and not any(a.up for a in agents):
        return ("aucun agent de Neutron ne donne plus signe de vie (openstack network agent list : alive False "
                "partout) : leurs signes de vie passent par neutron-rpc-server, c'est lui (ou le bus) qui "
                f"ne répond plus : {_named(agents)}")
    for binary in L2_AGENTS:
        mine = [a for a in agents if a.binary == binary and (not host or a.host == host)]
        if mine and not any(a.up for a in mine):
            return (f"l'agent {binary} ne donne plus signe de vie (openstack network agent list : alive False), "
                    f"les ports de l'instance ne peuvent être liés : {_named(mine)}")
    return None


def carrier_trouble(trouble: Iterable[str]) -> list[str]:
    """The trouble lines (connection.embedded_trouble) that name what carries the heartbeats (CARRIERS)."""
    return [line for line in trouble if any(word in line.lower() for word in CARRIERS)]


def stuck_finding(name: str, seconds: float, task_state: Optional[str], host: Optional[str],
                  services: Optional[list[Health]], agents: Optional[list[Health]],
                  trouble: Optional[Callable[[], list[str]]] = None) -> Optional[str]:
    """The French verdict for a server `seconds` in BUILD, or None while nothing is conclusive.

    services/agents None: not readable (no admin role). A record naming a dead component is conclusive after
    GRACE seconds. trouble: what is frozen or dead inside the embedded cloud (connection.embedded_trouble),
    asked once a record is stale: a frozen neutron-rpc-server, RabbitMQ or database it names is what the stale
    records wait for, and is named before them (hF3, live: a frozen neutron-rpc-server blamed on the OVS agent,
    whose heartbeat went stale first)."""
    if seconds < GRACE or services is None:
        return None
    dead = dead_component(host, services, agents or [])
    if dead is None:
        return None
    carriers = carrier_trouble(trouble() if trouble is not None else [])
    if carriers:
        return (f"l'instance {name} reste en BUILD (étape {task_state or 'aucune'}) depuis {seconds:.0f} s ; "
                f"sur le cloud embarqué : {' ; '.join(carriers)} ; les signes de vie passent par lui, d'où, "
                f"par conséquence : {dead}")
    return f"l'instance {name} reste en BUILD (étape {task_state or 'aucune'}) depuis {seconds:.0f} s : {dead}"


def stalled_finding(name: str, seconds: float, task_state: Optional[str], trouble: list[str]) -> Optional[str]:
    """The French verdict for a server `seconds` in BUILD while the embedded cloud has services frozen or dead
    (`trouble`: connection.embedded_trouble()), or None: conclusive after EMBEDDED_GRACE seconds."""
    if seconds < EMBEDDED_GRACE or not trouble:
        return None
    return (f"l'instance {name} reste en BUILD (étape {task_state or 'aucune'}) depuis {seconds:.0f} s ; "
            f"sur le cloud embarqué : {' ; '.join(trouble)}")


def timeout_message(name: str, seconds: float, status: str, task_state: Optional[str],
                    admin_reason: Optional[str] = None, trouble: Iterable[str] = ()) -> str:
    """The French verdict when the time is up and no health record named a component (`trouble`: what is
    frozen or dead inside the embedded cloud, if anything)."""
    waits = STEP_WAITS.get(task_state, "nova-compute")
    said = (f"l'instance {name} n'est pas ACTIVE après {seconds:.0f} s (statut {status}, étape "
            f"{task_state or 'aucune'}) : elle attend {waits}")
    if admin_reason:
        said += f" ; état des services non lu ({admin_reason})"
    else:
        said += " ; les services de Nova et les agents de Neutron se disent tous en vie"
    trouble = list(trouble)
    if trouble:
        said += f" ; sur le cloud embarqué : {' ; '.join(trouble)}"
    return said


def delete_finding(server: str, waited: float, status: Optional[str], task_state: Optional[str],
                   trouble: Iterable[str] = ()) -> str:
    """The French verdict for a server still there `waited` s after Nova accepted its deletion (`trouble`: what
    is frozen or dead inside the embedded cloud, connection.embedded_trouble()). Nova's API only records the
    request (task_state deleting) and casts it to the server's nova-compute, which destroys the guest and
    frees its ports: a server stuck in « deleting » waits on that nova-compute (or its hypervisor)."""
    said = (f"le serveur {server} est toujours là {waited:.0f} s après que Nova a accepté sa suppression (statut "
            f"{status or '?'}, étape {task_state or 'aucune'})")
    if task_state == "deleting":
        said += " : nova-compute n'a pas exécuté la suppression (elle attend nova-compute et son hyperviseur)"
    trouble = list(trouble)
    if trouble:
        said += f" ; sur le cloud embarqué : {' ; '.join(trouble)}"
    return said


def read_health(admin) -> tuple[Optional[list[Health]], Optional[list[Health]], Optional[str]]:
    """(Nova services, Neutron agents, why not) through an admin connection; (None, None, reason) without."""
    if admin is None:
        return None, None, "pas d'identifiants admin"
    try:
        services = [Health(s.binary, s.host, s.state == "up", s.status != "disabled", str(s.updated_at or ""),
                           str(getattr(s, "disabled_reason", None) or "")) for s in admin.compute.services()]
    except Exception as exc:  # policy, API down: said, not guessed
        return None, None, f"liste des services de Nova illisible : {type(exc).__name__}"
    try:
        agents = [Health(a.binary, a.host, bool(a.is_alive), bool(a.is_admin_state_up),
                         str(a.last_heartbeat_at or "")) for a in admin.network.agents()]
    except Exception:  # a cloud without the agent extension (OVN…): Nova's records still count
        agents = []
    return services, agents, None


def probe_placement(conn) -> Optional[str]:
    """What is wrong with Placement as this connection reaches it (GET of its catalog address, its root:
    no token needed), or None when it answers or the catalog has none (nothing to say).

    The catalog's URL is asked directly: openstacksdk's `conn.placement` first discovers the service's
    versions, and a Placement that does not answer makes that discovery raise NotSupported ("no supported
    versions"), not a connection error (placement-api killed, live: "No valid host was found." was left
    bare)."""
    from keystoneauth1 import exceptions as ks

    try:
        url = conn.endpoint_for("placement")
    except Exception:  # keystoneauth's EndpointNotFound and kin: no Placement in this catalog
        return None
    if not url:
        return None
    try:
        answer = conn.session.get(url, authenticated=False, raise_exc=False, timeout=10)
    except (ks.ConnectFailure, ks.ConnectTimeout) as exc:
        return f"Placement ne répond pas ({type(exc).__name__} : {url})"
    except Exception:  # anything else is not evidence about Placement
        return None
    if answer.status_code >= 500:
        return f"Placement répond HTTP {answer.status_code} à GET {url}"
    return None


def error_cause(placement_problem: Optional[str], services: Optional[list[Health]],
                  agents: Optional[list[Health]]) -> Optional[str]:
    """Why a server went ERROR, when the evidence names a component: Placement not answering (probed only
    for Nova's "No valid host was found": the scheduler asks it for candidates), else a dead Nova service or
    Neutron agent (a port that could not be bound); None when neither says anything (a real lack of room, a
    bad image: Nova's own message stands)."""
    if placement_problem:
        return f"{placement_problem} : nova-scheduler n'a reçu aucun hôte candidat"
    if services:
        return dead_component(None, services, agents or [])
    return None


def health_word(admin, host: Optional[str] = None) -> Optional[str]:
    """The dead component the admin health records name now (see dead_component), or None: for any wait that
    wants to say *which* component when a guest gets no lease or a port stays DOWN (an L2 agent or
    neutron-rpc-server dead leaves the port unwired: "no DHCP lease" is then not the DHCP agent's fault)."""
    services, agents, _ = read_health(admin)
    return None if services is None else dead_component(host, services, agents or [])
