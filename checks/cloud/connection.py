"""Which cloud to check, and one clear message when it cannot be reached.

The cloud is chosen by openstacksdk's own loader (`openstack.config.loader.OpenStackConfig`), exactly as
the `openstack` client chooses it: its search path (`OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
`~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`, each also `.yml`/`.json`; the first that
exists is read), `secure.yaml` merged in, `OS_CLOUD`, and the `OS_*` variables merged into a named entry
the way the client's `--os-*` options are (`OpenStackConfig.register_argparse_arguments`, whose defaults
are the `OS_*` variables: an entry without a password plus `OS_PASSWORD` works). The embedded cloud's
entries (`popek`, `popek-admin`) are added *beside* the user's entries (a user's entry of the same name
wins): openstacksdk reads only the first existing clouds.yaml, so a user's own file would otherwise hide them.

Resolution:
  1. a cloud named explicitly (`--os-cloud NAME`);
  2. else `OS_CLOUD` from the environment;
  3. else an openrc loaded in the environment (`OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`, project);
  4. else the embedded cloud (`popek cloud up`): entry `popek` of its clouds.yaml.
Choices 1–3 are *named* by the user: if such a cloud is broken, that is an error to report. Choice 4 is
popek's default: when it is absent, the cloud scenarios are skipped with the reason.

Every failure (missing or malformed clouds.yaml or entry, unknown cloud, incomplete openrc, wrong password,
unreachable endpoint) becomes one `CloudUnavailable` with a French message naming the cause and the files
actually read; the CLI turns it into a user error and the pytest fixture into a skip (default cloud) or an
error (named one). popek's code reads no environment here: the caller passes `environ` (the process
environment, at the edge); openstacksdk's loader and keystoneauth read the same process environment
themselves, as they do for the `openstack` client.
"""
from __future__ import annotations

import argparse
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
    openrc); files: the clouds.yaml files searched, the embedded cloud's last; named: chosen by the user
    (see module doc)."""
    kind: str
    cloud: Optional[str]
    files: tuple[Path, ...]
    named: bool

    def describe(self) -> str:
        if self.kind == "embedded":
            return f"cloud embarqué de popek (entrée « {self.cloud} » de {self.files[-1]})"
        return {"os-cloud": f"--os-cloud {self.cloud}", "OS_CLOUD": f"OS_CLOUD={self.cloud}",
                "openrc": "openrc chargé dans l'environnement (OS_AUTH_URL…)"}[self.kind]


def search_path(environ: Mapping[str, str], embedded_yaml: Path) -> tuple[Path, ...]:
    """The clouds.yaml files the `openstack` client would look for, in its order, then the embedded cloud's."""
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
        return Choice("openrc", None, files, True)
    return Choice("embedded", EMBEDDED_MEMBER, files, False)


def lone_user_cloud(environ: Mapping[str, str]) -> Optional[str]:
    """A French note when popek falls back to its embedded cloud (no --os-cloud, OS_CLOUD nor openrc) while
    the user's clouds.yaml holds exactly one cloud: the `openstack` client uses that one without OS_CLOUD
    (openstacksdk's loader: "If there is only one cloud just use it"), popek does not (its default is its own
    cloud: it creates servers on no cloud the user did not name), and says so, with how to check that one.
    None otherwise (no user file, several entries, an unreadable file: the named cloud's errors say that)."""
    try:
        loaded = open_config(environ, Path("/nonexistent/popek-embedded/clouds.yaml"), named=False)
    except CloudUnavailable:
        return None
    names = loaded.known()
    if loaded.config.config_filename is None or len(names) != 1:
        return None
    return (f"votre clouds.yaml ({loaded.config.config_filename}) a une seule entrée, « {names[0]} », que le client "
            "openstack prend sans OS_CLOUD ; popek vérifie par défaut son cloud embarqué : "
            f"--os-cloud {names[0]} (ou OS_CLOUD={names[0]}) pour vérifier celui-là")


