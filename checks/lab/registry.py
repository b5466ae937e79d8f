"""The named checks a lab definition can use: small, read-only, pure functions of a `Snapshot`.

A check answers "did the student do this?" as a list of *criteria* (e.g. for `server_booted`:
exists, active, flavor, image, network), each met or not with a French detail. The lab definition
chooses the points and, with `partial:`, how much each criterion is worth; without `partial:` the
task is all-or-nothing. When several resources could be the student's answer (three servers), the
check keeps the one that meets the most criteria, earlier criteria first.

Registry (name: parameters → criteria):
  keypair_exists          name (motif, optionnel)                        → exists
  security_group_allows   protocol=tcp, port=22, direction=ingress,
                          own_group=true, on_server=false                → [group], rule, [applied]
  server_booted           flavor, image, network, status=ACTIVE,
                          keypair=false, name (motif)                    → exists, active, [flavor], [image],
                                                                           [network], [keypair]
  volume_attached         size (Gio min., optionnel)                     → exists, [size], attached
  floating_ip_associated  network (optionnel)                            → allocated, [network], associated
  object_stored           container, object (motifs, optionnels)         → container, object
Criteria in brackets exist only when their parameter is given (or true). Name patterns are shell
globs (`mon-*`). A new check: a function `(snap, **params) -> Outcome` decorated with `@check(...)`.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from typing import Callable, Optional

from popek.checks.lab.snapshot import Snapshot


@dataclasses.dataclass(frozen=True)
class Criterion:
    name: str
    ok: bool
    detail: str     # French: what was found, or what is missing


@dataclasses.dataclass(frozen=True)
class Outcome:
    """criteria: in the check's order; found: French description of the resource judged ("" if none);
    unchecked: French reason when the check could not look (service absent), else ""."""
    criteria: tuple[Criterion, ...]
    found: str = ""
    unchecked: str = ""

    def met(self) -> set[str]:
        return {c.name for c in self.criteria if c.ok}


@dataclasses.dataclass(frozen=True)
class Param:
    type: type
    default: object = None
    required: bool = False
    help: str = ""


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    fn: Callable[..., Outcome]
    params: dict[str, Param]
    criteria: Callable[[dict], list[str]]   # the criteria for these (complete) parameters
    services: tuple[str, ...]                # service types the check reads
    doc: str = ""

    def complete(self, given: dict) -> dict:
        """`given` plus the defaults of the parameters not given."""
        return {**{k: p.default for k, p in self.params.items()}, **given}

    def run(self, snap: Snapshot, params: dict) -> Outcome:
        full = self.complete(params)
        missing = [s for s in self.services if s in snap.unavailable]
        if missing:
            return Outcome(tuple(Criterion(c, False, "") for c in self.criteria(full)),
                           unchecked="; ".join(snap.unavailable[s] for s in missing))
        return self.fn(snap, **full)


CHECKS: dict[str, Check] = {}


def check(name: str, params: dict[str, Param], criteria: Callable[[dict], list[str]], services: tuple[str, ...]):
    """Register a check under `name` (see module doc)."""
    def register(fn):
        CHECKS[name] = Check(name, fn, params, criteria, services, (fn.__doc__ or "").strip())
        return fn
    return register


def _best(candidates: list, judge: Callable[[dict], tuple[list[Criterion], str]], order: list[str],
          nothing: list[Criterion]) -> Outcome:
    """The candidate meeting the most criteria (earlier ones first); `nothing` when there is none."""
    if not candidates:
        return Outcome(tuple(nothing))
    judged = [judge(c) for c in candidates]

    def rank(item):
        crits, _found = item
        oks = tuple(c.ok for c in crits)
        return (sum(oks), oks)
    crits, found = max(judged, key=rank)
    assert [c.name for c in crits] == order, (crits, order)  # a check's criteria never depend on the data
    return Outcome(tuple(crits), found)


def _matches(name: Optional[str], pattern: Optional[str]) -> bool:
    return pattern is None or fnmatch.fnmatchcase(name or "", pattern)


def _names(items, key="name") -> str:
    return ", ".join(f"« {i[key]} »" for i in items) or "aucun"


# --- keypair ----------------------------------------------------------------------------------------

@check("keypair_exists", {"name": Param(str, help="motif du nom de la paire de clés")},
       lambda p: ["exists"], ("compute",))
def keypair_exists(snap: Snapshot, name=None) -> Outcome:
    """Une paire de clés SSH est enregistrée dans le projet (nommée selon le motif s'il est donné)."""
    found = [k for k in snap.keypairs if _matches(k["name"], name)]
    if found:
        k = found[0]
        return Outcome((Criterion("exists", True, f"paire de clés « {k['name']} » ({k.get('type') or 'ssh'})"),),
                       f"paire de clés « {k['name']} »")
    if name and snap.keypairs:
        why = f"aucune paire de clés nommée « {name} » (trouvées : {_names(snap.keypairs)})"
    else:
        why = "aucune paire de clés dans le projet"
    return Outcome((Criterion("exists", False, why),))


# --- security group ---------------------------------------------------------------------------------

def _rule_allows(rule: dict, protocol: str, port: int, direction: str) -> bool:
    if rule.get("direction") != direction:
        return False
    proto = str(rule.get("protocol") or "").lower()
    numbers = {"tcp": "6", "udp": "17", "icmp": "1"}
    if proto not in (protocol.lower(), numbers.get(protocol.lower(), "?")):
        return False
    low, high = rule.get("port_min"), rule.get("port_max")
    if low is None and high is None:      # every port of that protocol
        return True
    low = low if low is not None else 0
    high = high if high is not None else 65535
    return low <= port <= high


def _sg_criteria(p: dict) -> list[str]:
    return (["group"] if p["own_group"] else []) + ["rule"] + (["applied"] if p["on_server"] else [])


@check("security_group_allows",
       {"protocol": Param(str, "tcp"), "port": Param(int, 22), "direction": Param(str, "ingress"),
        "own_group": Param(bool, True, help="exiger un groupe créé par l'étudiant (pas « default »)"),
        "on_server": Param(bool, False, help="exiger que le groupe soit appliqué à une instance")},
       _sg_criteria, ("network",))
def security_group_allows(snap: Snapshot, protocol="tcp", port=22, direction="ingress", own_group=True,
                          on_server=False) -> Outcome:
    """Un groupe de sécurité autorise le trafic (ex. SSH : tcp/22 en entrée)."""
    what = f"{protocol}/{port} en {'entrée' if direction == 'ingress' else 'sortie'}"
    order = _sg_criteria({"own_group": own_group, "on_server": on_server})
    used = {g for s in snap.servers for g in s.get("security_groups", [])}

    def judge(g):
        crits = []
        if own_group:
            mine = g["name"] != "default"
            crits.append(Criterion("group", mine, f"groupe « {g['name']} »" if mine else
                                   "seul le groupe « default » existe : créez votre propre groupe de sécurité"))
        allows = any(_rule_allows(r, protocol, port, direction) for r in g["rules"])
        crits.append(Criterion("rule", allows, f"le groupe « {g['name']} » autorise {what}" if allows else
                               f"le groupe « {g['name']} » n'a pas de règle autorisant {what}"))
        if on_server:
            crits.append(Criterion("applied", g["name"] in used,
                                   "appliqué à une instance" if g["name"] in used else
                                   f"le groupe « {g['name']} » n'est appliqué à aucune instance"))
        return crits, f"groupe de sécurité « {g['name']} »"

    nothing = [Criterion(c, False, "aucun groupe de sécurité dans le projet") for c in order]
    return _best(snap.security_groups, judge, order, nothing)


# --- server -----------------------------------------------------------------------------------------

def _server_criteria(p: dict) -> list[str]:
    return ["exists", "active"] + [c for c in ("flavor", "image", "network") if p[c]] + \
        (["keypair"] if p["keypair"] else [])


@check("server_booted",
       {"flavor": Param(str, help="nom du gabarit attendu"), "image": Param(str, help="nom de l'image attendue"),
        "network": Param(str, help="nom d'un réseau où l'instance doit avoir un port"),
        "status": Param(str, "ACTIVE"), "keypair": Param(bool, False, help="exiger une paire de clés du projet"),
        "name": Param(str, help="motif du nom de l'instance")},
       _server_criteria, ("compute",))
def server_booted(snap: Snapshot, flavor=None, image=None, network=None, status="ACTIVE", keypair=False,
                  name=None) -> Outcome:
    """Une instance a été démarrée avec le gabarit, l'image et le réseau demandés."""
    order = _server_criteria({"flavor": flavor, "image": image, "network": network, "keypair": keypair})
    keys = {k["name"] for k in snap.keypairs}

    def judge(s):
        crits = [Criterion("exists", True, f"instance « {s['name']} »"),
                 Criterion("active", s["status"] == status,
                           f"état {s['status']}" + ("" if s["status"] == status else f" (attendu {status})"))]
        if flavor:
            crits.append(Criterion("flavor", s["flavor"] == flavor, f"gabarit « {s['flavor']} »" +
                                   ("" if s["flavor"] == flavor else f" au lieu de « {flavor} »")))
        if image:
            crits.append(Criterion("image", s["image"] == image, f"image « {s['image']} »" +
                                   ("" if s["image"] == image else f" au lieu de « {image} »")))
        if network:
            on = network in s["networks"]
            crits.append(Criterion("network", on, f"réseau « {network} »" if on else
                                   f"réseau(x) {', '.join(s['networks']) or 'aucun'} au lieu de « {network} »"))
        if keypair:
            ok = bool(s.get("key_name")) and s["key_name"] in keys
            crits.append(Criterion("keypair", ok, f"paire de clés « {s['key_name']} »" if ok else
                                   "démarrée sans paire de clés du projet (option --key-name)"))
        return crits, f"instance « {s['name']} » ({s['flavor']}, {s['image']}, {'/'.join(s['networks'])})"

    candidates = [s for s in snap.servers if _matches(s["name"], name)]
    none = "aucune instance" + (f" nommée « {name} »" if name else "") + " dans le projet"
    return _best(candidates, judge, order, [Criterion(c, False, none) for c in order])


# --- volume -----------------------------------------------------------------------------------------

def _volume_criteria(p: dict) -> list[str]:
    return ["exists"] + (["size"] if p["size"] else []) + ["attached"]


@check("volume_attached", {"size": Param(int, help="taille minimale en Gio")}, _volume_criteria,
       ("block-storage",))
def volume_attached(snap: Snapshot, size=None) -> Outcome:
    """Un volume existe et il est attaché à une instance du projet."""
    order = _volume_criteria({"size": size})
    servers = {s["id"]: s["name"] for s in snap.servers}

    def judge(v):
        label = v["name"] or v["id"][:8]
        crits = [Criterion("exists", True, f"volume « {label} »")]
        if size:
            crits.append(Criterion("size", (v["size"] or 0) >= size, f"taille {v['size']} Gio" +
                                   ("" if (v["size"] or 0) >= size else f" (au moins {size} Gio attendus)")))
        on = [servers[i] for i in v["attached_to"] if i in servers]
        crits.append(Criterion("attached", bool(on), f"attaché à « {on[0]} »" if on else
                               f"le volume « {label} » n'est attaché à aucune instance (état {v['status']})"))
        return crits, f"volume « {label} »"

    return _best(snap.volumes, judge, order, [Criterion(c, False, "aucun volume dans le projet") for c in order])


# --- floating IP ------------------------------------------------------------------------------------

def _fip_criteria(p: dict) -> list[str]:
    return ["allocated"] + (["network"] if p["network"] else []) + ["associated"]


@check("floating_ip_associated", {"network": Param(str, help="réseau externe d'où vient l'IP")},
       _fip_criteria, ("network",))
def floating_ip_associated(snap: Snapshot, network=None) -> Outcome:
    """Une IP flottante est allouée au projet et associée à une instance."""
    order = _fip_criteria({"network": network})
    servers = {s["id"]: s["name"] for s in snap.servers}

    def judge(f):
        crits = [Criterion("allocated", True, f"IP flottante {f['address']}")]
        if network:
            crits.append(Criterion("network", f["network"] == network, f"réseau « {f['network']} »" +
                                   ("" if f["network"] == network else f" au lieu de « {network} »")))
        target = servers.get(f.get("server_id") or "")
        crits.append(Criterion("associated", bool(target), f"associée à l'instance « {target} »" if target else
                               f"l'IP flottante {f['address']} n'est associée à aucune instance"))
        return crits, f"IP flottante {f['address']}"

    return _best(snap.floating_ips, judge, order,
                 [Criterion(c, False, "aucune IP flottante allouée au projet") for c in order])


# --- object storage ---------------------------------------------------------------------------------

@check("object_stored", {"container": Param(str, help="motif du nom du conteneur"),
                         "object": Param(str, help="motif du nom de l'objet")},
       lambda p: ["container", "object"], ("object-store",))
def object_stored(snap: Snapshot, container=None, object=None) -> Outcome:  # noqa: A002 - the YAML's word
    """Un objet est stocké dans un conteneur (Swift)."""
    def judge(c):
        objs = [o for o in c["objects"] if _matches(o["name"], object)]
        missing = (f"le conteneur « {c['name']} » ne contient pas d'objet « {object} »" if object
                   else f"le conteneur « {c['name']} » est vide")
        return ([Criterion("container", True, f"conteneur « {c['name']} »"),
                 Criterion("object", bool(objs), f"objet « {objs[0]['name']} »" if objs else missing)],
                f"conteneur « {c['name']} »")

    candidates = [c for c in snap.containers if _matches(c["name"], container)]
    none = "aucun conteneur" + (f" nommé « {container} »" if container else "") + " dans le stockage objet"
    return _best(candidates, judge, ["container", "object"],
                 [Criterion(c, False, none) for c in ("container", "object")])
