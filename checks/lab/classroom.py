"""A class on a cloud: one project and one user per student (provision), and everything removed
again (teardown), with the admin credentials only.

provision(admin, students, out, quota):
  for each student, project `<prefix>-<id>` (tagged `popek-class`) and user `<prefix>-<id>`, the
  `member` role on the project, the quota, a generated password; written for distribution:
      <out>/<id>/clouds.yaml  (entry `<id>`)   <out>/<id>/openrc      (files 0600, folders 0700)
  and the teacher's `<out>/clouds.yaml` (every student, for `popek lab grade --class`).
  Idempotent: an existing project/user is kept; its password is kept when <out>/<id>/clouds.yaml
  still authenticates, else a new one is set. The teacher's admin user also gets the `admin` role on
  each project so that teardown can empty it (Swift containers are reachable only from inside).
  Passwords are never printed (and are fed to the redactor).
teardown(admin, students, dry_run):
  lists, then deletes (dry_run=False), every resource of each student's project, then the user and the
  project. Deleting is openstacksdk's `Connection.project_cleanup` on the student's project (servers and
  server groups; volume backups, snapshots and volumes in that order; floating IPs, security groups,
  networks with their routers, subnets and ports; containers and objects; images; stacks, zones… when the
  cloud has them), then a second pass with the ledger's listers and deleters for what project_cleanup
  leaves by design or after an error it only logs: a router with no interface left, ports still bound,
  the project's `default` security group; then the user's keypairs (they belong to the user, not the
  project), the user and the project. A project that still holds something after both passes is kept
  (the problem names what is left) so that a second teardown can finish it. Only projects tagged
  `popek-class` are touched. A project already gone is a no-op. The dry run deletes nothing (listing a
  project's security groups does make Neutron create its `default` group if it had none).
Calls are retried on transient cloud errors (retry.py): provisioning a student is idempotent.
Resources are found and deleted with the cleanup ledger's own listers and deleters (ledger.py).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import secrets
import shlex
import time
from pathlib import Path
from typing import Callable, Optional

import yaml

from popek.checks.cloud import ledger
from popek.checks.lab.retry import retry
from popek.checks.lab.roster import Student
from popek.checks.secrets import REDACT

TAG = "popek-class"
USER_MARK = "popek class"

#: --quota names (those of `openstack quota set`) -> (service, SDK quota attribute).
QUOTAS = {
    "instances": ("compute", "instances"), "cores": ("compute", "cores"), "ram": ("compute", "ram"),
    "key-pairs": ("compute", "key_pairs"),
    "volumes": ("volume", "volumes"), "gigabytes": ("volume", "gigabytes"), "snapshots": ("volume", "snapshots"),
    "floating-ips": ("network", "floating_ips"), "networks": ("network", "networks"),
    "subnets": ("network", "subnets"), "ports": ("network", "ports"), "routers": ("network", "routers"),
    "secgroups": ("network", "security_groups"), "secgroup-rules": ("network", "security_group_rules"),
}
#: Enough for the TP (one small instance, a volume, a floating IP behind a router), not much more.
DEFAULT_QUOTA = {"instances": 2, "cores": 4, "ram": 8192, "key-pairs": 5, "volumes": 2, "gigabytes": 10,
                 "snapshots": 2, "floating-ips": 2, "networks": 2, "subnets": 2, "ports": 10, "routers": 1,
                 "secgroups": 5, "secgroup-rules": 30}

#: Teardown order: ledger.SWEEP_ORDER without keypairs (they belong to the user, not the project).
TEARDOWN_ORDER = tuple(k for k in ledger.SWEEP_ORDER if k != "keypair")


def parse_quota(text: Optional[str]) -> dict[str, int]:
    """`instances=2,cores=4` over DEFAULT_QUOTA; ValueError (French) on an unknown name or a bad number."""
    quota = dict(DEFAULT_QUOTA)
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in QUOTAS:
            raise ValueError(f"quota {item.strip()!r} : attendu NOM=ENTIER, NOM parmi {', '.join(QUOTAS)}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"quota {name} : entier attendu, trouvé {value.strip()!r}") from None
        if number < -1:
            raise ValueError(f"quota {name} : entier >= -1 attendu (-1 = illimité)")
        quota[name] = number
    return quota


def account_name(prefix: str, student: Student) -> str:
    """The project's and the user's name."""
    return f"{prefix}-{student.id}"


# --- credentials files -----------------------------------------------------------------------------

def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600), even if the file existed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)


def cloud_entry(site: dict, username: str, password: str, project_id: str, project_name: str) -> dict:
    """A clouds.yaml entry for one student. site: auth_url, region_name, interface, domain_id."""
    entry = {"auth": {"auth_url": site["auth_url"], "username": username, "password": password,
                      "project_id": project_id, "project_name": project_name,
                      "user_domain_id": site["domain_id"], "project_domain_id": site["domain_id"]},
             "identity_api_version": 3}
    for key in ("region_name", "interface"):
        if site.get(key):
            entry[key] = site[key]
    return entry


def openrc_text(entry: dict, student: Student) -> str:
    """An openrc (the course's form: Keystone URL, login, password, project) for `entry`."""
    a = entry["auth"]
    lines = [f"# openrc de {student.prenom} {student.nom} ({student.id}) : source openrc".replace("  ", " "),
             f"export OS_AUTH_URL={shlex.quote(a['auth_url'])}",
             f"export OS_USERNAME={shlex.quote(a['username'])}",
             f"export OS_PASSWORD={shlex.quote(a['password'])}",
             f"export OS_PROJECT_ID={shlex.quote(a['project_id'])}",
             f"export OS_PROJECT_NAME={shlex.quote(a['project_name'])}",
             f"export OS_USER_DOMAIN_ID={shlex.quote(a['user_domain_id'])}",
             f"export OS_PROJECT_DOMAIN_ID={shlex.quote(a['project_domain_id'])}",
             "export OS_IDENTITY_API_VERSION=3"]
    if entry.get("region_name"):
        lines.append(f"export OS_REGION_NAME={shlex.quote(entry['region_name'])}")
    if entry.get("interface"):
        # clouds.yaml may give a list (interfaces in order of preference); OS_INTERFACE takes one: the first
        interface = entry["interface"]
        interface = interface[0] if isinstance(interface, (list, tuple)) else interface
        lines.append(f"export OS_INTERFACE={shlex.quote(str(interface))}")
    return "\n".join(lines) + "\n"


def write_student_files(out: Path, student: Student, entry: dict) -> list[Path]:
    """<out>/<id>/clouds.yaml and <out>/<id>/openrc (0600)."""
    folder = Path(out) / student.id
    yaml_path, rc_path = folder / "clouds.yaml", folder / "openrc"
    _write_private(yaml_path, yaml.safe_dump({"clouds": {student.id: entry}}, sort_keys=False, allow_unicode=True))
    _write_private(rc_path, openrc_text(entry, student))
    return [yaml_path, rc_path]


def write_class_yaml(out: Path, entries: dict[str, dict]) -> Path:
    """<out>/clouds.yaml: the existing entries updated with `entries` (student id -> entry), 0600."""
    path = Path(out) / "clouds.yaml"
    clouds = {}
    if path.is_file():
        try:
            clouds = (yaml.safe_load(path.read_text()) or {}).get("clouds") or {}
        except yaml.YAMLError:
            clouds = {}
    clouds.update(entries)
    _write_private(path, yaml.safe_dump({"clouds": dict(sorted(clouds.items()))}, sort_keys=False, allow_unicode=True))
    return path


def stored_password(out: Path, student: Student) -> Optional[str]:
    """The password written by an earlier provision in <out>/<id>/clouds.yaml, or None."""
    try:
        data = yaml.safe_load((Path(out) / student.id / "clouds.yaml").read_text())
        return data["clouds"][student.id]["auth"]["password"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def authenticates(entry: dict, timeout: float = 15.0) -> bool:
    """True when Keystone gives a token for these credentials (False on 401)."""
    from keystoneauth1 import exceptions as ks
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    a = entry["auth"]
    auth = v3.Password(auth_url=a["auth_url"], username=a["username"], password=a["password"],
                       user_domain_id=a["user_domain_id"], project_id=a["project_id"])
    try:
        ks_session.Session(auth=auth, timeout=timeout).get_token()
        return True
    except ks.Unauthorized:
        return False


# --- provision ------------------------------------------------------------------------------------

@dataclasses.dataclass
class StudentReport:
    student: str
    actions: list[str] = dataclasses.field(default_factory=list)      # French, no secrets
    problem: str = ""
    project_id: str = ""
    user_id: str = ""


@dataclasses.dataclass
class ClassReport:
    students: list[StudentReport] = dataclasses.field(default_factory=list)
    files: list[Path] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        return [f"{s.student}: {s.problem}" for s in self.students if s.problem]


def site_of(admin) -> dict:
    """Where students authenticate: the admin cloud's Keystone, region, interface and project domain."""
    auth = admin.config.config.get("auth") or {}
    access = admin.session.auth.get_access(admin.session)
    return {"auth_url": auth.get("auth_url"), "region_name": admin.config.get_region_name(),
            "interface": admin.config.get_interface(), "domain_id": access.project_domain_id or "default"}


def _role(admin, name: str):
    role = admin.identity.find_role(name)
    if role is None:
        raise LookupError(f"rôle « {name} » introuvable dans Keystone")
    return role


def _set_quota(admin, project_id: str, quota: dict[str, int]) -> None:
    by_service: dict[str, dict] = {}
    for name, value in quota.items():
        service, attr = QUOTAS[name]
        by_service.setdefault(service, {})[attr] = value
    if by_service.get("compute"):
        admin.compute.update_quota_set(project_id, **by_service["compute"])
    if by_service.get("volume"):
        admin.block_storage.update_quota_set(project_id, **by_service["volume"])
    if by_service.get("network"):
        admin.network.update_quota(project_id, **by_service["network"])


def provision_one(admin, site: dict, student: Student, out: Path, quota: dict, prefix: str,
                  roles: dict) -> tuple[StudentReport, Optional[dict]]:
    """Project, user, role, quota and files for one student; returns (report, clouds.yaml entry)."""
    rep = StudentReport(student.id)
    name = account_name(prefix, student)
    project = admin.identity.find_project(name, domain_id=site["domain_id"])
    if project is None:
        project = admin.identity.create_project(
            name=name, domain_id=site["domain_id"], tags=[TAG],
            description=f"TP popek : {student.prenom} {student.nom} ({student.id})".strip())
        rep.actions.append("projet créé")
    elif TAG not in (project.tags or []):
        rep.problem = f"le projet « {name} » existe mais n'a pas été créé par popek (étiquette {TAG} absente) : ignoré"
        return rep, None
    else:
        rep.actions.append("projet existant conservé")
    rep.project_id = project.id

    user = admin.identity.find_user(name, domain_id=site["domain_id"])
    password = None
    if user is None:
        password = secrets.token_urlsafe(18)
        REDACT.add(password)
        user = admin.identity.create_user(name=name, password=password, domain_id=site["domain_id"],
                                          default_project_id=project.id, email=student.email or None,
                                          description=f"{USER_MARK} : {student.prenom} {student.nom}".strip())
        rep.actions.append("utilisateur créé")
    elif not (user.description or "").startswith(USER_MARK):
        rep.problem = f"l'utilisateur « {name} » existe mais n'a pas été créé par popek : ignoré"
        return rep, None
    rep.user_id = user.id
    admin.identity.assign_project_role_to_user(project, user, roles["member"])
    admin.identity.assign_project_role_to_user(project, roles["teacher"], roles["admin"])
    if password is None:
        old = stored_password(out, student)
        entry = cloud_entry(site, name, old, project.id, name) if old else None
        if entry and authenticates(entry):
            password = old
            REDACT.add(password)
            rep.actions.append("utilisateur existant conservé (mot de passe inchangé)")
        else:
            password = secrets.token_urlsafe(18)
            REDACT.add(password)
            admin.identity.update_user(user, password=password)
            rep.actions.append("utilisateur existant conservé, nouveau mot de passe (l'ancien est inconnu ici)")
    _set_quota(admin, project.id, quota)
    rep.actions.append("quota appliqué")
    return rep, cloud_entry(site, name, password, project.id, name)


def provision(admin, students: list[Student], out: Path, quota: dict, prefix: str = "tp", workers: int = 4,
              log: Callable[[str], None] = lambda s: None) -> ClassReport:
    """Provision every student (see module doc); one student's failure does not stop the others.

    admin: a Connection with the admin role; out: folder for the credentials files; quota: parse_quota();
    prefix: project/user name prefix; workers: concurrent students; log: one French line per student."""
    t0 = time.perf_counter()
    site = site_of(admin)
    me = admin.session.auth.get_access(admin.session).user_id
    roles = {"member": _role(admin, "member"), "admin": _role(admin, "admin"), "teacher": me}
    for proxy in ("identity", "compute", "network", "block_storage"):
        getattr(admin, proxy)  # create the proxies before the threads share the connection
    report = ClassReport()
    entries: dict[str, dict] = {}

    def one(student):
        try:
            rep, entry = retry(provision_one, admin, site, student, Path(out), quota, prefix, roles)  # idempotent
        except Exception as exc:  # report it with the student, go on with the others
            rep, entry = StudentReport(student.id, problem=REDACT(f"{type(exc).__name__}: {exc}")), None
        if entry:
            report.files.extend(write_student_files(Path(out), student, entry))
            entries[student.id] = entry
        log(f"{student.id} : " + (rep.problem or ", ".join(rep.actions)))
        return rep

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        report.students = list(pool.map(one, students))
    if entries:
        report.files.append(write_class_yaml(Path(out), entries))
    report.seconds = time.perf_counter() - t0
    return report


# --- teardown -------------------------------------------------------------------------------------

@dataclasses.dataclass
class Plan:
    """What teardown finds for one student: (kind, name) of each resource, then the user and project."""
    student: str
    project_id: str = ""
    user_id: str = ""
    resources: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    keypairs: list[str] = dataclasses.field(default_factory=list)
    problem: str = ""
    note: str = ""
    cleaned: int = 0        # resources openstacksdk's project_cleanup handled


def _find_owned(admin, student: Student, prefix: str, domain_id: str):
    name = account_name(prefix, student)
    project = admin.identity.find_project(name, domain_id=domain_id)
    user = admin.identity.find_user(name, domain_id=domain_id)
    if project is not None and TAG not in (project.tags or []):
        raise PermissionError(f"le projet « {name} » n'a pas été créé par popek (étiquette {TAG} absente) : non touché")
    if user is not None and not (user.description or "").startswith(USER_MARK):
        raise PermissionError(f"l'utilisateur « {name} » n'a pas été créé par popek : non touché")
    return project, user


def _scoped(admin, project, teacher: str, admin_role, assign: bool):
    """A connection of the admin user scoped to the student's project (None when it has no role there
    and assign is False, i.e. a dry run that must change nothing)."""
    if assign:
        admin.identity.assign_project_role_to_user(project, teacher, admin_role)
    elif not any(True for _ in admin.identity.role_assignments(scope_project_id=project.id, user_id=teacher)):
        return None
    return admin.connect_as_project({"id": project.id, "name": project.name, "domain_id": project.domain_id})


def _listed(conn, kind: str) -> list[tuple[str, str]]:
    """(id, name) of the resources of `kind` in the project; none when the cloud lacks the service."""
    from openstack import exceptions as sdk_exc
    try:
        return ledger.list_named(conn, kind)
    except (sdk_exc.EndpointNotFound, sdk_exc.ServiceDisabledException, sdk_exc.NotSupported):
        return []


def _list_all(conn) -> list[tuple[str, str, str]]:
    return [(kind, r_id, r_name) for kind in TEARDOWN_ORDER for r_id, r_name in _listed(conn, kind)]


def _forget_failed_snapshots(conn, timeout: float) -> int:
    """Volume snapshots of the project whose creation failed (status `error`, or `error_deleting` after a
    deletion the driver refused): they hold no data, yet block their volume's deletion and a driver that
    could not make them often cannot delete them either (NotImplementedError → error_deleting for ever).
    They are removed from Cinder's books with the admin's `os-unmanage`. Returns how many."""
    from openstack import exceptions as sdk_exc

    try:
        failed = [s for s in conn.block_storage.snapshots() if s.status in ("error", "error_deleting")]
    except (sdk_exc.EndpointNotFound, sdk_exc.ServiceDisabledException, sdk_exc.NotSupported):
        return 0
    for snap in failed:
        if snap.status != "error":
            ledger.ignore_gone(conn.block_storage.reset_snapshot_status, snap, "error")
        ledger.ignore_gone(conn.block_storage.unmanage_snapshot, snap)
    for snap in failed:
        ledger.ignore_gone(conn.block_storage.wait_for_delete, snap, interval=1, wait=timeout)
    return len(failed)


def _project_cleanup(conn, timeout: float) -> int:
    """openstacksdk's project_cleanup of `conn`'s project (see module doc); returns how many resources it
    handled. It logs the errors of a service's cleanup instead of raising them: the second pass and the
    final listing of teardown_one find what it left."""
    import queue

    handled: "queue.Queue" = queue.Queue()
    try:
        conn.project_cleanup(dry_run=False, wait_timeout=timeout, status_queue=handled)
    except Exception:   # a timeout of one service's cleanup: the second pass takes over
        pass
    return handled.qsize()


def teardown_one(admin, student: Student, prefix: str, domain_id: str, roles: dict, dry_run: bool,
                 timeout: float = 120.0) -> Plan:
    """Find (and unless dry_run delete) everything of one student; see module doc."""
    plan = Plan(student.id)
    project, user = _find_owned(admin, student, prefix, domain_id)
    if user is not None:
        plan.user_id = user.id
        plan.keypairs = [k.name for k in admin.compute.keypairs(user_id=user.id)]
    if project is None:
        if user is None:
            plan.note = "rien à supprimer (déjà fait)"
        return _finish(admin, plan, project, user, dry_run)
    plan.project_id = project.id
    scoped = _scoped(admin, project, roles["teacher"], roles["admin"], assign=not dry_run)
    if scoped is None:
        plan.note = "contenu du projet non listé (l'administrateur n'y a pas de rôle ; il en recevra un à la suppression)"
        return _finish(admin, plan, project, user, dry_run)
    try:
        found = _list_all(scoped)
        plan.resources = [(kind, name or r_id) for kind, r_id, name in found]
        if not dry_run:
            failed = _forget_failed_snapshots(scoped, timeout)
            if failed:
                plan.note = (f"{failed} instantané(s) en erreur retiré(s) des registres de Cinder (unmanage) : "
                             "leur création avait échoué, le pilote ne sait pas les supprimer")
            plan.cleaned = _project_cleanup(scoped, timeout)
            problems = []
            for kind in TEARDOWN_ORDER:    # re-listed kind by kind: deleting a server frees its ports
                for r_id, r_name in _listed(scoped, kind):
                    try:
                        retry(ledger.DELETERS[kind], scoped, ledger.Entry(kind, r_name, r_id), timeout)
                    except Exception as exc:
                        problems.append(f"{kind} {r_name or r_id} ({r_id}): {type(exc).__name__}: {exc}")
            # counted by the admin, not listed in the project (that would make Neutron create a new default group)
            left = [f"{n} {kind}" for kind, n in residue(admin, project.id).items() if n and kind != "keypairs"]
            if left and not problems:
                problems.append("toujours présent(s) après suppression : " + ", ".join(left))
            if problems:
                plan.problem = "; ".join(problems)
    finally:
        scoped.close()
    return _finish(admin, plan, project, user, dry_run)


def _finish(admin, plan: Plan, project, user, dry_run: bool) -> Plan:
    if dry_run or plan.problem:
        return plan
    for name in plan.keypairs:
        ledger.ignore_gone(admin.compute.delete_keypair, name, ignore_missing=True, user_id=plan.user_id)
    if user is not None:
        ledger.ignore_gone(admin.identity.delete_user, user, ignore_missing=True)
    if project is not None:
        ledger.ignore_gone(admin.identity.delete_project, project, ignore_missing=True)
    return plan


def teardown(admin, students: list[Student], prefix: str = "tp", dry_run: bool = True, workers: int = 4,
             log: Callable[[str], None] = lambda s: None) -> tuple[list[Plan], float]:
    """Teardown every student (see module doc); returns (plans, seconds). One failure does not stop the rest."""
    t0 = time.perf_counter()
    site = site_of(admin)
    me = admin.session.auth.get_access(admin.session).user_id
    roles = {"admin": _role(admin, "admin"), "teacher": me}
    for proxy in ("identity", "compute", "network", "block_storage"):
        getattr(admin, proxy)

    def one(student):
        try:
            plan = teardown_one(admin, student, prefix, site["domain_id"], roles, dry_run)
        except Exception as exc:
            plan = Plan(student.id, problem=f"{type(exc).__name__}: {exc}")
        log(describe(plan, dry_run))
        return plan

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        plans = list(pool.map(one, students))
    return plans, time.perf_counter() - t0


def describe(plan: Plan, dry_run: bool) -> str:
    """One French paragraph: what is (or would be) deleted for this student."""
    verb = "supprimerait" if dry_run else "supprimé"
    if plan.problem:
        return f"{plan.student} : ÉCHEC : {plan.problem}"
    if not plan.project_id and not plan.user_id:
        return f"{plan.student} : {plan.note or 'rien à supprimer'}"
    items = [f"{kind} {name}" for kind, name in plan.resources] + [f"keypair {k}" for k in plan.keypairs]
    if plan.user_id:
        items.append("l'utilisateur")
    if plan.project_id:
        items.append("le projet")
    text = f"{plan.student} : {verb} : " + ", ".join(items)
    return text + (f" ({plan.note})" if plan.note else "")


def residue(admin, project_id: str, user_id: str = "") -> dict[str, int]:
    """How many resources the admin still sees for this project (and user's keypairs): all zero after
    a complete teardown. Works after the project itself is gone (filters by id). A service the cloud does
    not have counts 0. (Swift containers are not visible from outside the project: teardown_one deletes
    them from inside.)"""
    from openstack import exceptions as sdk_exc

    pid = {"project_id": project_id}
    listers = {
        "servers": lambda: admin.compute.servers(all_projects=True, **pid),
        "server_groups": lambda: (g for g in admin.compute.server_groups(all_projects=True) if g.project_id == project_id),
        "volumes": lambda: admin.block_storage.volumes(all_projects=True, **pid),
        "snapshots": lambda: admin.block_storage.snapshots(all_projects=True, **pid),
        "backups": lambda: admin.block_storage.backups(all_projects=True, **pid),
        "networks": lambda: admin.network.networks(**pid),
        "subnets": lambda: admin.network.subnets(**pid),
        "ports": lambda: admin.network.ports(**pid),
        "routers": lambda: admin.network.routers(**pid),
        "floating_ips": lambda: admin.network.ips(**pid),
        # Neutron *creates* a project's default security group when its groups or rules are listed with
        # that project_id filter: list them all and filter here, so that counting creates nothing.
        "security_groups": lambda: (g for g in admin.network.security_groups() if g.project_id == project_id),
        "security_group_rules": lambda: (r for r in admin.network.security_group_rules() if r.project_id == project_id),
        "images": lambda: admin.image.images(owner=project_id),
        "keypairs": lambda: admin.compute.keypairs(user_id=user_id) if user_id else (),
    }
    counts = {}
    for kind, listing in listers.items():
        try:
            counts[kind] = sum(1 for _ in listing())
        except (sdk_exc.EndpointNotFound, sdk_exc.ServiceDisabledException, sdk_exc.NotSupported):
            counts[kind] = 0
    return counts
