"""Images, flavors, keypairs and instances (C20, C21, C22, C26, C37), through openstacksdk.

Every resource is created through a `Ledger` (named with the run's prefix, deleted at the end)."""
from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from typing import Optional

from popek.checks.cloud.ledger import NAME_RE


class NothingToBoot(LookupError):
    """The cloud has no image or flavor to boot (a scenario that needs one is IGNORÉ, not ÉCHEC); any
    other LookupError (an IndexError, a missing key) is a fault, never taken for this."""

class NoRoom(NothingToBoot):
    """The project's quota leaves no room for what a scenario needs (instances, vCPU, RAM, volumes, their
    gigabytes): a limit the operator set for this project, not a fault of the cloud; the scenario is
    IGNORÉ with the quota, its limit and its use (steps.cloud_compute.room). A NothingToBoot, so that what
    already carries that one across a run's workers (the shared pair's kept error) carries this too."""


class Refused(NoRoom):
    """The cloud's policy refuses this account what a scenario would make (HTTP 403 on a network, a router):
    the operator's choice for this cloud, not a fault (a provider-network cloud, whose members plug their
    instances into the network the admin shared and may make no network or router of their own). IGNORÉ
    with the policy's words, as a quota is: a NoRoom, so every place that skips on one skips on this."""


#: oslo.policy's words when a rule refuses a request (PolicyNotAuthorized: « <rule> is disallowed by policy »)
POLICY_REFUSAL = "is disallowed by policy"


def policy_refused(said: str, rule: str) -> bool:
    """Whether `said` (a 403's words) is oslo.policy's refusal of `rule` itself or of one of its attributes
    (« (rule:create_network) is disallowed by policy », « rule:create_router:external_gateway_info … »),
    not of another call's rule (rule:create_subnet) and not a proxy's or a WAF's 403 page."""
    return POLICY_REFUSAL in said and re.search(rf"\brule:{re.escape(rule)}(?![\w])", said) is not None


@contextlib.contextmanager
def refused_by_policy(rule: str, what: str):
    """Inside: an HTTP 403 in which the cloud's policy refuses `rule` (policy_refused: Neutron's rule of the
    very call made inside, e.g. create_network) becomes Refused, « ce cloud refuse à ce compte `what` » with
    the API's words; any other 403 (a quota's, another call's rule, a page that is no policy's) and anything
    else goes through: a fault, not the operator's choice."""
    from openstack import exceptions as sdk_exc

    try:
        yield
    except sdk_exc.ForbiddenException as exc:
        said = (getattr(exc, "details", None) or str(exc)).strip()
        if quota_refusal(said) or not policy_refused(said, rule):
            raise
        raise Refused(f"ce cloud refuse à ce compte {what} (HTTP 403 : {said[:200]}) : la politique de ce "
                      "cloud, pas une panne") from exc


#: Nova's absolute limits (GET /limits, openstacksdk's names): (what a scenario asks, the limit, the use,
#: the quota's name in `openstack quota set`, its unit in French)
NOVA_LIMITS = (("instances", "instances", "instances_used", "instances", "instance(s)"),
               ("cores", "total_cores", "total_cores_used", "cores", "vCPU"),
               ("ram", "total_ram", "total_ram_used", "ram", "Mio"))
#: Cinder's absolute limits (GET /limits of the volume API), the same way.
CINDER_LIMITS = (("volumes", "max_total_volumes", "total_volumes_used", "volumes", "volume(s)"),
                 ("gigabytes", "max_total_volume_gigabytes", "total_gigabytes_used", "gigabytes", "Gio"))


def _count(value) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _limit(absolute, key) -> Optional[int]:
    """One of `absolute`'s limits (a mapping, or openstacksdk's AbsoluteLimits) as a count, else None."""
    return _count(absolute.get(key) if isinstance(absolute, dict) else getattr(absolute, key, None))


def shortfalls(absolute, needs: dict, table=NOVA_LIMITS) -> list[str]:
    """The quotas of `table` that leave less room than `needs` asks ({"instances": 2, "cores": 2, "ram":
    512…}), one French phrase each: "quota instances : limite 1, en usage 1, il en faut 2 de plus".
    absolute: the limits as a mapping or an object (openstacksdk's AbsoluteLimits) of `table`'s names.
    A limit that is unknown (absent, not a number) or unlimited (-1, any negative) is no shortfall."""
    found = []
    for need, limit_key, used_key, quota, unit in table:
        want, limit, used = _count(needs.get(need)) or 0, _limit(absolute, limit_key), _limit(absolute, used_key)
        if want <= 0 or limit is None or limit < 0:
            continue
        if limit - (used or 0) < want:
            found.append(f"quota {quota} : limite {limit} {unit}, en usage {used if used is not None else '?'}, "
                         f"il en faut {want} de plus")
    return found


