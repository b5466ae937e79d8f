"""Security groups at the API level (C25): the default group, rules added, and two properties checked
with Hypothesis against the real Neutron API:
  - every valid rule round-trips: what `create` was given, `show` returns, field by field;
  - every invalid rule is refused with a 4xx, and nothing is created.
"""
from __future__ import annotations

import ipaddress

#: The fields of a rule that a client sets (SDK attribute -> API field).
FIELDS = {"direction": "direction", "ether_type": "ethertype", "protocol": "protocol",
          "port_range_min": "port_range_min", "port_range_max": "port_range_max",
          "remote_ip_prefix": "remote_ip_prefix", "description": "description"}

#: TCP/22 in from anywhere (IPv4): the rule that lets this host SSH to a floating IP. `remote_ip_prefix`
#: can be replaced by `remote_group_id` (SSH from the members of a group only).
SSH_IN = {"direction": "ingress", "ether_type": "IPv4", "protocol": "tcp", "port_range_min": 22,
          "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}


def ssh_in(**change) -> dict:
    """SSH_IN with some fields changed; remote_group_id=G drops the prefix (a rule has one remote)."""
    fields = {**SSH_IN, **change}
    if "remote_group_id" in change:
        fields.pop("remote_ip_prefix")
    return fields


def ssh_only_group(conn, ledger, what: str = "sg"):
    """A new group whose only ingress rule is SSH_IN (its egress rules kept: DHCP, metadata): (group, rule)."""
    group = create_group(conn, ledger, what)
    return group, add_rule(conn, ledger, group, **SSH_IN)


def default_group(conn):
    """The project's `default` security group (Neutron creates it on the project's first call)."""
    groups = list(conn.network.security_groups(name="default", project_id=conn.current_project_id))
    if not groups:
        raise LookupError("pas de groupe de sécurité « default » pour ce projet")
    return groups[0]


def rules_of(conn, group) -> list[dict]:
    """The group's rules as plain dicts (API field names), sorted for stable display."""
    rules = conn.network.security_group_rules(security_group_id=group.id)
    return sorted((rule_dict(r) for r in rules), key=lambda r: (r["direction"], r["ethertype"], str(r["protocol"]),
                                                                 str(r["port_range_min"]), r["id"]))


def rule_dict(rule) -> dict:
    out = {api: getattr(rule, attr) for attr, api in FIELDS.items()}
    out["remote_group_id"] = rule.remote_group_id
    out["id"] = rule.id
    return out


def create_group(conn, ledger, what: str = "sg", keep_egress: bool = True):
    """A new security group (recorded). Neutron gives it two egress rules (IPv4/IPv6 anywhere);
    keep_egress=False deletes them so that the group starts empty."""
    group = ledger.create("security_group", what, lambda name: conn.network.create_security_group(
        name=name, description="popek"))
    if not keep_egress:
        for rule in conn.network.security_group_rules(security_group_id=group.id):
            conn.network.delete_security_group_rule(rule, ignore_missing=True)
    return group


def add_rule(conn, ledger, group, **fields):
    """Add a rule (SDK field names, e.g. direction, ether_type, protocol, port_range_min…), recorded."""
    entry = ledger.record("security_group_rule", f"rule@{group.name}")
    rule = conn.network.create_security_group_rule(security_group_id=group.id, **fields)
    entry.id = rule.id
    return rule


def http_status(exc: BaseException):
    """The HTTP status an SDK exception carries, or None."""
    return getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)


# --- Hypothesis strategies (imported lazily: hypothesis is only needed when the property runs) ---------

def valid_rules():
    """Rules Neutron must accept: protocol always set (so a rule never duplicates the group's others),
    ports only for tcp/udp with min <= max, ICMP type/code for icmp, a CIDR in normal form of the
    rule's address family."""
    from hypothesis import strategies as st

    def prefix(ether):
        # explicit classes: ip_network() would turn a small integer into an IPv4 network
        if ether == "IPv4":
            return st.builds(lambda a, n: str(ipaddress.IPv4Network((a, n), strict=False)),
                             st.integers(0, 2**32 - 1), st.integers(0, 32))
        return st.builds(lambda a, n: str(ipaddress.IPv6Network((a, n), strict=False)),
                         st.integers(0, 2**128 - 1), st.integers(0, 128))

    def ports(protocol):
        if protocol in ("tcp", "udp"):
            return st.tuples(st.integers(1, 65535), st.integers(1, 65535)).map(lambda p: tuple(sorted(p)))
        return st.tuples(st.integers(0, 255), st.integers(0, 255))  # icmp: type, code

    @st.composite
    def rule(draw):
        ether = draw(st.sampled_from(["IPv4", "IPv6"]))
        protocol = draw(st.sampled_from(["tcp", "udp", "icmp"] if ether == "IPv4" else ["tcp", "udp", "ipv6-icmp"]))
        low, high = draw(ports("icmp" if "icmp" in protocol else protocol))
        return {"direction": draw(st.sampled_from(["ingress", "egress"])), "ether_type": ether,
                "protocol": protocol, "port_range_min": low, "port_range_max": high,
                "remote_ip_prefix": draw(st.none() | prefix(ether)),
                "description": draw(st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs", "Cc")),
                                            max_size=40))}  # BMP: some databases store 3-byte UTF-8 only
    return rule()


