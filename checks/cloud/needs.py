"""The cloud's needs (`@needs:cloud`, `@needs:admin`, `@needs:write`, `@needs:dataplane`, `@needs:embedded`,
`@needs:volume`, `@needs:object-store`): each takes the
`cloud` fixture's value, a `connection.Cloud` or an `Unreachable`, and returns None or the French reason.

Registered in popek.checks.needs' table when this module is imported (the plugin imports it)."""
from __future__ import annotations

import dataclasses

from popek.checks.needs import requirement


@dataclasses.dataclass(frozen=True)
class Unreachable:
    """No cloud to check: `reason` says why, in French. `broken`: None when no cloud is configured (the
    default one is absent or stopped); else the finding that the cloud configured for this run does not
    answer (the embedded cloud started, its Keystone refusing connections): a broken cloud, not a missing
    one, which the claims about reaching a cloud report as ÉCHEC (need "configured")."""
    reason: str
    broken: str | None = None


def _unreachable(cloud):
    return cloud.reason if isinstance(cloud, Unreachable) else None


@requirement("cloud")
def need_cloud(cloud):
    return _unreachable(cloud)


@requirement("configured")
def need_configured(cloud):
    """A cloud is configured for this run, answering or not: the scenarios about reaching the cloud (its
    credentials, the first authenticated request) run on a broken cloud too, and fail saying why."""
    return cloud.reason if isinstance(cloud, Unreachable) and not cloud.broken else None


def broken(cloud) -> None:
    """AssertionError with the finding when the configured cloud does not answer (see Unreachable)."""
    if isinstance(cloud, Unreachable):
        raise AssertionError(cloud.broken or cloud.reason)


@requirement("admin")
def need_admin(cloud):
    return _unreachable(cloud) or (None if cloud.admin is not None else
                                   f"il faut des identifiants admin : {cloud.admin_reason}")


@requirement("embedded")
def need_embedded(cloud):
    if _unreachable(cloud):
        return _unreachable(cloud)
    if cloud.embedded_root is None:
        return (f"ce n'est pas le cloud embarqué de popek ({cloud.choice.describe()}) : son installation "
                "et ses composants internes ne sont pas visibles d'ici")
    return None


@requirement("write")
def need_write(cloud):
    """The account may create resources in its project (a `reader`-only account may not: probe.write_refused).
    Asked once per session, before the dataplane (whose probe would otherwise fail on the refusal)."""
    if _unreachable(cloud):
        return _unreachable(cloud)
    if "write" not in cloud.facts:
        from popek.checks.cloud import probe
        cloud.facts["write"] = probe.write_refused(cloud)
    return cloud.facts["write"]


@requirement("dataplane")
def need_dataplane(cloud):
    """None when guests run, the reason when the cloud has none (or gives no way to tell); raises an
    AssertionError (the scenario's ÉCHEC) with probe.BrokenDataplane's finding when its probe guest did not boot."""
    if _unreachable(cloud):
        return _unreachable(cloud)
    if "dataplane" not in cloud.facts:
        from popek.checks.cloud import probe
        from popek.checks.cloud.compute import NoRoom, NothingToBoot, Refused
        try:
            cloud.facts["dataplane"] = probe.dataplane_reason(cloud)
        except probe.BrokenDataplane as exc:
            # the probe guest is ACTIVE, its console answers, and it did not boot: a broken cloud, found once
            # per session; every dataplane scenario fails with that evidence (no IGNORÉ that hides it)
            cloud.facts["dataplane"] = None
            cloud.facts["dataplane_broken"] = str(exc)
        except Refused as exc:
            # Neutron's policy refuses this account the probe's network (rule:create_network, compute.Refused):
            # a policy, not a quota. On the embedded cloud popek writes that policy (members may create): there
            # the refusal is a fault (a policy file left behind): the scenarios run and fail (not cached)
            if getattr(getattr(cloud, "choice", None), "kind", None) == "embedded":
                return None
            cloud.facts["dataplane"] = f"plan de données impossible à établir : {exc}"
        except NoRoom as exc:  # the project's quota leaves no room for one probe instance: a limit, kept
            cloud.facts["dataplane"] = ("plan de données impossible à établir : pas de place pour l'instance "
                                        f"sonde dans le quota du projet ({exc})")
        except NothingToBoot as exc:  # no image or flavor to boot: a missing capability, kept
            cloud.facts["dataplane"] = ("plan de données impossible à établir : rien pour démarrer l'instance "
                                        f"sonde ({exc})")
        except Exception as exc:
            # compute.boot words Nova's 403 as an AssertionError (raised from None: the 403 is its context)
            refused = probe.refusal_text(exc) or probe.refusal_text(exc.__cause__ or exc.__context__)
            if refused and probe.read_only(getattr(cloud, "roles", None)):
                # a read-only account (need 'write' let it through: the cloud let it write security groups)
                # refused the probe instance or its network: this account cannot make the probe, kept
                roles = ", ".join(sorted(cloud.roles))
                cloud.facts["dataplane"] = ("plan de données impossible à établir : ce compte n'a que le rôle "
                                            f"{roles} : le cloud refuse de lui créer l'instance sonde ou son "
                                            f"réseau ({refused})")
            else:
                # anything else is a fault of the cloud, not a missing dataplane: a compute dead (wait_active's
                # ERROR « No valid host »), a Nova or Neutron refusal (4xx, a member's 403 other than Neutron's
                # policy refusing it the network, Refused above), a service that
                # stopped answering or answers 5xx; the scenarios run and fail naming the component (not
                # cached: the next scenario asks again)
                return None
    if cloud.facts.get("dataplane_broken"):   # a plain AssertionError: the report reads it as every other ÉCHEC
        raise AssertionError(cloud.facts["dataplane_broken"])
    return cloud.facts["dataplane"]


#: The services a cloud may go without (one without Cinder or Swift is still an OpenStack cloud): service
#: type -> what it offers, in the skip reasons' words.
OPTIONAL_SERVICES = {"block-storage": "de volumes (Cinder)", "object-store": "de stockage objet (Swift)"}


def not_in_catalog(service_type: str, *shown_as: str) -> str:
    """Why a scenario about optional `service_type` skips on a cloud whose catalog lacks it (the types it
    looked for: `shown_as`, default the type itself)."""
    return (f"le catalogue de ce cloud n'a pas de service {OPTIONAL_SERVICES[service_type]} "
            f"({' / '.join(shown_as or (service_type,))})")


def _service(cloud, service_type: str):
    """None when the cloud offers `service_type`, else why not: disabled in its configuration (clouds.yaml
    `has_block_storage: false`…) or absent from its catalog (a cloud without Cinder or Swift)."""
    if _unreachable(cloud):
        return _unreachable(cloud)
    if not cloud.conn.config.has_service(service_type):
        return (f"le service {OPTIONAL_SERVICES[service_type]} ({service_type}) est désactivé dans la "
                f"configuration du cloud ({cloud.choice.describe()})")
    try:
        url = cloud.conn.endpoint_for(service_type)
    except Exception:  # keystoneauth's EndpointNotFound and kin: no such service to use
        url = None
    if not url:
        return not_in_catalog(service_type)
    return None


@requirement("volume")
def need_volume(cloud):
    return _service(cloud, "block-storage")


@requirement("object-store")
def need_object_store(cloud):
    return _service(cloud, "object-store")
