"""The cloud's REST APIs spoken two more ways: raw HTTP with `requests` (C17) and the official
`openstack` client (C33, C36), to compare with what openstacksdk sees."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Mapping, Optional


def tls_options(conn) -> dict:
    """`requests`' verify/cert for a raw HTTP call to this cloud, as the SDK's session has them from the
    cloud's entry (`cacert:` a private CA, `verify: false`, `cert:`/`key:` a client certificate): a raw call
    with requests' defaults would refuse a cloud the SDK and the `openstack` client accept."""
    session = conn.session
    options = {"verify": getattr(session, "verify", True)}
    cert = getattr(session, "cert", None)
    if cert:
        options["cert"] = cert
    return options


def rest_get(conn, service: str, path: str) -> tuple[int, dict]:
    """GET <endpoint of `service`><path> with the token in X-Auth-Token, like `curl` would.

    service: an SDK proxy name (compute, network, image…). Returns (HTTP status, JSON body)."""
    import requests

    from popek.checks.secrets import REDACT

    endpoint = getattr(conn, service).get_endpoint().rstrip("/")
    token = conn.session.get_token()
    REDACT.add(token)
    response = requests.get(endpoint + path, headers={"X-Auth-Token": token, "Accept": "application/json"}, timeout=30,
                            **tls_options(conn))
    try:
        body = response.json()
    except ValueError:
        body = {}
    return response.status_code, body


def config_file_for(files, cloud_name: str) -> Optional[Path]:
    """The first clouds.yaml among `files` that defines `cloud_name` (the one the SDK used)."""
    import yaml

    for path in files:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if cloud_name in (data.get("clouds") or {}):
            return Path(path)
    return None


def cli_env(cloud, environ: Mapping[str, str]) -> dict:
    """Environment for the `openstack` client so that it talks to the same cloud with the same
    credentials (read by the client itself from clouds.yaml or the openrc; never on its command line)."""
    env = dict(environ)
    if cloud.choice.kind == "openrc":
        return env
    if cloud.choice.kind == "embedded":     # popek's default ignores the OS_* variables: so does its client
        for key in [k for k in env if k.startswith("OS_")]:
            del env[key]
    # a named cloud keeps its OS_* variables: the client merges them into the entry as popek's loader did
    # (an entry without password plus OS_PASSWORD); the file is the one that defines the entry
    path = config_file_for(cloud.choice.files, cloud.choice.cloud)
    if path is not None:
        env["OS_CLIENT_CONFIG_FILE"] = str(path)
    env["OS_CLOUD"] = cloud.choice.cloud
    return env