def room_reason(nova, cinder, needs: dict, service_words: str = "ce scénario") -> Optional[str]:
    """Why the project has no room for `needs` (French), from Nova's and Cinder's absolute limits
    (`nova`, `cinder`: each None when unknown); None when every quota asked about leaves room."""
    lacking = (shortfalls(nova, needs, NOVA_LIMITS) if nova is not None else []) + \
        (shortfalls(cinder, needs, CINDER_LIMITS) if cinder is not None else [])
    if not lacking:
        return None
    services = " et ".join(name for name, table, limits in (("Nova", NOVA_LIMITS, nova), ("Cinder", CINDER_LIMITS, cinder))
                           if limits is not None and shortfalls(limits, needs, table))
    return (f"le quota de ce projet ne laisse pas la place dont {service_words} a besoin ({services}, "
            f"{' ; '.join(lacking)}) : une limite du projet, pas une panne du cloud")


def server_needs(flavor, count: int = 1) -> dict:
    """quota_reason()'s needs for `count` servers of `flavor` (its vcpus and ram; unknown: 0)."""
    vcpus, ram = _count(getattr(flavor, "vcpus", None)) or 0, _count(getattr(flavor, "ram", None)) or 0
    return {"instances": count, "cores": count * vcpus, "ram": count * ram}


def quota_reason(conn, instances: int = 0, cores: int = 0, ram: int = 0, volumes: int = 0, gigabytes: int = 0,
                 what: str = "ce scénario") -> Optional[str]:
    """Why this project has no room for what a scenario is about to make (French: the quota, its limit, its
    use), read from the APIs (`GET /limits` of Nova for instances, cores, RAM in MiB; of Cinder for volumes
    and their gigabytes; floating IPs: network.floating_ip_quota_reason). None when there is room, and when a limit is unknown:
    unlimited (-1), or the call refused (a policy, an older API): the scenario then meets the cloud's own
    answer (a refusal for lack of quota is still read as such: NoRoom, from boot() and wait_active())."""
    nova = cinder = None
    if instances or cores or ram:
        try:
            nova = conn.compute.get_limits().absolute
        except Exception:  # policy, a cloud without it: not known, not a reason
            nova = None
    if volumes or gigabytes:
        try:
            cinder = conn.block_storage.get_limits().absolute
        except Exception:
            cinder = None
    return room_reason(nova, cinder, {"instances": instances, "cores": cores, "ram": ram, "volumes": volumes,
                                      "gigabytes": gigabytes}, what)


def use_text(absolute, table=NOVA_LIMITS) -> Optional[str]:
    """ "quota instances 1/1, cores 1/20, ram 256/51200 Mio (en usage/limite)" of the limits given (a
    mapping or openstacksdk's AbsoluteLimits), -1 said "illimité"; None when none is known."""
    parts = []
    for _, limit_key, used_key, quota, unit in table:
        limit, used = _limit(absolute, limit_key), _limit(absolute, used_key)
        if limit is None:
            continue
        shown = "illimité" if limit < 0 else f"{limit}" + (" Mio" if unit == "Mio" else " Gio" if unit == "Gio" else "")
        parts.append(f"{quota} {used if used is not None else '?'}/{shown}")
    return f"quota {', '.join(parts)} (en usage/limite)" if parts else None


def nova_use(conn) -> Optional[str]:
    """use_text() of Nova's limits for this project (GET /limits), None when they cannot be read."""
    try:
        return use_text(conn.compute.get_limits().absolute)
    except Exception:
        return None


#: Nova's OverQuota for instances (nova/exception.py TooManyInstances), in a refused `server create` (HTTP
#: 403) and in the fault of a server the conductor's recheck of the quota put in ERROR at build time
#: (code 413: OverQuota's). Several resources are listed comma-separated, each with its numbers in order.
NOVA_OVER = re.compile(r"Quota exceeded for (?P<overs>[a-z_]+(?:, [a-z_]+)*): Requested (?P<req>[\d -]+(?:, [\d -]+)*),"
                       r" but already used (?P<used>\d+(?:, \d+)*) of (?P<allowed>\d+(?:, \d+)*)")
#: Unified limits (Keystone's, through oslo.limit): "Resource servers is over limit of 1 due to current
#: usage 1 and delta 1", in Nova's TooManyInstances(str(ProjectOverLimit)).
UNIFIED_OVER = re.compile(r"Resource (?P<name>\S+) is over limit of (?P<limit>\d+) due to current usage "
                          r"(?P<usage>\d+) and delta (?P<delta>\d+)")
#: Cinder's refusals of a volume for lack of quota (HTTP 413): VolumeLimitExceeded,
#: VolumeSizeExceedsAvailableQuota (cinder/exception.py).
CINDER_OVER = re.compile(r"Maximum number of volumes allowed \((?P<allowed>\d+)\) exceeded for quota "
                         r"'(?P<name>[^']+)'|Requested volume or snapshot exceeds allowed (?P<gname>\S+) quota\. "
                         r"Requested (?P<req>\d+)G, quota is (?P<quota>\d+)G and (?P<used>\d+)G has been consumed")


