"""`popek cloud up|down|status|env|destroy`: the embedded OpenStack cloud, on 127.0.0.1 only."""
from __future__ import annotations

import time

from popek import paths


def register(sub):
    p = sub.add_parser("cloud", help="the embedded OpenStack cloud (up, down, status, env, destroy)")
    cmds = p.add_subparsers(dest="cloud_command", metavar="ACTION", required=True)
    up = cmds.add_parser("up", help="install on first use, then start every service; on a running cloud, restart "
                                    "only the services that are down or do not answer (nothing else is stopped)")
    up.add_argument("--no-dataplane", action="store_true",
                    help="API-only cloud (fake compute driver) even when the dataplane module is present")
    up.add_argument("--force", action="store_true",
                    help="let a mode switch delete servers popek did not make (refused otherwise, naming them)")
    up.set_defaults(func=cmd_up)
    cmds.add_parser("down", help="stop every process of the embedded cloud").set_defaults(func=cmd_down)
    cmds.add_parser("status", help="each service: pid, health, log").set_defaults(func=cmd_status)
    env = cmds.add_parser("env", help="where clouds.yaml and the openrc files are, and how to use them")
    env.add_argument("--export", action="store_true",
                     help="print only the shell exports, for: eval \"$(popek cloud env --export)\"")
    env.set_defaults(func=cmd_env)
    cmds.add_parser("destroy", help="down, then delete the cloud's state (venv, databases, passwords)").set_defaults(
        func=cmd_destroy)
    add_sweep(cmds)
    return p


def _state():
    from popek.checks.localcloud.state import CloudState

    return CloudState(paths.embedded_cloud_dir())


def _user_errors(fn):
    """CloudError (a message for the user) becomes popek's UserError: one line, exit code 1. SIGTERM (a CI job
    cancelled, `kill`, a closed session's group) interrupts as Ctrl-C does: without it an `up` died at once and
    left its services, its nftables table and a booting smoke instance running, which the next `up` took
    for a whole cloud (measured 2026-12-07, hT). Put back as it was at the end (cli.main may run in-process)."""
    def wrapper(args):
        import signal

        from popek.checks.cloud.ledger import terminate_like_ctrl_c
        from popek.checks.localcloud.errors import CloudError
        from popek.errors import UserError

        installed = terminate_like_ctrl_c()
        try:
            return fn(args)
        except CloudError as exc:
            raise UserError(str(exc), 1) from None
        finally:
            if installed:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return wrapper


@_user_errors
def cmd_up(args) -> int:
    from popek.checks.localcloud import lifecycle

    state = _state()
    print(f"popek cloud up : état dans {state.root}", flush=True)
    from popek.progress import Steps

    with Steps() as log:        # a terminal shows each long step running (venv, image builds, databases)
        lifecycle.up(state, dataplane=not args.no_dataplane, log=log, force=args.force)
    print("popek cloud up : `popek cloud env` pour s'en servir", flush=True)
    return 0


@_user_errors
def cmd_down(args) -> int:
    from popek.checks.localcloud import lifecycle

    from popek.checks.localcloud import services

    state = _state()
    t0 = time.monotonic()
    left = lifecycle.down(state)
    if left:
        print(f"popek cloud down : processus du cloud encore en vie : {' '.join(map(str, left))}")
        return 1
    print(f"popek cloud down : tout est arrêté ({time.monotonic() - t0:.1f} s)")
    for pid, cmd in services.using_venv(state):  # not started by `up` (a client, say): shown, not killed
        print(f"  encore en marche depuis le venv du cloud (non lancé par popek cloud up) : {pid} {cmd}")
    return 0


@_user_errors
def cmd_status(args) -> int:
    from popek.checks.localcloud import lifecycle

    state = _state()
    mode, rows = lifecycle.status(state)
    print(f"cloud embarqué : {state.root}")
    print(f"mode : {lifecycle.mode_label(mode)}")
    mod = lifecycle.dataplane_module()
    if mod is not None and hasattr(mod, "status"):
        print(f"plan de données : {mod.status(state)}")
    unfenced = False    # the guests' fence seen gone (root only: without root nft cannot read it), or nft missing
    stopped = not any(r.ok for r in rows)   # nothing of the cloud runs (after `down`): no fence is expected
    if mode.get("dataplane"):
        from popek.checks.localcloud import fence

        seen = fence.reading()
        if stopped and seen == fence.ABSENT:
            print("clôture des instances : aucune, le cloud est arrêté (`popek cloud up` la met en place)")
        else:
            print(fence.status(seen))
            unfenced = seen in (fence.ABSENT, fence.NO_NFT)
    if not rows:
        print("aucun service démarré (`popek cloud up`)")
        return 3
    width = max(len(r.name) for r in rows)
    for r in rows:
        verdict = "ok" if r.ok else ("ne répond pas" if r.pid else "arrêté")
        print(f"  {r.name:<{width}}  pid {r.pid or '-':>7}  {verdict:<13} {r.health:<40} {r.log}")
    up = sum(r.ok for r in rows)
    print(f"{up}/{len(rows)} services en marche")
    if unfenced:
        print("cloud dégradé : clôture des instances absente ; `popek cloud up` la remet")
    elif stopped:
        print("cloud arrêté : `popek cloud up` le démarre")
    return 0 if up == len(rows) and not unfenced else 3