def openrc_missing(environ: Mapping[str, str]) -> list[str]:
    """The openrc variables that are absent for its way of logging in (OS_AUTH_TYPE, `password` by default):
    the course's four (Keystone URL, login, password, project); for an application credential (the openrc
    Horizon gives for one: OS_AUTH_TYPE=v3applicationcredential) its id, or its name and owner, and its
    secret; for a token, OS_TOKEN. Another plugin's own options are named by keystoneauth when missing."""
    kind = (environ.get("OS_AUTH_TYPE") or "password").strip().lower()
    if kind not in ("password", "v3password", "v2password"):
        missing = [] if environ.get("OS_AUTH_URL") else ["OS_AUTH_URL"]
        if kind == "v3applicationcredential":
            if not environ.get("OS_APPLICATION_CREDENTIAL_SECRET"):
                missing.append("OS_APPLICATION_CREDENTIAL_SECRET")
            if not environ.get("OS_APPLICATION_CREDENTIAL_ID"):
                if not environ.get("OS_APPLICATION_CREDENTIAL_NAME"):
                    missing.append("OS_APPLICATION_CREDENTIAL_ID (ou OS_APPLICATION_CREDENTIAL_NAME et OS_USERNAME)")
                elif not (environ.get("OS_USERNAME") or environ.get("OS_USER_ID")):
                    missing.append("OS_USERNAME ou OS_USER_ID (le propriétaire de OS_APPLICATION_CREDENTIAL_NAME)")
        elif kind in ("v3token", "token", "v2token") and not environ.get("OS_TOKEN"):
            missing.append("OS_TOKEN")
        return missing
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


def _yaml_problem(path: Path) -> Optional[str]:
    """Why `path` (an existing clouds.yaml or secure.yaml) is unusable, in French with its line, or None.

    openstacksdk skips a file it cannot parse (a warning, then the *next* file of the search path) and
    fails late or with a traceback on a malformed entry: popek says what is wrong, where, instead."""
    import json

    import yaml

    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, OSError, UnicodeDecodeError, ValueError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" ligne {where.line + 1}" if where is not None else (f" ligne {exc.lineno}" if hasattr(exc, "lineno") else "")
        return f"clouds.yaml illisible : {path}{line} ({type(exc).__name__})"
    if data is None:
        return None
    if not (isinstance(data, dict) and isinstance(data.get("clouds", {}), dict)):
        return f"clouds.yaml mal formé : {path} (il faut une clé « clouds: » avec des entrées)"
    for name, entry in (data.get("clouds") or {}).items():
        if not isinstance(entry, dict):
            return f"clouds.yaml mal formé : {path}, entrée « {name} » : il faut des clés (auth:, region_name:…), pas {entry!r}"
        if "auth" in entry and not isinstance(entry["auth"], dict):
            return f"clouds.yaml mal formé : {path}, entrée « {name} » : « auth: » doit contenir des clés (auth_url:, username:…)"
    return None


def _first_existing(candidates) -> Optional[Path]:
    return next((Path(p) for p in candidates if Path(p).is_file()), None)


def _embedded_entries(embedded_yaml: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(embedded_yaml).read_text()) or {}
        return {k: v for k, v in (data.get("clouds") or {}).items() if k in (EMBEDDED_MEMBER, EMBEDDED_ADMIN)}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}


@dataclasses.dataclass
class Loaded:
    """openstacksdk's loader with the embedded entries beside the user's, and what it read.

    config: openstack.config.loader.OpenStackConfig; read: the files whose entries it holds (the user's
    clouds.yaml and secure.yaml it actually read, then the embedded clouds.yaml when present)."""
    config: object
    read: tuple[Path, ...]

    def known(self) -> list[str]:
        names = self.config.get_cloud_names()
        return [n for n in names if not (n == "defaults" and self.config.config_filename is None)]