def quota_refusal(message: Optional[str]) -> Optional[str]:
    """The numbers of a refusal for lack of quota, in French ("quota instances : limite 1, en usage 1,
    demandé(s) 1"), when `message` (Nova's or Cinder's answer, a server's fault) is one and its numbers do
    show the project over its limit; None for anything else: another error, or a "quota exceeded" whose
    own numbers leave room (a cloud that refuses within the quota fails the scenario)."""
    text = message or ""
    found = NOVA_OVER.search(text)
    if found:
        overs, reqs, useds, alloweds = (found[k].split(", ") for k in ("overs", "req", "used", "allowed"))
        if not len(overs) == len(reqs) == len(useds) == len(alloweds):
            return None
        parts, over = [], False
        for name, req, used, allowed in zip(overs, reqs, useds, alloweds):
            req_n = int(req.split("-")[0].strip())  # "1-3": a min-max count, the min is what was refused
            over = over or int(used) + req_n > int(allowed)
            parts.append(f"quota {name} : limite {allowed}, en usage {used}, demandé(s) {req.strip()}")
        return " ; ".join(parts) if over else None
    items = UNIFIED_OVER.findall(text)
    if items:
        if not any(int(usage) + int(delta) > int(limit) for _, limit, usage, delta in items):
            return None
        return " ; ".join(f"limite unifiée {name} : limite {limit}, en usage {usage}, demandé(s) {delta}"
                          for name, limit, usage, delta in items)
    found = CINDER_OVER.search(text)
    if found and found["name"]:
        return f"quota {found['name']} : limite {found['allowed']} atteinte"
    if found and int(found["used"]) + int(found["req"]) > int(found["quota"]):
        return (f"quota {found['gname']} : limite {found['quota']} Gio, en usage {found['used']} Gio, "
                f"demandé(s) {found['req']} Gio")
    return None


def server_refusal(conn, status, said: str) -> Optional[str]:
    """The French reason when Nova refused a server create (HTTP `status`, its message `said`) for lack of
    quota: its own OverQuota whose numbers show the project over its limit (quota_refusal), or its
    « Maximum number of ports exceeded » that Neutron's quota details confirm (neutron_quota.nova_port_refusal);
    None for any other refusal (the scenario's failure)."""
    from popek.checks.cloud import neutron_quota

    over = quota_refusal(said) if status in (403, 413) else None
    if over:
        return (f"refusé par Nova faute de quota (HTTP {status}) : {over} ; Nova : « {said} » : une limite du "
                "projet, pas une panne du cloud")
    return neutron_quota.nova_port_refusal(conn, status, said)


#: The HTTP status in the `openstack` client's error text: "… (HTTP 403) (Request-ID: …)" (the older
#: clients' format) or "ForbiddenException: 403: Client Error for url: …" (openstacksdk's, OSC 6+)
CLI_STATUS = re.compile(r"\(HTTP (?P<a>\d{3})\)|\b(?P<b>\d{3}): (?:Client|Server) Error")


def cli_refusal(conn, text: str) -> Optional[str]:
    """server_refusal() of the `openstack server create` client's error text (its status read from it)."""
    found = CLI_STATUS.search(text or "")
    return server_refusal(conn, int(found["a"] or found["b"]), text) if found else None


def api_refusal(exc) -> Optional[str]:
    """The French reason when `exc` is an API's refusal for lack of quota (openstacksdk's HttpException,
    HTTP 403 or 413, whose message quota_refusal() reads as over the limit: Nova's OverQuota, Cinder's
    VolumeLimitExceeded…), None for anything else."""
    status = getattr(exc, "status_code", None)
    if status not in (403, 413):
        return None
    said = getattr(exc, "details", None) or str(exc)
    over = quota_refusal(said)
    return (f"refusé par l'API faute de quota (HTTP {status}) : {over} ; réponse : « {said} » : une limite du "
            "projet, pas une panne du cloud") if over else None


#: The code Nova gives OverQuota (nova/exception.py), kept in a server's fault.
OVER_QUOTA_CODE = 413


def fault_quota(fault) -> Optional[str]:
    """quota_refusal() of a server's fault (`server.fault`: code, message), when Nova recorded an OverQuota
    (code 413): the build that its conductor's recheck of the quota refused (a race between two boots of
    the same project, each accepted by the API). Also the class name alone that Nova records when the
    recheck of unified limits raised it raw ("ProjectOverLimit"): the numbers are then read from the limits
    by the caller. None for every other fault."""
    fault = fault or {}
    message, code = (fault.get("message") or "").strip(), fault.get("code")
    if message == "ProjectOverLimit":
        return "limite unifiée du projet dépassée (ProjectOverLimit)"
    if code != OVER_QUOTA_CODE:
        return None
    return quota_refusal(message)


#: Glance property the embedded cloud sets on its SSH-ready initramfs image (no cloud-init inside).
TINY_MARKER = "popek_ready_marker"


def images(conn) -> list:
    """Active images the project can boot; AssertionError naming the image API's catalog address when
    it does not answer (the SDK alone says "exists but does not have any supported versions")."""
    from keystoneauth1 import exceptions as ks
    from openstack import exceptions as sdk_exc

    try:
        return [i for i in conn.image.images() if i.status == "active"]
    except (sdk_exc.NotSupported, ks.ConnectFailure, ks.ConnectTimeout, ks.DiscoveryFailure) as exc:
        raise AssertionError(f"le service d'images (Glance) ne répond pas à son adresse du catalogue "
                             f"{conn.endpoint_for('image')} : {type(exc).__name__} : {exc}") from None


