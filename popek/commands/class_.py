"""`popek class provision|teardown ROSTER.csv --os-cloud ADMIN`: one project and user per student,
and everything removed again (checks/lab/classroom.py). Admin credentials are used here only.

provision writes each student's clouds.yaml and openrc (0600) and the teacher's class clouds.yaml
under --out (default ./popek-class); passwords are never printed. teardown is a dry run unless
--yes is given. A bad roster line is reported with its number and the other students are done;
the exit code is then EXIT_PARTIAL.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from popek import paths

EXIT_PARTIAL = 4        # some roster lines or some students failed (the others were done)


def register(sub):
    p = sub.add_parser("class", help="provision a class on a cloud (a project and user per student), tear it down")
    cs = p.add_subparsers(dest="class_command", metavar="ACTION", required=True)

    def common(sp):
        sp.add_argument("roster", help="CSV with a header: student_id,nom,prenom,email, or Moodle's participants "
                                       "download (Prénom/First name, Nom/Last name, Adresse de courriel/Email address, "
                                       "Numéro d'identification/ID number or Nom d'utilisateur/Username)")
        sp.add_argument("--os-cloud", required=True, help="clouds.yaml entry with the admin role (e.g. popek-admin)")
        sp.add_argument("--prefix", default="tp", help="project and user names: PREFIX-STUDENT_ID (default tp)")
        sp.add_argument("--workers", type=int, default=4, help="students handled at once (default 4)")

    pr = cs.add_parser("provision", help="create (or keep) each student's project, user, role and quota; write credentials")
    common(pr)
    pr.add_argument("--out", default="popek-class", help="folder for the credentials files (default ./popek-class)")
    pr.add_argument("--quota", default=None,
                    help="NAME=N,… over the defaults (names of `openstack quota set`: instances, cores, ram, "
                         "key-pairs, volumes, gigabytes, snapshots, floating-ips, networks, subnets, ports, "
                         "routers, secgroups, secgroup-rules)")
    pr.set_defaults(func=provision)

    td = cs.add_parser("teardown", help="delete every resource, user and project of the class (dry run unless --yes)")
    common(td)
    mode = td.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="only print what would be deleted (the default)")
    mode.add_argument("--yes", action="store_true", help="really delete")
    td.set_defaults(func=teardown)


def _roster(args):
    from popek.checks.lab import roster
    from popek.errors import UserError
    try:
        students, problems = roster.read(Path(args.roster))
    except roster.RosterError as exc:
        raise UserError(f"liste d'étudiants inutilisable : {exc}") from None
    for p in problems:
        print(f"popek: ligne ignorée : {p}", file=sys.stderr)
    if not students:
        raise UserError("aucun étudiant valide dans la liste")
    return students, problems


def _admin(args):
    from popek.checks.cloud.connection import CloudUnavailable, connect
    from popek.errors import UserError
    try:
        cloud = connect(args.os_cloud, os.environ, paths.embedded_clouds_yaml())
    except CloudUnavailable as exc:
        raise UserError(str(exc)) from None
    if "admin" not in cloud.roles:
        raise UserError(f"--os-cloud {args.os_cloud} n'a pas le rôle admin (rôles : {', '.join(cloud.roles) or 'aucun'}) ; "
                        "il faut des identifiants d'administrateur pour créer projets et utilisateurs")
    return cloud.conn


def provision(args) -> int:
    from popek.checks.lab import classroom
    from popek.errors import UserError
    try:
        quota = classroom.parse_quota(args.quota)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    students, bad = _roster(args)
    admin = _admin(args)
    from popek.progress import Counter

    with Counter(len(students), "étudiants") as log:
        report = classroom.provision(admin, students, Path(args.out), quota, args.prefix, args.workers, log=log)
    done = len(students) - len(report.problems)
    print(f"{done}/{len(students)} étudiant(s) prêts en {report.seconds:.1f} s ; identifiants dans {Path(args.out).resolve()} "
          f"(un dossier par étudiant ; clouds.yaml de la classe pour « popek lab grade --class »)")
    for p in report.problems:
        print(f"popek: {p}", file=sys.stderr)
    return EXIT_PARTIAL if bad or report.problems else 0


def teardown(args) -> int:
    from popek.checks.lab import classroom
    students, bad = _roster(args)
    admin = _admin(args)
    dry = not args.yes
    from popek.progress import Counter

    with Counter(len(students), "étudiants") as log:
        plans, seconds = classroom.teardown(admin, students, args.prefix, dry_run=dry, workers=args.workers, log=log)
    failed = [p for p in plans if p.problem]
    if dry:
        print(f"simulation : rien n'a été supprimé ({len(plans)} étudiant(s)) ; relancez avec --yes pour supprimer")
    else:
        print(f"{len(plans) - len(failed)}/{len(plans)} étudiant(s) supprimé(s) en {seconds:.1f} s")
    return EXIT_PARTIAL if bad or failed else 0