def open_config(environ: Mapping[str, str], embedded_yaml: Path, named: bool = True) -> Loaded:
    """openstacksdk's OpenStackConfig over its normal search path and environment, plus the embedded
    cloud's entries (see module doc); CloudUnavailable (French, with the file and line) when a file or an
    entry is malformed."""
    from openstack import exceptions as sdk_exc
    from openstack.config import loader

    config_files = ([environ["OS_CLIENT_CONFIG_FILE"]] if environ.get("OS_CLIENT_CONFIG_FILE") else []) + loader.CONFIG_FILES
    secure_files = ([environ["OS_CLIENT_SECURE_FILE"]] if environ.get("OS_CLIENT_SECURE_FILE") else []) + loader.SECURE_FILES
    for path in (_first_existing(config_files), _first_existing(secure_files)):
        problem = _yaml_problem(path) if path else None
        if problem:
            raise CloudUnavailable(problem, named)
    try:
        config = _loader_class()(app_name="popek", environ=environ)
    except (sdk_exc.ConfigException, TypeError, AttributeError, ValueError) as exc:
        raise CloudUnavailable(f"configuration OpenStack invalide : {exc}", named) from None
    read = [Path(f) for f in (config.config_filename, config.secure_config_filename) if f]
    embedded = _embedded_entries(embedded_yaml)
    if embedded:
        clouds = config.cloud_config["clouds"]
        if config.config_filename is None and set(clouds) == {"defaults"}:
            clouds.clear()      # the loader's placeholder when it found nothing at all
        for name, entry in embedded.items():
            clouds.setdefault(name, entry)
        read.append(Path(embedded_yaml))
    return Loaded(config, tuple(read))


def _loader_class():
    """OpenStackConfig reading the environment it is given (`environ=`) instead of `os.environ`: the
    same selectors (OS_CLOUD, OS_CLIENT_CONFIG_FILE…) and the same `envvars` entry from the OS_*
    variables, so that popek's code passes its environment down instead of reading it."""
    from openstack.config import loader

    class Loader(loader.OpenStackConfig):
        def __init__(self, *args, environ: Mapping[str, str], **kwargs):
            self._environ = dict(environ)
            super().__init__(*args, **kwargs)

        def _get_envvar(self, key, default=None):
            return self._environ.get(key, default) if self._load_envvars else default

        def _get_os_environ(self, envvar_prefix=None):
            # openstacksdk's rule: every OS_* variable (but oslotest's and infra's) becomes a key of the
            # `envvars` entry, unless only selectors are set
            prefix = envvar_prefix or "OS_"
            keys = [k for k in self._environ if (k.startswith("OS_") or k.startswith(prefix))
                    and not k.startswith(("OS_TEST", "OS_STD", "OS_LOG"))]
            selectors = {"OS_CLOUD", "OS_REGION_NAME", "OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE", "OS_CLOUD_NAME"}
            if not set(keys) - selectors:
                return None
            ret = self._defaults_module.get_defaults()
            ret.update({k.split("_", 1)[-1].lower(): self._environ[k] for k in keys})
            return ret
    return Loader


def _cloud_options(config, name: str, environ: Mapping[str, str]):
    """The argparse namespace the `openstack` client would have for `--os-cloud name` and no other
    option: every `--os-*` option of the entry's auth plugin, defaulting to its `OS_*` variable."""
    parser = argparse.ArgumentParser(add_help=False)
    config.register_argparse_arguments(parser, ["--os-cloud", name])
    options, _ = parser.parse_known_args(["--os-cloud", name])
    # keystoneauth took each option's default from the process environment; popek's is `environ`
    for action in parser._actions:
        var = "OS_" + action.dest[3:].upper() if action.dest.startswith("os_") else None
        if var and action.dest != "os_cloud":
            setattr(options, action.dest, environ.get(var) or None)
    # only what the loader's options mean (the `openstack` client passes its own options as well)
    return argparse.Namespace(**{k: v for k, v in vars(options).items()
                                 if (k.startswith("os_") or k == "insecure") and v not in (None, False, "")})