def invalid_rules():
    """Rules Neutron must refuse (each breaks one rule of its API), with the broken field named."""
    from hypothesis import strategies as st

    base = {"direction": "ingress", "ether_type": "IPv4", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}

    def broken(field, values):
        return values.map(lambda v: (f"{field}={v!r}", {**base, field: v}))

    return st.one_of(
        broken("direction", st.sampled_from(["sideways", "in", "INGRESS", ""])),
        broken("ether_type", st.sampled_from(["IPv5", "ipx", "v4"])),
        broken("protocol", st.sampled_from(["tcpp", "not-a-protocol", "256", "-1"])),
        st.tuples(st.integers(2, 65535), st.integers(1, 65534)).filter(lambda p: p[0] > p[1]).map(
            lambda p: (f"port_range_min={p[0]} > port_range_max={p[1]}",
                       {**base, "port_range_min": p[0], "port_range_max": p[1]})),
        st.integers(65536, 10**6).map(lambda p: (f"port_range_max={p}", {**base, "port_range_max": p})),
        st.builds(lambda a, n: str(ipaddress.IPv6Network((a, n), strict=False)), st.integers(0, 2**128 - 1),
                  st.integers(1, 128)).map(lambda p: (f"remote_ip_prefix IPv6 {p} pour ethertype IPv4",
                                                      {**base, "remote_ip_prefix": p})),
        st.sampled_from(["10.0.0.0/33", "300.1.2.3/8", "not-a-cidr"]).map(
            lambda p: (f"remote_ip_prefix={p!r}", {**base, "remote_ip_prefix": p})),
    )


def round_trip_property(conn, ledger, group, max_examples: int = 25) -> list[dict]:
    """For generated valid rules: create -> show returns every field as given (a prefix as the same network,
    whatever its spelling); the rule is then deleted.

    Returns the examples tried (for the report). A mismatch raises AssertionError (Hypothesis shrinks it)."""
    from hypothesis import HealthCheck, settings
    from hypothesis import given as h_given

    tried = []

    @settings(max_examples=max_examples, database=None, deadline=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @h_given(valid_rules())
    def prop(fields):
        rule = add_rule(conn, ledger, group, **fields)
        try:
            shown = rule_dict(conn.network.get_security_group_rule(rule.id))
            for attr, api in FIELDS.items():
                want, got = fields[attr], shown[api]
                if attr == "description":
                    want, got = want or "", got or ""
                if attr == "remote_ip_prefix" and want and got:
                    # the same network may come back in another spelling: Neutron writes ::40:0/106
                    # as ::0.64.0.0/106 (IPv4-compatible notation)
                    want, got = ipaddress.ip_network(want, strict=False), ipaddress.ip_network(got, strict=False)
                assert got == want, f"{api}: créé avec {want!r}, relu {got!r}"
            tried.append({k: fields[k] for k in FIELDS})
        finally:
            conn.network.delete_security_group_rule(rule.id, ignore_missing=True)
            for entry in ledger.entries:
                if entry.id == rule.id:
                    entry.done = True
    prop()
    return tried


def refusal_property(conn, ledger, group, max_examples: int = 25) -> list[dict]:
    """For generated invalid rules: the API answers 4xx and the group's rules do not change.

    Returns [{"défaut", "statut"}] for the report."""
    from hypothesis import HealthCheck, settings
    from hypothesis import given as h_given

    before = {r["id"] for r in rules_of(conn, group)}
    seen = []

    @settings(max_examples=max_examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @h_given(invalid_rules())
    def prop(case):
        label, fields = case
        status, created = None, None
        try:
            created = add_rule(conn, ledger, group, **fields)
        except Exception as exc:
            status = http_status(exc)
            if status is None:
                raise
        finally:
            if created is not None:
                conn.network.delete_security_group_rule(created.id, ignore_missing=True)
        assert created is None, f"{label} : règle acceptée (id {created.id}) au lieu d'un refus 4xx"
        assert 400 <= status < 500, f"{label} : statut {status}, attendu 4xx"
        after = {r["id"] for r in rules_of(conn, group)}
        assert after == before, f"{label} : refusée ({status}) mais les règles ont changé"
        seen.append({"défaut": label, "statut": status})
    prop()
    return seen