#: Architectures of the hosts the course is about (x86, with or without KVM): an image tagged with another one
#: (`architecture=aarch64`) is scheduled by Nova's ImagePropertiesFilter to hosts of its own kind only.
X86_ARCHS = ("x86_64", "amd64", "i686", "x86")


def special_boot(image) -> list[str]:
    """What `image` asks of a host beyond a plain disk on x86 under QEMU/KVM, as `key=value` (Glance's
    properties): another architecture or hypervisor (Nova's ImagePropertiesFilter), UEFI or secure-boot firmware
    (which a host without OVMF, or whose libvirt refuses Nova's loader, cannot give), required traits, an ISO
    (booted as a CD, no cloud-init); [] for a plain image."""
    props = getattr(image, "properties", None) or {}

    def prop(key):
        return getattr(image, key, None) or props.get(key)
    found = []
    arch, hypervisor = prop("architecture"), prop("hypervisor_type") or prop("img_hv_type")
    if arch and str(arch).lower() not in X86_ARCHS:
        found.append(f"architecture={arch}")
    if hypervisor and str(hypervisor).lower() not in ("qemu", "kvm"):
        found.append(f"hypervisor_type={hypervisor}")
    for key, value in (("hw_firmware_type", "uefi"), ("os_secure_boot", "required")):
        if str(prop(key) or "").lower() == value:
            found.append(f"{key}={value}")
    found += sorted(f"{k}={v}" for k, v in props.items() if k.startswith("trait") and str(v).lower() == "required")
    if (getattr(image, "disk_format", None) or "") == "iso":
        found.append("disk_format=iso")
    return found


def pick_image(conn, cloud_init: bool = False, avoid=()):
    """An image to boot: the smallest active one, or (cloud_init=True) one that runs cloud-init.

    An image is taken as running cloud-init unless it is popek's initramfs image (property
    popek_ready_marker) or a CirrOS (which has its own tiny init). Images of popek runs (another run's
    upload) and kernel/ramdisk images are never picked. Raises NothingToBoot if none fits.
    avoid: ids of images this run found not booting (probe.unbootable: the dataplane probe booted them, they
    stayed silent, another image booted): passed over while another one fits; when none else does, the
    smallest of them is still taken (its scenario then fails on it, never IGNORÉ « rien à démarrer »)."""
    # never another run's image (a benchmark's variant, a test's upload: named popek-<run id>-…), nor a
    # kernel or ramdisk that Glance keeps beside a bootable disk
    candidates = [i for i in images(conn) if not NAME_RE.match(i.name or "")
                  and (i.container_format or "bare") not in ("aki", "ari")
                  and (i.disk_format or "raw") not in ("aki", "ari")]
    if cloud_init:
        candidates = [i for i in candidates
                      if TINY_MARKER not in (i.properties or {}) and "cirros" not in (i.name or "").lower()]
    if not candidates:
        raise NothingToBoot("aucune image active" + (" avec cloud-init" if cloud_init else ""))
    # the images this run found not booting first: filtering special ones first would keep an avoided plain
    # image over the special one that booted beside it, and boot it again (hR F5)
    booting = ([i for i in candidates if i.id not in avoid] or candidates) if avoid else candidates
    # an aarch64 or a UEFI image smaller than the rest was picked and C21 failed (« No valid host », libvirt's
    # « loader attribute 'secure' … ») on a cloud whose other images boot (hA6 live 19:51, 19:56): only when no
    # plain image is there
    booting = [i for i in booting if not special_boot(i)] or booting
    return min(booting, key=lambda i: (i.size or 0, i.name or ""))


def flavors(conn) -> list:
    """Every flavor visible to the project, with vcpus, ram (MiB) and disk (GiB)."""
    return list(conn.compute.flavors(details=True))


def flavor_table(items) -> list[dict]:
    """The flavors as the course defines them (vCPU, RAM, disk), by RAM; a disk of 0 is said for what it
    is in Nova: no fixed root disk, the instance's disk takes the image's size."""
    return [{"nom": f.name, "vcpus": f.vcpus, "ram (Mio)": f.ram,
             "disque (Gio)": f.disk if f.disk else "0 (taille de l'image)"}
            for f in sorted(items, key=lambda f: (f.ram, f.vcpus, f.disk, f.name))]


def flavor_defects(items) -> list[str]:
    """The flavors that are not a size of CPU, RAM and disk: vCPU or RAM not a positive integer, disk
    not an integer >= 0 (0 is Nova's "size of the image"). One French line each."""
    bad = []
    for f in items:
        wrong = [what for what, value, low in (("vCPU", f.vcpus, 1), ("RAM", f.ram, 1), ("disque", f.disk, 0))
                 if not isinstance(value, int) or isinstance(value, bool) or value < low]
        if wrong:
            bad.append(f"{f.name} ({f.vcpus} vCPU, {f.ram} Mio, {f.disk} Gio) : {', '.join(wrong)} invalide(s)")
    return bad