def load_config(choice: Choice, api_timeout: float = 15.0, environ: Optional[Mapping[str, str]] = None,
                embedded_yaml: Optional[Path] = None):
    """The SDK's CloudRegion for `choice` (no network), or CloudUnavailable naming what is missing.

    environ: the process environment (default: none of its OS_* selectors); embedded_yaml: the embedded
    cloud's clouds.yaml (default: the last file of choice.files)."""
    environ = environ if environ is not None else {}
    embedded_yaml = Path(embedded_yaml or choice.files[-1])
    if choice.kind == "embedded" and not embedded_yaml.is_file():
        raise CloudUnavailable(
            "aucun cloud : ni --os-cloud, ni OS_CLOUD, ni openrc (OS_AUTH_URL) dans l'environnement, "
            f"et le cloud embarqué n'est pas installé ({embedded_yaml} absent ; lancez « popek cloud up »)",
            choice.named)
    if choice.kind == "embedded":     # popek's own default: the embedded file alone, no user file or OS_* variable
        from openstack.config import loader
        config = loader.OpenStackConfig(config_files=[str(embedded_yaml)], secure_files=[], vendor_files=[],
                                        load_envvars=False, app_name="popek")
        loaded = Loaded(config, (embedded_yaml,))
    else:
        loaded = open_config(environ, embedded_yaml, choice.named)
        config = loaded.config
    if choice.kind == "openrc":
        name, options = config.envvar_key, None
    else:
        name = choice.cloud
        if not loaded.read:
            raise CloudUnavailable(
                f"cloud « {name} » ({choice.describe()}) : aucun fichier clouds.yaml trouvé "
                f"(cherché : {', '.join(str(p) for p in choice.files)})", choice.named)
        if name not in loaded.known():
            raise CloudUnavailable(
                f"cloud « {name} » introuvable dans clouds.yaml (lus : {', '.join(str(p) for p in loaded.read)}) ; "
                f"clouds connus : {', '.join(sorted(loaded.known())) or 'aucun'}", choice.named)
        options = None
    try:
        if choice.kind in ("os-cloud", "OS_CLOUD"):
            options = _cloud_options(config, name, environ)
        return config.get_one(name, argparse=options, api_timeout=api_timeout)
    except Exception as exc:  # the loader and keystoneauth raise many kinds for a malformed entry
        merged = sorted(k for k in environ if k.startswith("OS_") and k not in (
            "OS_CLOUD", "OS_CLIENT_CONFIG_FILE", "OS_CLIENT_SECURE_FILE", "OS_CLOUD_NAME")) \
            if choice.kind in ("os-cloud", "OS_CLOUD") else []
        # an openrc left loaded beside a clouds.yaml entry: its variables are merged in (names only, no value)
        also = (f" ; variables de l'environnement fusionnées dans l'entrée, comme le fait le client openstack : "
                f"{', '.join(merged)}") if merged else ""
        raise CloudUnavailable(f"configuration du cloud ({choice.describe()}) invalide : {_config_error(exc)}{also}",
                               choice.named) from None


def password_missing(config: Mapping[str, object]) -> Optional[str]:
    """Why a login-and-password entry cannot log in: it has no password (the clouds.yaml Horizon gives to
    download holds none, by design; the `openstack` client then asks for it at its prompt), in French with
    the ways to give it; None when it has one or logs in otherwise (token, application credential…)."""
    auth = config.get("auth") or {}
    kind = str(config.get("auth_type") or "password")
    if kind not in ("password", "v3password", "v2password") or auth.get("password"):
        return None
    return ("le mot de passe manque (le clouds.yaml téléchargé depuis Horizon n'en contient pas) : donnez-le par "
            "OS_PASSWORD, --os-password, ou « password: » dans secure.yaml ou clouds.yaml")


