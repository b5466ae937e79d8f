"""Glue for features/cloud/catalogue.feature -> popek.checks.cloud.catalog / client."""
import os

import pytest
from pytest_bdd import given, parsers, then, when

from popek.checks.cloud import catalog, client, components, needs
from popek.checks.secrets import REDACT


@given("les identifiants du cloud choisi", target_fixture="auth")
def credentials(cloud, evidence):
    needs.broken(cloud)  # a configured cloud that does not answer: these credentials do not suffice
    evidence.json("identifiants (sans mot de passe)", {"source": cloud.choice.describe(), **cloud.auth})
    unusable = client.openrc_unusable(cloud.conn.config.config.get("auth_type"))
    if unusable:
        pytest.skip(unusable)
    return cloud.auth


@then("ils donnent l'URL de Keystone, un identifiant, un mot de passe et un projet")
def has_four_fields(auth):
    missing = [k for k, v in auth.items() if not v]
    assert not missing, f"il manque : {', '.join(missing)}"


@when("j'écris ces quatre valeurs dans un fichier openrc, que je le charge et lance « openstack token issue »",
      target_fixture="openrc_try")
def openrc_token(cloud, conn, evidence):
    four, domains = client.openrc_values(cloud.conn.config.config.get("auth") or {}, conn.current_project_id)
    tls = client.openrc_tls(cloud.conn.config.config)   # a private CA (cacert:): the client needs it too
    if tls:
        evidence.figure("variables TLS de ce cloud ajoutées à l'openrc", ", ".join(tls))
        four = {**four, **tls}
    tried = {"variables": list(four), "résultat": client.token_issue_with_openrc(four, os.environ)}
    if not tried["résultat"]["ok"] and domains:
        # Keystone v3 puts users and projects in domains: say which more variables it needed, the user's
        # domain alone first (the project is given by its id, as in the course)
        user_only = {k: v for k, v in domains.items() if k.startswith("OS_USER_DOMAIN")}
        for more in [user_only, domains] if user_only and user_only != domains else [domains]:
            tried["en plus"] = list(more)
            tried["avec les domaines"] = client.token_issue_with_openrc({**four, **more}, os.environ)
            if tried["avec les domaines"]["ok"]:
                break
    evidence.json("openrc (sans mot de passe) et openstack token issue", tried)
    return tried


@then("Keystone délivre un jeton au client, sinon le verdict dit ce que Keystone v3 demande en plus")
def token_issued(openrc_try, evidence):
    first = openrc_try["résultat"]
    if first["ok"]:
        evidence.figure("variables de l'openrc suffisantes", ", ".join(openrc_try["variables"]))
        return
    second = openrc_try.get("avec les domaines")
    if second and second["ok"]:
        evidence.figure("openrc du cours seul", f"refusé : {first['erreur'][:120]}")
        evidence.figure("variables exigées en plus par Keystone v3", ", ".join(openrc_try["en plus"]))
        return
    course = "openstack token issue avec l'openrc du cours (" + ", ".join(openrc_try["variables"]) + ")"
    if second:  # the last try says what still fails once Keystone v3's domains are given
        assert False, (f"{course} et {', '.join(openrc_try['en plus'])} en plus échoue : {second['erreur']} ; "
                       f"sans ces variables : {first['erreur']}")
    assert False, f"{course} échoue : {first['erreur']}"


@then("le mot de passe est masqué dans tout ce que popek écrit")
def password_masked(cloud):
    password = (cloud.conn.config.config.get("auth") or {}).get("password")
    assert password and REDACT(f"x {password} y") == "x *** y", "le mot de passe n'est pas connu du masqueur"


@when("je demande un jeton à Keystone", target_fixture="entries")
def ask_token(cloud, evidence):
    needs.broken(cloud)  # the first request got no answer: that is the verdict
    conn = cloud.conn
    conn.session.invalidate()  # a fresh authentication: this is the first request of the session
    REDACT.add(conn.session.get_token())
    entries = catalog.catalog(conn)
    evidence.json("catalogue", entries)
    return entries


@when("je lis le catalogue du cloud", target_fixture="entries")
def read_catalog(conn, evidence):
    entries = catalog.catalog(conn)
    evidence.json("catalogue (noms du cours)", catalog.course_table(entries))
    return entries


@then("la réponse contient le catalogue des services")
def has_catalog(entries, evidence):
    evidence.figure("services au catalogue", len(entries))
    assert entries, "le jeton ne contient aucun catalogue"