#: Extra specs by which a flavor asks the scheduler for more than vCPU, RAM and disk (Nova's placement
#: resources and traits, a PCI or accelerator device, an aggregate or host capability, pinned CPUs, huge
#: pages, a NUMA layout): an operator's GPU or dedicated-host flavor, which only some hosts (or none) satisfy.
SCHEDULING_SPECS = ("resources", "trait", "pci_passthrough:", "accel:", "aggregate_instance_extra_specs:",
                    "capabilities:", "hw:cpu_policy", "hw:cpu_thread_policy", "hw:mem_page_size", "hw:numa_")


def scheduling_specs(flavor) -> list[str]:
    """The extra specs of `flavor` (as Nova lists them since microversion 2.61) in SCHEDULING_SPECS."""
    return sorted(k for k in (getattr(flavor, "extra_specs", None) or {}) if k.startswith(SCHEDULING_SPECS))


def pick_flavor(conn, image, min_ram: int = 0, vcpus: int = 1):
    """The smallest flavor big enough for `image` (its min_ram/min_disk) and `min_ram` MiB, among those with
    at least `vcpus` vCPUs when the cloud has one (else the smallest that fits); one whose extra specs ask the
    scheduler for a device, a trait or pinned CPUs (scheduling_specs) only when no other fits: a GPU flavor
    `resources:VGPU=1` smaller than the rest was picked and C21 failed « No valid host » (hA6, 2026-12-07)."""
    need_ram = max(image.min_ram or 0, min_ram)
    need_disk = image.min_disk or 0
    # the disk Nova writes is the image's virtual size (a qcow2 of 300 MB may hold a 3 GiB disk): libvirt refuses a
    # flavor's root disk smaller than it at spawn (« Flavor's disk is too small for requested image »), an ERROR
    # that is popek's choice, not the cloud's fault
    size = max(image.size or 0, getattr(image, "virtual_size", None) or 0)
    size_gib = (size + 2**30 - 1) // 2**30
    fits = [f for f in flavors(conn) if f.ram >= need_ram and (f.disk >= max(need_disk, size_gib) or f.disk == 0)]
    fits = [f for f in fits if f.disk > 0] or fits  # disk 0 means "the image's size", fine but less telling
    fits = [f for f in fits if not scheduling_specs(f)] or fits     # before the vCPUs: fewer beat none booting
    fits = [f for f in fits if f.vcpus >= vcpus] or fits
    if not fits:
        raise NothingToBoot(f"aucun gabarit assez grand pour l'image {image.name} ({need_ram} Mio, {need_disk} Gio)")
    return min(fits, key=lambda f: (f.ram, f.vcpus, f.disk))


def ssh_keypair() -> tuple[str, str]:
    """A fresh Ed25519 key: (private key in OpenSSH PEM, public key line). The private key never leaves
    this process except to paramiko; it is fed to the redactor."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    from popek.checks.secrets import REDACT

    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    REDACT.add(private)
    return private, public


def md5_fingerprint(public_key: str) -> str:
    """The fingerprint Nova stores for an SSH public key: MD5 of the key blob, colon-separated hex."""
    blob = base64.b64decode(public_key.split()[1])
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def create_keypair(conn, ledger, public_key: str):
    """Import `public_key` as a keypair named with the run's prefix."""
    return ledger.create("keypair", "key", lambda name: conn.compute.create_keypair(name=name, public_key=public_key),
                         id_attr="name")


def existing_network(conn, own: Optional[str] = None):
    """An existing non-external network with a subnet, ACTIVE, that the project owns or shares, or None:
    the project's own first, else one of this run's (`own`: the caller's ledger prefix, see ours). Never
    another one named like popek's runs (popek-<8 hex>-…: another run's, or another worker's scenario's,
    which their cleanup deletes, maybe under the instance booting on it)."""
    usable = [net for net in conn.network.networks()
              if not net.is_router_external and net.subnet_ids and net.status == "ACTIVE"]
    return next((net for net in usable if not NAME_RE.match(net.name or "")), None) \
        or next((net for net in usable if ours(net.name or "", own)), None)


def ours(name: str, own: Optional[str]) -> bool:
    """Whether `name` is this run's and outlives the caller's use: `own` (the caller's ledger prefix,
    popek-<run>-<worker>) names it (that worker's scenarios run one at a time: what is left is its run
    ledger's or the current scenario's), or the run's shared resources' prefix does (popek-<run>-run-…,
    kept until the run's last worker ends: shared.RunShared)."""
    found = NAME_RE.match(f"{own}-") if own else None
    return bool(found) and (name.startswith(f"{own}-") or name.startswith(f"popek-{found.group(1)}-run-"))


#: What create_network() makes in Neutron (its quota names): a network, a subnet, the subnet's DHCP port
NETWORK_NEEDS = {"network": 1, "subnet": 1, "port": 1}


def network_needs(existing, servers: int = 1) -> dict:
    """Neutron's quotas that `servers` servers on the project's network take (one port each), plus, when
    there is no `existing` network to use, the network create_network() makes (NETWORK_NEEDS)."""
    needs = {"network": 0, "subnet": 0, "port": 0} if existing is not None else dict(NETWORK_NEEDS)
    needs["port"] += servers
    return needs