def _config_error(exc: BaseException) -> str:
    """The cause of a configuration error in French when popek knows it, else the library's words."""
    from keystoneauth1 import exceptions as ks

    if isinstance(exc, ks.NoMatchingPlugin):
        return f"auth_type « {exc.name} » inconnu"
    if isinstance(exc, ks.MissingRequiredOptions):
        return "paramètres d'authentification manquants : " + ", ".join(o.dest for o in exc.options)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for part in ("project", "user"):
        if f"You have provided a {part}_name" in text:   # the loader's check, before any request
            return (f"{part}_name sans son domaine : Keystone v3 demande aussi {part}_domain_name ou {part}_domain_id "
                    f"(OS_{part.upper()}_DOMAIN_NAME / OS_{part.upper()}_DOMAIN_ID)")
    if "invalid auth-type" in text:
        return "auth_type inconnu (" + text + ")"
    return text


def explain_auth_failure(exc: BaseException, auth_url: str, user: str, auth_type: Optional[str] = None) -> str:
    """One French sentence for an authentication failure (walks the exception chain). auth_type: the
    entry's keystoneauth plugin (an application credential or a token is refused for other reasons than a
    password)."""
    from keystoneauth1 import exceptions as ks

    kind = str(auth_type or "password").lower()
    seen = exc
    while seen is not None:
        if isinstance(seen, ks.Unauthorized):
            if kind == "v3applicationcredential":
                return (f"Keystone refuse l'authentification (401) par l'identifiant d'application « {user} » à "
                        f"{auth_url} : identifiant ou secret erroné, identifiant expiré ou supprimé, "
                        "ou son propriétaire désactivé")
            if kind in ("v3token", "token", "v2token"):
                return (f"Keystone refuse le jeton (401) à {auth_url} : jeton expiré ou révoqué, "
                        "ou projet demandé hors de sa portée")
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
            return f"connexion TLS refusée avec Keystone à {auth_url} : {tls_problem(str(seen))}"
        if isinstance(seen, OSError) and "TLS CA certificate bundle" in str(seen):
            # requests, before any connection: the cacert: / OS_CACERT file is not there
            path = str(seen).rsplit(": ", 1)[-1]
            return (f"le fichier de l'autorité de certification (cacert: / OS_CACERT) est introuvable ou illisible : "
                    f"{path}")
        if isinstance(seen, ks.HttpError):
            for part, names in (("user", "OS_USER_DOMAIN_NAME ou OS_USER_DOMAIN_ID (user_domain_name)"),
                                ("project", "OS_PROJECT_DOMAIN_NAME ou OS_PROJECT_DOMAIN_ID (project_domain_name)")):
                if f"Expecting to find domain in {part}" in str(seen.message):
                    return (f"Keystone v3 ({auth_url}) refuse (HTTP {seen.http_status}) : il lui faut le domaine "
                            f"{'de l’utilisateur' if part == 'user' else 'du projet'} ({names}, souvent « Default »)")
            return f"Keystone répond {seen.http_status} à {auth_url} : {seen.message}"
        seen = seen.__cause__ or seen.__context__
    return f"authentification impossible à {auth_url} : {type(exc).__name__}"


#: What to do about a certificate the client does not trust, in the message's words.
TRUST_HINT = ("donnez l'autorité de certification du cloud (cacert: dans clouds.yaml, ou OS_CACERT), "
              "ou, sans vérification, verify: false (OS_INSECURE=true)")


