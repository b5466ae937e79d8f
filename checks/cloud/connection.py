"""Which cloud to check, and one clear message when it cannot be reached.

Resolution, like the `openstack` client (and nothing popek-specific for credentials):
  1. a cloud named explicitly (`--os-cloud NAME`), looked up in the standard clouds.yaml search path
     and in the embedded cloud's clouds.yaml;
  2. else `OS_CLOUD` from the environment, looked up the same way;
  3. else an openrc loaded in the environment (`OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`, project);
  4. else the embedded cloud (`popek cloud up`): entry `popek` of its clouds.yaml.
Choices 1–3 are *named* by the user: if such a cloud is broken, that is an error to report. Choice 4 is
popek's default: when it is absent, the cloud scenarios are skipped with the reason.

Every failure (missing or broken clouds.yaml, unknown cloud, incomplete openrc, wrong password,
unreachable endpoint) becomes one `CloudUnavailable` with a French message naming the cause; the CLI
turns it into a user error and the pytest fixture into a skip (default cloud) or an error (named one).
This module reads no environment itself: the caller passes `environ`.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Mapping, Optional

#: The entries `popek cloud up` writes into its clouds.yaml.
EMBEDDED_MEMBER, EMBEDDED_ADMIN = "popek", "popek-admin"

#: openrc variables that name the project (any one is enough), as the `openstack` client accepts them.
PROJECT_VARS = ("OS_PROJECT_ID", "OS_PROJECT_NAME", "OS_TENANT_ID", "OS_TENANT_NAME")


class CloudUnavailable(Exception):
    """The cloud cannot be used; `str(exc)` is the message for the user.

    named: True when the user chose this cloud (then it is an error, not a skip)."""

    def __init__(self, message: str, named: bool):
        super().__init__(message)
        self.named = named


@dataclasses.dataclass(frozen=True)
class Choice:
    """Where the credentials come from.

    kind: "os-cloud" | "OS_CLOUD" | "openrc" | "embedded"; cloud: the clouds.yaml entry (None for an
    openrc); files: the clouds.yaml files searched; named: chosen by the user (see module doc)."""
    kind: str
    cloud: Optional[str]
    files: tuple[Path, ...]
    named: bool

    def describe(self) -> str:
        if self.kind == "embedded":
            return f"cloud embarqué de popek (entrée « {self.cloud} » de {self.files[0]})"
        return {"os-cloud": f"--os-cloud {self.cloud}", "OS_CLOUD": f"OS_CLOUD={self.cloud}",
                "openrc": "openrc chargé dans l'environnement (OS_AUTH_URL…)"}[self.kind]


def search_path(environ: Mapping[str, str], embedded_yaml: Path) -> tuple[Path, ...]:
    """The clouds.yaml files the `openstack` client would read, then the embedded cloud's."""
    from openstack.config import loader

    files = [Path(environ["OS_CLIENT_CONFIG_FILE"])] if environ.get("OS_CLIENT_CONFIG_FILE") else []
    files += [Path(p) for p in loader.CONFIG_FILES]
    files.append(Path(embedded_yaml))
    return tuple(dict.fromkeys(files))


def resolve(os_cloud: Optional[str], environ: Mapping[str, str], embedded_yaml: Path) -> Choice:
    """Decide which cloud to use (see module doc); no network, no file parsing.

    os_cloud: the cloud named on the command line, or None; environ: the process environment;
    embedded_yaml: the embedded cloud's clouds.yaml (`popek.paths.embedded_clouds_yaml()`)."""
    files = search_path(environ, embedded_yaml)
    if os_cloud:
        return Choice("os-cloud", os_cloud, files, True)
    if environ.get("OS_CLOUD"):
        return Choice("OS_CLOUD", environ["OS_CLOUD"], files, True)
    if environ.get("OS_AUTH_URL"):
        return Choice("openrc", None, (), True)
    return Choice("embedded", EMBEDDED_MEMBER, (Path(embedded_yaml),), False)


def openrc_missing(environ: Mapping[str, str]) -> list[str]:
    """The openrc variables the course lists (Keystone URL, login, password, project) that are absent."""
    missing = [v for v in ("OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD") if not environ.get(v)]
    if "OS_USERNAME" in missing and environ.get("OS_USER_ID"):
        missing.remove("OS_USERNAME")
    if not any(environ.get(v) for v in PROJECT_VARS):
        missing.append("OS_PROJECT_NAME (ou OS_PROJECT_ID / OS_TENANT_ID)")
    return missing