@_user_errors
def cmd_env(args) -> int:
    state = _state()
    yaml_path = paths.embedded_clouds_yaml()
    if not yaml_path.exists():
        print("pas encore de clouds.yaml : lancez `popek cloud up`")
        return 3
    if args.export:
        print(f"export OS_CLIENT_CONFIG_FILE={yaml_path}\nexport OS_CLOUD=popek")
        return 0
    print(f"""clouds.yaml : {yaml_path}  (mots de passe générés à l'installation, fichier en mode 0600)
  nuages : popek (utilisateur membre, projet demo) et popek-admin (administrateur)

Recommandé (n'écrase rien dans ~/.config/openstack) :
  export OS_CLIENT_CONFIG_FILE={yaml_path}
  export OS_CLOUD=popek
  (ou : eval "$(popek cloud env --export)")
  openstack server list
  openstack server create --flavor small --image 'Debian 13' --net public mon-instance

Ou un fichier openrc, comme dans le cours :
  source {state.openrc('popek')}        # membre
  source {state.openrc('popek-admin')}  # administrateur

popek lui-même trouve ce nuage sans réglage : `popek run cloud` (ou --os-cloud popek-admin).
Copier le fichier dans ~/.config/openstack/clouds.yaml marche aussi, mais remplacerait vos autres nuages.""")
    return 0


@_user_errors
def cmd_destroy(args) -> int:
    from popek.checks.localcloud import lifecycle

    state = _state()
    lifecycle.destroy(state)
    print(f"popek cloud destroy : {state.root} supprimé (images construites gardées dans {state.image_cache})")
    return 0


# --- `popek cloud sweep`: resources left behind by earlier popek runs (any cloud, not only the embedded one) ---

def add_sweep(cmds) -> None:
    sweep = cmds.add_parser("sweep", help="delete what earlier popek runs left in a cloud (names popek-<run id>-…); "
                                          "not while a popek run uses that cloud")
    sweep.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    sweep.add_argument("--older-than", type=float, default=30, metavar="MINUTES",
                       help="leave alone every run whose heartbeat (else newest resource) is younger than MINUTES "
                            "(default 30, at least 2.5: a live run refreshes its heartbeat every 2 min; "
                            "0 sweeps every run, also one running now)")
    sweep.add_argument("--os-cloud", default=None,
                       help="cloud of clouds.yaml (default: $OS_CLOUD, an openrc, else the embedded cloud)")
    sweep.set_defaults(func=cmd_sweep)


@_user_errors
def cmd_sweep(args) -> int:
    import os

    from popek.checks.cloud import connection, ledger, probe
    from popek.errors import UserError

    if args.older_than < 0 or 0 < args.older_than * 60 < ledger.LIVE_HEARTBEAT_AGE:
        # a live run refreshes its heartbeat every HEARTBEAT_EVERY s: a shorter age would take it for dead
        raise UserError(f"--older-than {args.older_than:g} : un run en cours ne rafraîchit son signe de vie que toutes "
                        f"les {ledger.HEARTBEAT_EVERY // 60} min, il serait pris pour mort et ses ressources supprimées ; "
                        f"au moins {ledger.LIVE_HEARTBEAT_AGE / 60:g} min (ou 0 pour tout supprimer, runs en cours "
                        "compris)".replace(".", ","))
    try:
        cloud = connection.connect(args.os_cloud, os.environ, paths.embedded_clouds_yaml())
    except connection.CloudUnavailable as exc:
        raise UserError(str(exc), 1) from None
    found, problems = ledger.sweep(cloud.conn, None, dry_run=args.dry_run, min_age=args.older_than * 60,
                                   read_only=probe.read_only(cloud.roles))
    verb = "à supprimer" if args.dry_run else "supprimé"
    for entry in found:
        print(f"{verb} : {entry.kind:<15} {entry.name}  ({entry.id})")
    for problem in problems:
        print(f"échec : {problem}")
    print(f"popek cloud sweep : {len(found)} ressource(s) de runs précédents {'trouvée(s)' if args.dry_run else 'traitée(s)'}"
          f", {len(problems)} échec(s) ({cloud.choice.describe()})")
    return 1 if problems else 0