def project_network(conn, ledger, cidr: str = "10.77.0.0/24", existing=None):
    """A network the project can plug instances into: `existing`, or an existing non-external one it owns
    or shares, or this run's (existing_network), else a new one with a subnet (both recorded in the ledger)."""
    return existing or existing_network(conn, own=getattr(ledger, "prefix", None)) or create_network(conn, ledger, cidr)


def create_network(conn, ledger, cidr: str = "10.77.0.0/24"):
    """A new network with one IPv4 subnet (DHCP on), recorded in the ledger. Refused when the cloud's policy
    refuses this account a network (a provider-network cloud)."""
    with refused_by_policy("create_network", "la création d'un réseau (Neutron, create_network)"):
        net = ledger.create("network", "net", lambda name: conn.network.create_network(name=name))
    ledger.create("subnet", "subnet", lambda name: conn.network.create_subnet(
        name=name, network_id=net.id, ip_version=4, cidr=cidr, enable_dhcp=True))
    return conn.network.get_network(net.id)


def boot(conn, ledger, what: str, image, flavor, network, key_name: Optional[str] = None,
         user_data: Optional[str] = None, security_groups: Optional[list[str]] = None,
         wait: bool = True, timeout: float = 300, admin=None, admin_reason: Optional[str] = None):
    """`openstack server create --flavor F --image I --net N NAME` (C37) through the SDK; waits for ACTIVE
    (admin, admin_reason: see wait_active).

    Returns the server (re-read once ACTIVE). user_data: text (base64-encoded here, as the API wants)."""
    kwargs = {"flavor_id": flavor.id, "image_id": image.id, "networks": [{"uuid": network.id}]}
    if key_name:
        kwargs["key_name"] = key_name
    if user_data:
        kwargs["user_data"] = base64.b64encode(user_data.encode()).decode()
    if security_groups:
        kwargs["security_groups"] = [{"name": g} for g in security_groups]
    from openstack import exceptions as sdk_exc

    from popek.checks.cloud import components, connection
    from popek.checks.cloud.neutron_quota import NOVA_PORTS
    for attempt in (1, 2):
        try:
            server = ledger.create("server", what, lambda name: conn.compute.create_server(name=name, **kwargs))
            break
        except sdk_exc.HttpException as exc:  # refused by the API (quota, policy, bad request): the verdict says why
            said = exc.details or str(exc)
            over = server_refusal(conn, exc.status_code, said)
            if over:                          # the project's limit, not a fault
                raise NoRoom(f"server create {over}") from None
            if attempt == 1 and exc.status_code == 403 and NOVA_PORTS in said:
                # Nova counted the project's ports full, Neutron's details read just after show room: another
                # scenario of the run freed a port in between (live: the dataplane probe's network deleted
                # after its own refusal). Asked once more: a refusal then is read again, confirmed or not.
                continue
            raise AssertionError(f"server create refusé par Nova (HTTP {exc.status_code}) : {said}"
                                 + components.behind_server_error(exc.status_code, connection.embedded_trouble)
                                 + (" (deux fois ; les détails du quota Neutron montrent de la place)"
                                    if attempt == 2 else "")) from None
    if wait:
        server = wait_active(conn, server, timeout, admin, admin_reason)
    return server


def listed_in(conn, server, status: str) -> Optional[bool]:
    """Whether Nova lists `server` among the project's servers in `status` (BUILD, ERROR, ACTIVE…), asked
    through the list without details (`GET /servers?status=S&name=^NAME$`, the name a regular expression in
    Nova): nova-api answers it from its database alone, where `GET /servers/<id>` also asks Neutron for the
    server's security groups (its ports, then the groups: two requests each time). The answer is the
    server's own id in the list, whatever the name filter lets through. None when the list cannot be read
    (ask the server itself then)."""
    try:
        listed = conn.compute.servers(details=False, status=status, name=f"^{re.escape(server.name or '')}$")
        return any(s.id == server.id for s in listed)
    except Exception:  # a cloud that refuses the filter, an API hiccup: the caller reads the server instead
        return None