@then("chaque autre API que révèle le catalogue répond à l'adresse donnée par son document de versions")
def other_apis(cloud, conn, entries, evidence):
    others = [e for e in entries if e["type"] != "identity" and e["endpoints"] and catalog.in_region(e)]
    elsewhere = [f"{e['name']} ({e['type']}) : {', '.join(sorted({str(x['region']) for x in e['endpoints']}))}"
                 for e in entries if not catalog.in_region(e)]
    if elsewhere:   # the client never calls them in its region: no evidence about the cloud it uses
        evidence.json(f"API d'autres régions seulement, hors de la région « {entries[0]['region']} » de ce client",
                      elsewhere)
    assert others, "le catalogue ne révèle aucune autre API que Keystone"
    found = {f"{e['name']} ({e['type']})": catalog.version_answer(conn.session, e) for e in others}
    evidence.json("API révélées par le catalogue", found)
    evidence.figure("API révélées qui répondent", sum(1 for f in found.values() if f["document"]))
    silent = [catalog.answer_text(name, f) for name, f in found.items() if not f["document"]]
    if silent and cloud.embedded_root:  # the embedded cloud's database and bus: the usual cause behind them
        silent += components.silent_backends(cloud.embedded_root / "etc")
    assert not silent, "le catalogue donne des adresses où l'API ne répond pas : " + " | ".join(silent)


def _service(entries, service_type):
    aliases = {"volumev3": ("volumev3", "block-storage", "volume")}.get(service_type, (service_type,))
    found = [e for e in entries if e["type"] in aliases]
    optional = next((t for t in aliases if t in needs.OPTIONAL_SERVICES), None)
    if not found and optional:  # a cloud without Cinder or Swift: nothing to check here, and no failure
        pytest.skip(needs.not_in_catalog(optional, *aliases))
    assert found, f"pas de service {' / '.join(aliases)} au catalogue (types présents : {sorted(e['type'] for e in entries)})"
    here = [e for e in found if catalog.in_region(e)]
    if not here:    # only in other regions: the client never calls it in the region it uses
        regions = sorted({str(x["region"]) for e in found for x in e["endpoints"]})
        said = (f"le service {' / '.join(aliases)} n'a d'adresse au catalogue que dans la région {', '.join(regions)}, "
                f"pas dans « {found[0]['region']} » (region_name / OS_REGION_NAME) que ce client utilise")
        if optional:
            pytest.skip(said)
        assert False, said
    return here[0]


@then(parsers.parse('le catalogue contient le service de type "{service_type}"'), target_fixture="service")
def has_service(entries, service_type):
    return _service(entries, service_type)


@then(parsers.parse("ce service, {project}, répond à son adresse par son document de versions (HTTP 200 ou 300)"))
def service_answers(conn, service, project, evidence):
    found = catalog.version_answer(conn.session, service)
    evidence.json(f"{project} : document de versions", found)
    evidence.figure(f"{project} : statut HTTP", found["essais"][-1][1] if found["essais"] else "aucun")
    assert found["document"], catalog.answer_text(project, found)


@then(parsers.parse('le service de type "{service_type}" porte dans le catalogue le nom du projet {project}'))
def service_named(entries, service_type, project, evidence):
    service = _service(entries, service_type)
    evidence.figure(f"nom au catalogue du service {service['type']}", service["name"])
    assert catalog.named_by_course(service, project), \
        f"le service de type {service['type']} s'appelle « {service['name']} » dans le catalogue, le cours dit {project}"


@then("le cloud offre de l'IaaS : les API de calcul, d'images et de réseau du catalogue répondent")
def offers_iaas(conn, entries, evidence):
    wanted = catalog.AS_A_SERVICE["IaaS (Infrastructure as a Service)"]
    missing = [t for t in wanted if t not in {e["type"] for e in entries}]
    assert not missing, f"pas d'IaaS : le catalogue n'a pas de service {', '.join(missing)}"
    found = {t: catalog.version_answer(conn.session, _service(entries, t)) for t in wanted}
    evidence.json("IaaS : API de calcul, d'images et de réseau", found)
    silent = [catalog.answer_text(t, f) for t, f in found.items() if not f["document"]]
    assert not silent, "pas d'IaaS à la demande : " + " | ".join(silent)


@then("je relève lesquelles des autres offres « as a service » du cours il expose")
def other_offers(conn, entries, evidence):
    offers = catalog.as_a_service(entries, catalog.network_extensions(conn))
    shown = {k: v or ("non observable dans un catalogue" if not catalog.AS_A_SERVICE[k] else "absente")
             for k, v in offers.items()}
    evidence.json("offres « as a service »", shown)
    evidence.figure("offres « as a service » exposées", ", ".join(k.split(" ")[0] for k, v in offers.items() if v)
                    or "aucune")