def auth_fields(auth: Mapping[str, object]) -> dict[str, Optional[str]]:
    """The four things the course says an openrc gives (C34), from an auth section, password hidden.

    Returns {"url Keystone": …, "identifiant": …, "mot de passe": "présent" | None, "projet": …}."""
    project = auth.get("project_name") or auth.get("project_id") or auth.get("tenant_name") or auth.get("tenant_id")
    return {"url Keystone": auth.get("auth_url") or None,
            "identifiant": auth.get("username") or auth.get("user_id") or None,
            "mot de passe": "présent" if auth.get("password") else None,
            "projet": project or None}


def _check_yaml(files, named: bool) -> None:
    """The SDK silently skips a clouds.yaml it cannot parse ("Cloud x was not found"): say why."""
    import yaml

    for path in files:
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" ligne {where.line + 1}" if where is not None else ""
            raise CloudUnavailable(f"clouds.yaml illisible : {path}{line} ({type(exc).__name__})", named) from None
        if data is not None and not (isinstance(data, dict) and isinstance(data.get("clouds", {}), dict)):
            raise CloudUnavailable(f"clouds.yaml mal formé : {path} (il faut une clé « clouds: » avec des entrées)", named)


def load_config(choice: Choice, api_timeout: float = 15.0):
    """The SDK's CloudRegion for `choice` (no network), or CloudUnavailable naming what is missing."""
    from openstack import exceptions as sdk_exc
    from openstack.config import loader

    if choice.kind == "openrc":
        config = loader.OpenStackConfig(load_yaml_config=False, load_envvars=True)
        name = "envvars"
    else:
        existing = [p for p in choice.files if p.is_file()]
        if choice.kind == "embedded" and not existing:
            raise CloudUnavailable(
                "aucun cloud : ni --os-cloud, ni OS_CLOUD, ni openrc (OS_AUTH_URL) dans l'environnement, "
                f"et le cloud embarqué n'est pas installé ({choice.files[0]} absent ; lancez « popek cloud up »)",
                choice.named)
        if not existing:
            raise CloudUnavailable(
                f"cloud « {choice.cloud} » ({choice.describe()}) : aucun fichier clouds.yaml trouvé "
                f"(cherché : {', '.join(str(p) for p in choice.files)})", choice.named)
        _check_yaml(existing, choice.named)
        config = loader.OpenStackConfig(config_files=[str(p) for p in existing], load_envvars=False)
        name = choice.cloud
        known = config.get_cloud_names()
        if name not in known:
            raise CloudUnavailable(
                f"cloud « {name} » introuvable dans clouds.yaml ({', '.join(str(p) for p in existing)}) ; "
                f"clouds connus : {', '.join(sorted(known)) or 'aucun'}", choice.named)
    try:
        return config.get_one(name, api_timeout=api_timeout)
    except (sdk_exc.ConfigException, KeyError, ValueError) as exc:
        raise CloudUnavailable(f"configuration du cloud ({choice.describe()}) invalide : {exc}", choice.named) from None


def explain_auth_failure(exc: BaseException, auth_url: str, user: str) -> str:
    """One French sentence for an authentication failure (walks the exception chain)."""
    from keystoneauth1 import exceptions as ks

    seen = exc
    while seen is not None:
        if isinstance(seen, ks.Unauthorized):
            return (f"Keystone refuse l'authentification (401) de l'utilisateur « {user} » à {auth_url} : "
                    "mot de passe, utilisateur ou projet erroné")
        if isinstance(seen, ks.MissingRequiredOptions):
            names = ", ".join(o.dest for o in seen.options)
            return f"paramètres d'authentification manquants : {names}"
        if isinstance(seen, (ks.ConnectFailure, ks.ConnectTimeout)):
            return f"Keystone injoignable à {auth_url} (connexion impossible : {type(seen).__name__})"
        if isinstance(seen, ks.DiscoveryFailure):
            return f"Keystone injoignable ou non reconnu à {auth_url} (découverte des versions impossible)"
        if isinstance(seen, ks.SSLError):
            return f"erreur TLS en contactant Keystone à {auth_url}"
        if isinstance(seen, ks.HttpError):
            return f"Keystone répond {seen.http_status} à {auth_url} : {seen.message}"
        seen = seen.__cause__ or seen.__context__
    return f"authentification impossible à {auth_url} : {type(exc).__name__}"