def wait_active(conn, server, timeout: float = 300, admin=None, admin_reason: Optional[str] = None):
    """Wait until `server` is ACTIVE; an ERROR state raises with the fault Nova recorded. A server stuck in
    BUILD raises as soon as the cloud's health records (admin: Nova services, Neutron agents) name a dead
    component, or, on the embedded cloud, stuck.EMBEDDED_GRACE s in, with a service of it found frozen or
    dead, else at `timeout` with the step it never left (checks/cloud/stuck.py)."""
    import time

    from popek.checks.cloud import connection, stuck, waits
    started = time.monotonic()
    seen = {"server": server, "finding": None, "health_at": 0.0, "trouble_at": 0.0, "left_build": False}
    health = (None, None, "pas encore lu" if admin is not None else admin_reason or "pas d'identifiants admin")

    def fetch():
        nonlocal health
        took = time.monotonic() - started
        # while Nova still lists it in BUILD, the cheap list says so (no Neutron request behind it); the
        # server itself is read once it left BUILD (ACTIVE, ERROR, gone, or a reboot's states: read each
        # time from then on), and whenever the health records are due (its task_state and host are needed)
        due = (admin is not None and took >= stuck.GRACE and time.monotonic() - seen["health_at"] >= 5) or \
            (took >= stuck.EMBEDDED_GRACE and time.monotonic() - seen["trouble_at"] >= 5)
        if not due and not seen["left_build"] and listed_in(conn, server, "BUILD"):
            return None  # still in BUILD
        current = conn.compute.get_server(server.id)
        seen["server"] = current
        seen["left_build"] = seen["left_build"] or current.status != "BUILD"
        if current.status == "BUILD" and admin is not None and took >= stuck.GRACE \
                and time.monotonic() - seen["health_at"] >= 5:
            seen["health_at"] = time.monotonic()
            health = stuck.read_health(admin)
            seen["finding"] = stuck.stuck_finding(server.name, took, current.task_state,
                                                  getattr(current, "compute_host", None), health[0], health[1],
                                                  connection.embedded_trouble)
        # the health records alive, yet no progress: a service of the embedded cloud frozen or dead (its pid
        # files and /proc) is what the boot waits for (ovs-vswitchd frozen: os-vif waits on it, every agent
        # alive); with or without admin, since this evidence is the host's own
        if current.status == "BUILD" and seen["finding"] is None and took >= stuck.EMBEDDED_GRACE \
                and time.monotonic() - seen["trouble_at"] >= 5:
            seen["trouble_at"] = time.monotonic()
            seen["finding"] = stuck.stalled_finding(server.name, took, current.task_state,
                                                    connection.embedded_trouble())
        return current

    def ready(current) -> bool:
        return current is not None and (current.status in ("ACTIVE", "ERROR") or seen["finding"] is not None)

    last = waits.poll(fetch, ready, timeout, 1)
    if last is None or (last.status not in ("ACTIVE", "ERROR") and seen["finding"] is None):
        last = conn.compute.get_server(server.id)  # the time is up: the message says the server as it is now
    if seen["finding"]:
        raise AssertionError(seen["finding"])
    if last.status == "ERROR":
        said = ((getattr(last, "fault", None) or {}).get("message") or "?").strip()
        over = fault_quota(getattr(last, "fault", None))
        if over:    # accepted by the API, refused by the conductor's recheck of the quota (another boot won)
            now = nova_use(conn)
            raise NoRoom(f"l'instance {server.name} est passée en ERROR faute de quota : Nova l'a refusée à la "
                         f"revérification du quota au démarrage ({over} ; Nova : « {said} »), une autre instance "
                         f"du projet ayant pris la place entre-temps" + (f" ; en ce moment : {now}" if now else "")
                         + " : une limite du projet, pas une panne du cloud")
        # "No valid host" is the scheduler's answer to a Placement or a compute that is gone; "Binding
        # failed", "Exceeded maximum number of retries": an agent… the health records say which
        services, agents, _ = stuck.read_health(admin) if admin is not None else (None, None, None)
        placement = stuck.probe_placement(conn) if "No valid host" in said else None
        why = stuck.error_cause(placement, services, agents) or \
            (computes_disabled(services) if "No valid host" in said else None)
        if not why:
            trouble = connection.embedded_trouble()
            why = f"sur le cloud embarqué : {' ; '.join(trouble)}" if trouble else None
        said += f" — {why}" if why else ""
        raise AssertionError(f"l'instance {server.name} est passée en ERROR : {said}")
    if last.status != "ACTIVE":
        raise AssertionError(stuck.timeout_message(server.name, time.monotonic() - started, last.status,
                                                   last.task_state, health[2], connection.embedded_trouble()))
    return last


def computes_disabled(services) -> Optional[str]:
    """Why the scheduler found no host when every nova-compute is disabled in Nova's service records
    (`GET /os-services`, admin: status disabled; stuck.read_health's records, `enabled` False): the
    scheduler leaves a disabled compute out. None when the records are unknown or one is enabled.

    Each one's disabled_reason is said: "AUTO: …" is nova-compute disabling itself (the libvirt driver
    when its connection to libvirtd is lost, and enabling itself again when it is back): the cause is
    that, not the switch. (Build failures no longer disable a compute since Nova 18/Rocky:
    consecutive_build_service_disable_threshold only feeds the BuildFailureWeigher.)"""
    computes = [s for s in services or [] if s.binary == "nova-compute"]
    if not computes or any(s.enabled for s in computes):
        return None

    def one(s):
        reason = getattr(s, "reason", "") or ""
        if reason.upper().startswith("AUTO:"):
            return (f"{s.binary}@{s.host} désactivé par nova-compute lui-même : « {reason[5:].strip()} » "
                    "(il se réactive quand la cause disparaît)")
        return f"{s.binary}@{s.host}" + (f" (raison : « {reason} »)" if reason else "")
    auto = [s for s in computes if (getattr(s, "reason", "") or "").upper().startswith("AUTO:")]
    head = ("aucun nova-compute en service : Nova les a désactivés lui-même" if len(auto) == len(computes)
            else "aucun nova-compute en service : tous désactivés dans Nova")
    return (f"{head} (openstack compute service list : status disabled) : {', '.join(one(s) for s in computes)} ; "
            "le planificateur n'y place aucune instance")