def tls_problem(text: str) -> str:
    """The certificate problem in an SSL error's text (keystoneauth's SSLError wraps urllib3's and ssl's),
    in French with OpenSSL's own words, and what to do about it."""
    import re

    verify = re.search(r"certificate verify failed: ([^(']+?)\s*\(_ssl", text)
    if verify:
        return f"certificat non reconnu ({verify.group(1).strip()}) ; {TRUST_HINT}"
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return "ce n'est pas du TLS à cette adresse (https:// vers un service en http ?)"
    if "NO_CERTIFICATE_OR_CRL_FOUND" in text or "no certificate or crl found" in text:
        return "le fichier de l'autorité de certification (cacert: / OS_CACERT) ne contient aucun certificat"
    ssl_words = re.search(r"\[SSL[^\]]*\] ([^(']+?)\s*\(_ssl", text)
    return f"erreur TLS ({ssl_words.group(1).strip() if ssl_words else text.split(': ', 1)[0]})"


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
    names: dict = dataclasses.field(default_factory=dict)  # {course name: this cloud's name} (names.py)

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
        kind = region.config.get("auth_type")
        user = str((auth.get("application_credential_id") or auth.get("application_credential_name")
                    if kind == "v3applicationcredential" else None)
                   or auth.get("username") or auth.get("user_id") or "?")
        said = explain_auth_failure(exc, str(auth.get("auth_url")), user, kind)
        raise CloudUnavailable(f"{choice.describe()} : {said}", choice.named) from None
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
    region = load_config(choice, api_timeout, environ, embedded_yaml)
    no_password = password_missing(region.config)
    if no_password:     # Keystone would answer 400 "None is not of type 'string'"; the client would prompt
        raise CloudUnavailable(f"{choice.describe()} : {no_password}", choice.named)
    embedded_yaml = Path(embedded_yaml)
    is_embedded = choice.cloud in (EMBEDDED_MEMBER, EMBEDDED_ADMIN) and embedded_yaml.is_file() and \
        _same_auth_url(region, embedded_yaml, choice.cloud)
    try:
        conn = _authenticate(region, choice)
    except CloudUnavailable as exc:
        # Keystone waits on the database like every API: on the embedded cloud, say whether that is why
        from popek.checks.cloud import components

        etc = embedded_yaml.parent / "etc"
        behind = components.silent_backends(etc) + components.keystone_keys(etc) if is_embedded else []
        if behind:
            raise CloudUnavailable(f"{exc} ; {' ; '.join(behind)}", exc.named) from None
        raise
    access = conn.session.auth.get_access(conn.session)
    unscoped = scope_problem(access)
    if unscoped:    # every scenario works in a project: its instances, networks, quotas
        raise CloudUnavailable(f"{choice.describe()} : {unscoped}", choice.named)
    mismatch = catalog_mismatch(access.service_catalog.catalog, region.region_name, region.config.get("interface"))
    if mismatch:    # every API call would fail with the SDK's "not present in the service catalog"
        raise CloudUnavailable(f"{choice.describe()} : {mismatch}", choice.named)
    roles = sorted(access.role_names or [])
    cloud = Cloud(conn=conn, choice=choice, auth=auth_fields(region.config.get("auth", {}) or {}), roles=roles,
                  embedded_root=embedded_yaml.parent if is_embedded else None)
    if is_embedded:
        EMBEDDED_CONFIGS.add(embedded_yaml.parent / "etc")
    if "admin" in roles:
        cloud.admin = conn
    elif is_embedded:
        try:
            admin_choice = Choice("embedded", EMBEDDED_ADMIN, (embedded_yaml,), choice.named)
            cloud.admin = _authenticate(load_config(admin_choice, api_timeout, environ, embedded_yaml), admin_choice)
        except CloudUnavailable as exc:
            cloud.admin_reason = f"identifiants admin du cloud embarqué inutilisables : {exc}"
    else:
        cloud.admin_reason = (f"les identifiants ({choice.describe()}) n'ont pas le rôle admin "
                              f"(rôles : {', '.join(roles) or 'aucun'})")
    return cloud


