"""Glue for features/cloud/catalogue.feature -> popek.checks.cloud.catalog / connection."""
from pytest_bdd import given, parsers, then, when

from popek.checks.cloud import catalog
from popek.checks.secrets import REDACT


@given("les identifiants du cloud choisi", target_fixture="auth")
def credentials(cloud, evidence):
    evidence.json("identifiants (sans mot de passe)", {"source": cloud.choice.describe(), **cloud.auth})
    return cloud.auth


@then("ils donnent l'URL de Keystone, un identifiant, un mot de passe et un projet")
def has_four_fields(auth):
    missing = [k for k, v in auth.items() if not v]
    assert not missing, f"il manque : {', '.join(missing)}"


@then("le mot de passe est masqué dans tout ce que popek écrit")
def password_masked(cloud):
    password = (cloud.conn.config.config.get("auth") or {}).get("password")
    assert password and REDACT(f"x {password} y") == "x *** y", "le mot de passe n'est pas connu du masqueur"


@when("je demande un jeton à Keystone", target_fixture="entries")
def ask_token(conn, evidence):
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


@then("le catalogue donne l'adresse d'au moins une autre API que Keystone")
def other_apis(entries):
    others = [e["type"] for e in entries if e["type"] != "identity" and e["endpoints"]]
    assert others, "le catalogue ne révèle aucune autre API que Keystone"


@then(parsers.parse('le catalogue contient le service de type "{service_type}"'), target_fixture="service")
def has_service(entries, service_type):
    aliases = {"volumev3": ("volumev3", "block-storage", "volume")}.get(service_type, (service_type,))
    found = [e for e in entries if e["type"] in aliases]
    assert found, f"pas de service {' / '.join(aliases)} au catalogue (types présents : {sorted(e['type'] for e in entries)})"
    return found[0]


@then(parsers.parse("ce service, {project} (« {function} » dans le cours), répond à son adresse"))
def service_answers(conn, service, project, function, evidence):
    assert catalog.COURSE_NAMES[service["type"]] == (function, project)
    url, status = catalog.answers(conn, service)
    evidence.figure(f"{project} : statut HTTP de {url}", status)
    assert status < 500, f"{project} ({url}) répond {status}"


@then("le cloud offre de l'IaaS : calcul, images et réseau à la demande")
def offers_iaas(entries):
    types = {e["type"] for e in entries}
    missing = [t for t in ("compute", "image", "network") if t not in types]
    assert not missing, f"pas d'IaaS complet : il manque {', '.join(missing)}"


@then("je relève quelles autres offres « as a service » du cours il expose")
def other_offers(conn, entries, evidence):
    offers = catalog.as_a_service(entries, catalog.network_extensions(conn))
    evidence.json("offres « as a service »", {k: v or "absente" for k, v in offers.items()})
    evidence.figure("offres « as a service » exposées", sum(1 for v in offers.values() if v))
    assert offers["IaaS (Infrastructure as a Service)"], "IaaS absent"
