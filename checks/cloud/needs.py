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
    if _unreachable(cloud):
        return _unreachable(cloud)
    if "dataplane" not in cloud.facts:
        from popek.checks.cloud import probe
        from popek.checks.cloud.connection import stopped_answering
        try:
            cloud.facts["dataplane"] = probe.dataplane_reason(cloud)
        except Exception as exc:  # the probe itself could not run: that is the reason, once for the session
            if stopped_answering(exc) or _server_error(exc):
                # the cloud did not answer the question (a service down or frozen: RabbitMQ frozen made
                # Neutron time out): a broken cloud, not a missing dataplane; the scenarios run and say so
                return None
            refused = probe.refusal_text(exc)
            cloud.facts["dataplane"] = "plan de données impossible à établir : " + (
                f"le cloud refuse à ce compte de créer l'instance sonde ou son réseau ({refused})" if refused
                else f"{type(exc).__name__}: {str(exc)[:160]}")
    return cloud.facts["dataplane"]


def _server_error(exc: BaseException) -> bool:
    """An HTTP 5xx answer of the cloud (a service that is there but broken)."""
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and status >= 500


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