def scope_problem(access) -> Optional[str]:
    """Why the token (keystoneauth's AccessInfo) is of no use to popek, in French: it is scoped to a domain
    or to the whole system, or to nothing, instead of a project (clouds.yaml `domain_name:` or
    `system_scope: all` without `project_name:`, an openrc with OS_DOMAIN_NAME and no project): Keystone
    accepts it, the `openstack` client too for identity commands, but no instance, network or volume lives
    outside a project. None for a project-scoped token."""
    if getattr(access, "project_id", None):
        return None
    if getattr(access, "system_scoped", False):
        scope = "à portée du système entier (system_scope)"
    elif getattr(access, "domain_id", None):
        scope = f"à portée du domaine « {access.domain_name or access.domain_id} » (domain_name / OS_DOMAIN_NAME)"
    else:
        scope = "sans portée (ni projet, ni domaine)"
    return (f"ces identifiants donnent un jeton {scope}, pas un jeton de projet : popek a besoin d'un compte "
            "sur un projet (project_name / OS_PROJECT_NAME, ou project_id / OS_PROJECT_ID)")


def catalog_mismatch(services: list, region_name: Optional[str], interface: Optional[str]) -> Optional[str]:
    """Why no API of the cloud can be reached with the entry's `region_name` and `interface` (clouds.yaml,
    OS_REGION_NAME, OS_INTERFACE), in French, from the token's catalog (Keystone v3's `services`, each with
    `endpoints` [{interface, region_id, url}]); None when at least one endpoint matches both. A region or
    an interface the catalog does not have is the user's setting, not a fault of the cloud: the `openstack`
    client fails on every command the same way ("… not present in the service catalog")."""
    endpoints = [e for s in services or [] for e in (s.get("endpoints") or []) if isinstance(e, dict)]
    if not any("interface" in e for e in endpoints):
        return None     # an empty or unscoped catalog: the scenarios that read it say so
    def where(e):
        return e.get("region_id") or e.get("region")
    regions = sorted({where(e) for e in endpoints} - {None})
    if region_name and region_name not in regions:
        return (f"la région « {region_name} » (region_name / OS_REGION_NAME) n'est pas dans le catalogue de ce "
                f"cloud ; ses régions : {', '.join(regions) or 'aucune'}")
    # a list (openstacksdk and keystoneauth accept one: its interfaces in order of preference) or one name
    given = [str(i).lower() for i in (interface if isinstance(interface, (list, tuple)) else [interface]) if i]
    wanted = [w[:-3] if w.endswith("url") else w for w in given or ["public"]]     # v2 spelling "internalURL"
    here = sorted({e.get("interface") for e in endpoints if not region_name or where(e) == region_name} - {None})
    if not set(wanted) & set(here):
        place = f" dans la région « {region_name} »" if region_name else ""
        said = " ni ".join(f"« {w} »" for w in dict.fromkeys(wanted))
        return (f"aucune adresse {said} (interface / OS_INTERFACE) dans le catalogue de ce cloud{place} ; "
                f"il a : {', '.join(here)}")
    return None


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


#: The configuration directories of the embedded clouds this process connected to: where an API stops
#: answering, their database and message bus are probed for the cause (only there can popek see them).
EMBEDDED_CONFIGS: set[Path] = set()


def embedded_ovs_ctl() -> Optional[str]:
    """The control socket of the userspace Open vSwitch of the embedded cloud this process connected to
    (`ovs-appctl -t`), None when there is none."""
    for etc in sorted(EMBEDDED_CONFIGS):
        ctl = etc.parent / "ovs" / "ovs-vswitchd.ctl"
        if ctl.exists():
            return str(ctl)
    return None


def embedded_external_bridges() -> list[str]:
    """The host bridges of the embedded cloud's external networks (its L2 agent's bridge_mappings, e.g.
    popek-ex): where this host must send the floating IPs; [] when there is no embedded cloud."""
    import configparser

    found = []
    for etc in sorted(EMBEDDED_CONFIGS):
        agent = configparser.ConfigParser(interpolation=None)
        agent.read(etc / "neutron" / "plugins" / "ml2" / "openvswitch_agent.ini")
        mappings = agent.get("ovs", "bridge_mappings", fallback="")
        found += [m.split(":", 1)[1].strip() for m in mappings.split(",") if ":" in m]
    return found