def openstack_cli(cloud, args: list[str], environ: Mapping[str, str], executable: Optional[str] = None,
                  timeout: float = 120) -> list | dict:
    """Run `openstack <args> -f json` (python-openstackclient) and return its parsed JSON output.

    executable: the client (default: the one beside this Python, i.e. popek's venv)."""
    exe = executable or str(Path(sys.executable).parent / "openstack")
    result = subprocess.run([exe, *args, "-f", "json"], env=cli_env(cloud, environ), capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        from popek.checks.secrets import REDACT
        raise AssertionError(f"openstack {' '.join(args)} a échoué ({result.returncode}) : {REDACT(result.stderr.strip())[-600:]}")
    return json.loads(result.stdout or "[]")


def consistent_pair(first, second, tries: int = 4):
    """(first(), second()) taken while `first` did not change around `second` (first, second, first
    again): other workers may create or delete resources in the same project meanwhile (pytest-xdist).

    Returns the last pair; the caller compares them. first/second: callables returning comparable lists."""
    for _ in range(tries):
        before = first()
        other = second()
        if first() == before:
            break
    return before, other


#: The four variables of the course's openrc (slide EXEMPLE DE FICHIER OPENRC), in its order.
COURSE_OPENRC = ("OS_AUTH_URL", "OS_TENANT_ID", "OS_USERNAME", "OS_PASSWORD")

#: keystoneauth's plugins that log in with a user name and a password, which the course's openrc holds.
PASSWORD_PLUGINS = ("password", "v3password", "v2password")

#: What other plugins log in with, in the verdict's words.
OTHER_CREDENTIALS = {"v3applicationcredential": "un identifiant d'application (application credential)",
                     "v3token": "un jeton", "token": "un jeton", "v3totp": "un code TOTP",
                     "v3oidcpassword": "une fédération OpenID Connect", "v3websso": "une connexion unique (SSO)",
                     "admin_token": "le jeton d'administration du service", "none": "aucune authentification"}


def openrc_unusable(auth_type: Optional[str]) -> Optional[str]:
    """Why the course's openrc (a login and a password) cannot be made from credentials of keystoneauth's
    plugin `auth_type` (clouds.yaml's `auth_type`, default `password`), in French; None when it can.
    An application credential or a token works with the client, but holds no login and no password:
    there is nothing to write in that openrc, which is no fault of the cloud."""
    kind = auth_type or "password"
    if kind in PASSWORD_PLUGINS:
        return None
    what = OTHER_CREDENTIALS.get(kind, f"la méthode « {kind} »")
    return (f"les identifiants de ce cloud (auth_type « {kind} ») sont {what}, pas un login et un mot de "
            "passe : l'openrc du cours (OS_USERNAME, OS_PASSWORD) ne peut pas en être tiré")


def openrc_values(auth: Mapping[str, object], project_id: str) -> tuple[dict, dict]:
    """From an auth section (clouds.yaml / SDK config) and the token's project id: (the course's four
    variables, the Keystone v3 domain variables these credentials carry besides). An entry that names its
    user by id only (`user_id:`, no `username:`) gives OS_USER_ID as the login: without it the openrc had
    no login at all and `openstack token issue` failed on a cloud that works (hA5, 2026-12-07)."""
    login = ("OS_USERNAME", auth.get("username")) if auth.get("username") or not auth.get("user_id") \
        else ("OS_USER_ID", auth.get("user_id"))
    four = {"OS_AUTH_URL": auth.get("auth_url"), "OS_TENANT_ID": project_id,
            login[0]: login[1], "OS_PASSWORD": auth.get("password")}
    domains = {f"OS_{key.upper()}": auth[key] for key in
               ("user_domain_name", "user_domain_id", "project_domain_name", "project_domain_id") if auth.get(key)}
    return {k: str(v) for k, v in four.items() if v}, {k: str(v) for k, v in domains.items()}


def openrc_tls(config: Mapping[str, object]) -> dict:
    """The variables an openrc needs besides the course's four to reach this cloud over TLS, from the SDK's
    config of the entry (clouds.yaml `cacert:`, `verify: false` / `insecure: true`, `cert:`, `key:`):
    OS_CACERT for a private CA, OS_INSECURE, OS_CERT / OS_KEY; {} for a cloud over HTTP or a public CA.
    Without them the client refuses the certificate the SDK accepted: no fault of the openrc's four."""
    out = {}
    if config.get("cacert"):
        out["OS_CACERT"] = str(config["cacert"])
    if config.get("verify") is False or str(config.get("insecure", "")).lower() in ("true", "1", "yes"):
        out["OS_INSECURE"] = "true"
    for key in ("cert", "key"):
        if config.get(key):
            out[f"OS_{key.upper()}"] = str(config[key])
    return out


def openrc_text(values: Mapping[str, str]) -> str:
    """An openrc file as the course shows it: one `export NAME="value"` per variable (shell-quoted)."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def token_issue_with_openrc(values: Mapping[str, str], environ: Mapping[str, str],
                            executable: Optional[str] = None, timeout: float = 120) -> dict:
    """Write `values` as an openrc (mode 0600, in a private temporary directory), source it in a shell
    and run `openstack token issue` there: the password reaches the client through the environment the
    openrc set, never a command line. environ: the caller's environment, from which every OS_* variable
    is removed (only the openrc speaks), and HOME points at the empty directory (no user clouds.yaml).

    Returns {"ok": bool, "jeton": {expires, project_id, user_id} or None, "erreur": redacted stderr}."""
    from popek.checks.secrets import REDACT

    exe = executable or str(Path(sys.executable).parent / "openstack")
    REDACT.add(values.get("OS_PASSWORD"))
    env = {k: v for k, v in environ.items() if not k.startswith("OS_")}
    with tempfile.TemporaryDirectory(prefix="popek-openrc-") as tmp:
        rc = Path(tmp) / "openrc"
        fd = os.open(rc, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(openrc_text(values))
        env["HOME"] = tmp
        script = f'. ./openrc && exec {shlex.quote(exe)} token issue -f json -c expires -c project_id -c user_id'
        result = subprocess.run(["bash", "-c", script], cwd=tmp, env=env, capture_output=True, text=True,
                                timeout=timeout)
    if result.returncode != 0:
        return {"ok": False, "jeton": None, "erreur": REDACT(result.stderr.strip())[-600:] or f"code {result.returncode}"}
    return {"ok": True, "jeton": json.loads(result.stdout or "{}"), "erreur": ""}