@dataclasses.dataclass
class Cloud:
    """A cloud popek talks to: the member connection, an admin one when available, and where it came from.

    conn: openstack.connection.Connection with the chosen credentials; choice: the Choice;
    auth: auth_fields() of the credentials (no password); roles: role names of the token;
    admin: a Connection with the admin role, or None; admin_reason: why not (French);
    embedded_root: the embedded cloud's state directory when this is the embedded cloud, else None."""
    conn: object
    choice: Choice
    auth: dict
    roles: list
    admin: object = None
    admin_reason: Optional[str] = None
    embedded_root: Optional[Path] = None
    facts: dict = dataclasses.field(default_factory=dict)  # probes done once per session (dataplane…)

    @property
    def name(self) -> str:
        return self.choice.cloud or "openrc"


def _authenticate(region, choice: Choice):
    """A Connection whose first request (the token, with the catalog) succeeded."""
    import openstack
    from popek.checks.secrets import REDACT

    auth = region.config.get("auth", {}) or {}
    for key in ("password", "token", "application_credential_secret"):
        REDACT.add(auth.get(key))
    conn = openstack.connection.Connection(config=region)
    # keystoneauth logs its own warning ("Failed to discover available identity versions…") before
    # raising; the one message the user gets is ours.
    quiet = logging.getLogger("keystoneauth")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        token = conn.session.get_token()
    except Exception as exc:  # keystoneauth raises many kinds; explain_auth_failure names the cause
        user = str(auth.get("username") or auth.get("user_id") or "?")
        raise CloudUnavailable(f"{choice.describe()} : {explain_auth_failure(exc, str(auth.get('auth_url')), user)}",
                               choice.named) from None
    finally:
        quiet.setLevel(level)
    REDACT.add(token)
    return conn


def connect(os_cloud: Optional[str], environ: Mapping[str, str], embedded_yaml: Path,
            api_timeout: float = 15.0) -> Cloud:
    """Resolve, load and authenticate the cloud (see module doc); raise CloudUnavailable with the cause.

    os_cloud: cloud named on the command line or None; environ: the environment (OS_CLOUD, openrc);
    embedded_yaml: the embedded cloud's clouds.yaml; api_timeout: seconds per HTTP request."""
    choice = resolve(os_cloud, environ, embedded_yaml)
    if choice.kind == "openrc":
        missing = openrc_missing(environ)
        if missing:
            raise CloudUnavailable(f"openrc incomplet dans l'environnement : il manque {', '.join(missing)}", True)
    region = load_config(choice, api_timeout)
    conn = _authenticate(region, choice)
    access = conn.session.auth.get_access(conn.session)
    roles = sorted(access.role_names or [])
    embedded_yaml = Path(embedded_yaml)
    is_embedded = choice.cloud in (EMBEDDED_MEMBER, EMBEDDED_ADMIN) and embedded_yaml.is_file() and \
        _same_auth_url(region, embedded_yaml, choice.cloud)
    cloud = Cloud(conn=conn, choice=choice, auth=auth_fields(region.config.get("auth", {}) or {}), roles=roles,
                  embedded_root=embedded_yaml.parent if is_embedded else None)
    if "admin" in roles:
        cloud.admin = conn
    elif is_embedded:
        try:
            admin_choice = dataclasses.replace(choice, cloud=EMBEDDED_ADMIN, files=(embedded_yaml,))
            cloud.admin = _authenticate(load_config(admin_choice, api_timeout), admin_choice)
        except CloudUnavailable as exc:
            cloud.admin_reason = f"identifiants admin du cloud embarqué inutilisables : {exc}"
    else:
        cloud.admin_reason = (f"les identifiants ({choice.describe()}) n'ont pas le rôle admin "
                              f"(rôles : {', '.join(roles) or 'aucun'})")
    return cloud


def _same_auth_url(region, embedded_yaml: Path, entry: str) -> bool:
    """True when `region` points at the Keystone of the embedded clouds.yaml (a user's own clouds.yaml
    could also have an entry called `popek`)."""
    import yaml

    try:
        data = yaml.safe_load(embedded_yaml.read_text()) or {}
        url = data["clouds"][entry]["auth"]["auth_url"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return False
    mine = str((region.config.get("auth") or {}).get("auth_url", ""))
    return url.rstrip("/") == mine.rstrip("/")


def embedded_state_file(cloud: Cloud, *parts: str) -> Optional[Path]:
    """A path inside the embedded cloud's state directory, or None when this is not the embedded cloud."""
    return cloud.embedded_root.joinpath(*parts) if cloud.embedded_root else None
