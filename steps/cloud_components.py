"""Glue for features/cloud/composants.feature -> popek.checks.cloud.components."""
from pytest_bdd import then, when

from popek.checks.cloud import components


@when("je lis la configuration des services du cloud embarqué", target_fixture="wiring")
def read_wiring(cloud, evidence):
    rows = components.wiring(cloud.embedded_root / "etc")
    evidence.json("bases de données et bus de messages (sans mots de passe)", rows)
    return rows


@then("Nova range ses données dans une base MariaDB qui répond")
def nova_on_mariadb(cloud, wiring, evidence):
    dbs = [r for r in wiring if r["service"] == "nova" and r["rôle"] == "base de données"]
    assert dbs and all(r["scheme"].startswith("mysql") for r in dbs), f"bases de Nova : {dbs}"
    where = dbs[0]["socket"] or f"{dbs[0]['host']}:{dbs[0]['port'] or 3306}"
    try:
        version = components.mysql_greeting(dbs[0]["socket"], dbs[0]["host"], dbs[0]["port"] or 3306)
    except OSError as exc:
        raise AssertionError(f"la base de Nova ne répond pas à {where} : {type(exc).__name__} {exc}") from None
    evidence.figure("serveur SQL de Nova", version)
    assert "mariadb" in version.lower(), f"le serveur SQL se présente comme {version!r}"
    # a server that greets and reads yet refuses every write (read_only) keeps no data for Nova
    refusing = components.read_only_databases(cloud.embedded_root)
    evidence.figure("écritures refusées par la base", " ; ".join(refusing) or "aucune")
    assert not refusing, " ; ".join(refusing)


@then("les services se parlent par un bus RabbitMQ qui répond")
def rabbit(cloud, wiring, evidence):
    buses = [r for r in wiring if r["rôle"] == "bus de messages"]
    assert buses and all(r["scheme"] == "rabbit" for r in buses), f"bus : {buses}"
    host, port = buses[0]["host"], buses[0]["port"] or 5672
    try:
        hello = components.amqp_greeting(host, port)
    except OSError as exc:
        raise AssertionError(f"le bus de messages ne répond pas à {host}:{port} : {type(exc).__name__} {exc}") from None
    evidence.figure("bus de messages", f"{hello.get('product')} {hello.get('version')}")
    assert hello.get("product") == "RabbitMQ", f"le broker se présente comme {hello}"
    # a broker that greets yet blocks every publisher (a memory or disk alarm) carries no message between services
    # (the broker asked once per run: the log's tail the waits read can have lost an old alarm under newer lines)
    alarms, source = components.asked_bus_alarms(cloud.embedded_root)
    evidence.figure("alarmes du bus", f"{' ; '.join(alarms) or 'aucune'} (source : {source})")
    assert not alarms, f"le bus RabbitMQ ({host}:{port}) répond à l'accueil AMQP mais ne transmet plus : " \
        + " ; ".join(alarms)


@then("je relève le stockage derrière les volumes (Ceph ou autre)")
def volume_storage(cloud, evidence):
    drivers = components.volume_backends(cloud.embedded_root / "etc")
    evidence.figure("pilote des volumes", ", ".join(drivers) or "aucun")
    evidence.figure("Ceph (RBD) pour les volumes", "oui" if any("rbd" in d.lower() for d in drivers) else "non")
    assert drivers, "Cinder n'a pas de pilote de volumes configuré"


@when("je lis les distributions Python de l'environnement du cloud embarqué", target_fixture="dists")
def read_dists(cloud, evidence):
    found = components.installed(cloud.embedded_root / "venv")
    evidence.json("distributions", found)
    evidence.figure("distributions dans le venv du cloud", found["*"]["distributions"])
    return found


@then("nova, neutron, glance, keystone, cinder et swift y ont été installés par pip")
def by_pip(dists):
    missing = [n for n in components.COURSE_DISTRIBUTIONS if n not in dists]
    assert not missing, f"absents du venv : {missing}"
    not_pip = {n: dists[n]["installer"] for n in components.COURSE_DISTRIBUTIONS if dists[n]["installer"] != "pip"}
    assert not not_pip, f"installés autrement que par pip : {not_pip}"
