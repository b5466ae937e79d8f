"""The cloud's needs (`@needs:cloud`, `@needs:admin`, `@needs:dataplane`, `@needs:embedded`): each takes the
`cloud` fixture's value, a `connection.Cloud` or an `Unreachable`, and returns None or the French reason.

Registered in popek.checks.needs' table when this module is imported (popek.checks.needs imports it)."""
from __future__ import annotations

import dataclasses

from popek.checks.needs import requirement


@dataclasses.dataclass(frozen=True)
class Unreachable:
    """No cloud to check (the default one is absent): `reason` says why, in French."""
    reason: str


def _unreachable(cloud):
    return cloud.reason if isinstance(cloud, Unreachable) else None


@requirement("cloud")
def need_cloud(cloud):
    return _unreachable(cloud)


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


@requirement("dataplane")
def need_dataplane(cloud):
    if _unreachable(cloud):
        return _unreachable(cloud)
    if "dataplane" not in cloud.facts:
        from popek.checks.cloud import probe
        try:
            cloud.facts["dataplane"] = probe.dataplane_reason(cloud)
        except Exception as exc:  # the probe itself could not run: that is the reason, once for the session
            cloud.facts["dataplane"] = f"plan de données impossible à établir : {type(exc).__name__}: {str(exc)[:160]}"
    return cloud.facts["dataplane"]