def resources(conn, server) -> dict:
    """What the course says an instance is: CPU, RAM, disk (from its flavor), ports (from Neutron)."""
    flavor = server.flavor or {}
    ports = list(conn.network.ports(device_id=server.id))
    return {"vcpus": flavor.get("vcpus"), "ram (Mio)": flavor.get("ram"), "disque (Gio)": flavor.get("disk"),
            "flavor": flavor.get("original_name") or flavor.get("name") or flavor.get("id"),
            "ports": [{"id": p.id, "mac": p.mac_address, "ips": [ip["ip_address"] for ip in p.fixed_ips],
                       "status": p.status} for p in ports],
            "status": server.status, "image": (server.image or {}).get("id")}


def console_log(conn, server, length: int = 200) -> str:
    """The instance's console output (what its serial port printed), '' if the driver gives none."""
    try:
        out = conn.compute.get_server_console_output(server, length=length)
    except Exception:  # some drivers do not implement it
        return ""
    return (out or {}).get("output") or ""


def metadata_hostname(server) -> str:
    """The host name Nova's metadata service gives `server`: its `hostname` attribute where the API shows
    it (microversion 2.90+), else what Nova derives from the display name (lower case, other characters
    as '-'), first label only."""
    name = getattr(server, "hostname", None) or re.sub(r"[^a-z0-9-]+", "-", server.name.lower()).strip("-")
    return name.split(".")[0].lower()


#: Login of an image's default user when the image does not say (property os_admin_user).
DEFAULT_USERS = {"debian": "debian", "ubuntu": "ubuntu", "cirros": "cirros", "centos": "cloud-user",
                 "fedora": "fedora", "rocky": "rocky", "almalinux": "almalinux"}


def login_user(image) -> str:
    """The user to SSH in as: the image's os_admin_user property, else its distribution's usual user."""
    props = image.properties or {}
    user = getattr(image, "os_admin_user", None) or props.get("os_admin_user")
    if user:
        return user
    distro = (getattr(image, "os_distro", None) or props.get("os_distro") or image.name or "").lower()
    return next((user for key, user in DEFAULT_USERS.items() if key in distro), "root")


#: Shell run inside a guest: GET a metadata path with whatever HTTP client the guest has.
METADATA_GET = (
    "p={path}; if command -v curl >/dev/null; then curl -sf http://169.254.169.254/$p; "
    "elif command -v python3 >/dev/null; then python3 -c \"import urllib.request,sys;"
    "sys.stdout.write(urllib.request.urlopen('http://169.254.169.254/'+sys.argv[1]).read().decode())\" $p; "
    "else printf 'GET /%s HTTP/1.0\\r\\nHost: 169.254.169.254\\r\\n\\r\\n' $p | nc -w 5 169.254.169.254 80 "
    "| sed '1,/^\\r*$/d'; fi")


def lease_or_reboot(conn, server, ready_marker: str, timeout: float = 150.0, interval: float = 2) -> Optional[str]:
    """For an image that prints `ready_marker` on its console once booted (the embedded cloud's tiny
    image: "popek-tiny: ready NAME ADDRESS"): wait for that line; if it came without an address (no DHCP
    lease), hard-reboot the server once and wait again; the console is read every `interval` s. Returns
    what happened when a reboot was needed (for the evidence), None otherwise.

    Why: on a userspace (netdev) Open vSwitch, ovs-vswitchd can set a new guest tap down again while
    turning promiscuous mode on (a flags race; checks/localcloud/dataplane.py QEMU_HOOK_TEXT says how);
    the guest then never hears DHCP. The embedded cloud repairs that on the host with a libvirt hook; on
    any other cloud a hard reboot plugs a new tap. A cloud where that is not enough fails the scenario."""
    import time

    from popek.checks.cloud.waits import poll

    pattern = re.compile(re.escape(ready_marker) + r" \S+ ?(\S*)")

    def ready_lines() -> list[str]:
        return pattern.findall(console_log(conn, server, length=400))

    deadline = time.monotonic() + timeout
    seen = poll(ready_lines, bool, timeout, interval)
    if not seen or seen[-1]:
        return None
    before = len(seen)
    conn.compute.reboot_server(server, "HARD")
    wait_active(conn, server)
    # the reboot's wait ends `timeout` s after the first wait's deadline
    seen = poll(ready_lines, lambda lines: len(lines) > before, deadline + timeout - time.monotonic(), interval) or []
    if len(seen) > before:
        return ("l'instance n'avait pas obtenu de bail DHCP (interface restée inactive côté commutateur) : "
                f"redémarrage forcé, puis {'adresse ' + seen[-1] if seen[-1] else 'toujours pas d’adresse'}")
    return "l'instance n'avait pas obtenu de bail DHCP ; après redémarrage forcé, pas de console"