class EmbeddedLog:
    """The lines a service of the embedded cloud this process connected to writes to its log from now on
    (e.g. neutron-metadata-agent's 403 from nova): evidence read on the host, nothing without an embedded cloud."""

    def __init__(self, service: str):
        logs = [etc.parent / "log" / f"{service}.log" for etc in sorted(EMBEDDED_CONFIGS)]
        self.start = {path: path.stat().st_size for path in logs if path.is_file()}

    def lines(self, needle: str, limit: int = 4 << 20) -> list[str]:
        """The lines written since this object was made that hold `needle` (at most `limit` bytes read)."""
        found = []
        for path, offset in self.start.items():
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    found += [line.decode(errors="replace").strip() for line in f.read(limit).splitlines()
                              if needle.encode() in line]
            except OSError:  # rotated or gone: no evidence, not an error
                continue
        return found


def embedded_int_bridge() -> Optional[str]:
    """The OpenFlow management socket of the embedded cloud's integration bridge (`ovs-ofctl`: Neutron's
    OVS firewall flows), None when there is none."""
    import configparser

    ctl = embedded_ovs_ctl()
    for etc in sorted(EMBEDDED_CONFIGS):
        agent = configparser.ConfigParser(interpolation=None)
        agent.read(etc / "neutron" / "plugins" / "ml2" / "openvswitch_agent.ini")
        bridge = agent.get("ovs", "integration_bridge", fallback=None)
        mgmt = Path(ctl).parent / f"{bridge}.mgmt" if ctl and bridge else None
        if mgmt is not None and mgmt.exists():
            return str(mgmt)
    return None


def stopped_answering(exc: Optional[BaseException]) -> Optional[str]:
    """A short French verdict when a scenario failed because the cloud stopped answering (a service down
    mid-run), found along the exception's causes; else None. Pages of urllib3 frames would hide the one
    fact that matters. On the embedded cloud, its database and bus are probed too: a frozen RabbitMQ or
    MariaDB is the cause behind every API that times out, and is named with what its probe saw."""
    said = _unanswered(exc)
    if said is None:
        return None
    behind = embedded_trouble()
    return f"{said} ; {' ; '.join(behind)}" if behind else said


def embedded_trouble() -> list[str]:
    """What is wrong inside the embedded clouds this process connected to, in French: a database or bus
    that does not greet, a service frozen (SIGSTOP) or dead; [] when nothing (or no embedded cloud)."""
    from popek.checks.cloud import components

    return [found for etc in sorted(EMBEDDED_CONFIGS) if etc.is_dir()
            for found in components.silent_backends(etc) + components.stalled_services(etc.parent)]


def guest_trouble() -> list[str]:
    """embedded_trouble, and the DHCP servers and metadata proxies of the embedded clouds' networks that are
    gone (components.neutron_children): what a guest without lease or metadata may be waiting for."""
    from popek.checks.cloud import components

    return embedded_trouble() + [found for etc in sorted(EMBEDDED_CONFIGS) if etc.is_dir()
                                 for found in components.neutron_children(etc.parent)]


def _unanswered(exc: Optional[BaseException]) -> Optional[str]:
    if exc is None:
        return None
    from keystoneauth1 import exceptions as ks
    import requests

    seen, walked = exc, set()
    while seen is not None and id(seen) not in walked:     # a chain may loop back (an error re-raised in its handler)
        walked.add(id(seen))
        if isinstance(seen, (ks.ConnectFailure, ks.ConnectTimeout, requests.ConnectionError)):
            where = getattr(getattr(seen, "request", None), "url", None) or str(seen).split(": ", 1)[0]
            return f"le cloud ne répond plus pendant le scénario ({type(seen).__name__}) : {where}"
        seen = seen.__cause__ or seen.__context__
    return None
