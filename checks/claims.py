"""The course's claims C01–C39, the ids every scenario and question cites (CLAIMS below is their one list).

`how` holds the marks of the claims table: "E" (checked against a host or a cloud), "Q" (a graded
quiz question), or both. `where` says, for E claims, whether the host or the cloud checks it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

CLAIM_ID = re.compile(r"^C(0[1-9]|[1-3][0-9])$")


@dataclass(frozen=True)
class Claim:
    id: str
    text: str          # the claim in French, condensed from the course
    how: frozenset     # {"E"}, {"Q"} or {"E", "Q"}
    where: str = ""    # "host", "cloud" or "" for quiz-only claims
    section: str = ""  # the course heading that states it (sentence case, as the quiz banks cite it)


def _c(id, text, how, where="", section=""):
    return Claim(id, text, frozenset(how.split("+")), where, section)


CLAIMS: dict[str, Claim] = {c.id: c for c in (
    _c("C01", "La virtualisation fait tourner un ou plusieurs systèmes d'exploitation comme de simples logiciels, sur une ou plusieurs machines", "Q+E", "host", "Définition"),
    _c("C02", "Popek et Goldberg (1974) : trois conditions, équivalence, efficacité, contrôle", "Q+E", "host", "Principes de Popek et Goldberg"),
    _c("C03", "Historique : 1946 ENIAC, 1958 Bull Gamma 60, 1972 IBM VM/370, 1990 émulation sur Amiga, 1999 VMware Workstation puis QEMU, KVM, Bochs, Xen, 2004 Intel VT-x ; Popek et Goldberg respectés seulement depuis 2004", "Q", "", "Historique"),
    _c("C04", "Intérêts : sécurité (isolation), coût (mutualisation, temps partagé), criticité (sauvegarde, clonage, migration), performance (allocation dynamique)", "Q", "", "Intérêts de la virtualisation"),
    _c("C05", "Anneaux x86 : le noyau en ring 0, les logiciels en ring 3, un appel système change d'anneau (SYSENTER/SYSCALL)", "E+Q", "host", "Les anneaux de protections"),
    _c("C06", "Un hyperviseur en ring 0 qui exécute les invités en ring 3 comme de simples logiciels, c'est de l'émulation : équivalence OK, efficacité KO, contrôle OK", "E+Q", "host", "Emulation"),
    _c("C07", "Émulation : bonne isolation, coexistence d'architectures CPU et d'OS hétérogènes ; inconvénient : surcoût important", "E+Q", "host", "Emulation"),
    _c("C08", "Ring -1 : depuis 2004, Intel VT-x et AMD-V ajoutent des instructions pour que les invités aient le ring 0 et que les trois conditions soient respectées", "E+Q", "host", "Ring -1"),
    _c("C09", "Les conteneurs ne sont pas de la virtualisation : équivalence KO, efficacité OK, contrôle OK", "E+Q", "host", "Containers"),
    _c("C10", "Le cloud couvre calcul/virtualisation, stockage, abstraction du matériel, service à la demande et facturation, accès par API REST, flexibilité/élasticité", "Q", "", "Le cloud c'est large !"),
    _c("C11", "As a service : IaaS, PaaS, SaaS ; aussi DBaaS, NaaS, FWaaS, LBaaS, DNSaaS", "Q+E", "cloud", "What you want as a service"),
    _c("C12", "Clouds publics, privés, hybrides", "Q", "", "Type de cloud"),
    _c("C13", "Pourquoi le cloud : coût réduit par mutualisation, paiement à l'usage ; API/automatisation, reproductibilité, architectures résilientes et scalables, abstraction des couches basses", "Q", "", "Pourquoi faire du cloud"),
    _c("C14", "La virtualisation dans le cloud repose le plus souvent sur QEMU/KVM", "E+Q", "host+cloud", "Virtualisation dans le cloud"),
    _c("C15", "Stockage bloc : bas niveau, disques bruts virtuels (/dev/vdb), n'importe quel système de fichiers, faible latence (EBS, Cinder)", "E+Q", "cloud", "Block storage"),
    _c("C16", "Stockage objet : haut niveau, via une API HTTP, fichiers non structurés, scalable et durable (S3, Swift)", "E+Q", "cloud", "Object storage"),
    _c("C17", "API REST : requêtes HTTP (GET, POST…) ; un GET sur les instances renvoie la liste des instances", "E+Q", "cloud", "API REST"),
    _c("C18", "L'API de metadata/userdata est joignable depuis une instance à 169.254.169.254", "E+Q", "cloud", "API de metadata/userdata"),
    _c("C19", "cloud-init initialise une instance (utilisateur, paquets) depuis l'API de metadata", "E+Q", "cloud", "Cloud-init"),
    _c("C20", "Image : modèle d'OS préconfiguré qui sert à démarrer des instances", "E+Q", "cloud", "Image"),
    _c("C21", "Instance : une VM ou un conteneur démarré depuis une image, avec CPU, RAM, disque, port", "E+Q", "cloud", "Instance"),
    _c("C22", "Flavor : gabarits prédéfinis de CPU/RAM/disque ; plus gros coûte plus cher", "E+Q", "cloud", "Flavor"),
    _c("C23", "Volume : disque virtuel persistant, attachable et détachable de n'importe quelle instance ; repose sur le stockage bloc", "E+Q", "cloud", "Volume"),
    _c("C24", "Floating IP : adresse publique attachable à une instance et déplaçable vers une autre", "E+Q", "cloud", "Floating IP"),
    _c("C25", "Security group : règles de pare-feu qui contrôlent le trafic vers et entre les instances", "E+Q", "cloud", "Security-group"),
    _c("C26", "Keypair : clés SSH publique/privée pour se connecter aux instances", "E+Q", "cloud", "Keypair"),
    _c("C27", "OpenStack : suite open source pour construire un cloud : Keystone, Nova, Glance, Neutron, Cinder, Swift, Horizon, OpenStackClient", "E+Q", "cloud", "OpenStack"),
    _c("C28", "Histoire : 2010, NASA + Rackspace ; écrit en Python, licence libre ; deux versions par an ; 2025.1 Epoxy, 2025.2 Flamingo, 2026.1 Gazpacho", "Q+E", "cloud", "Histoire"),
    _c("C29", "Les quatre opens : source, design, développement, communauté", "Q", "", "Les 4 opens"),
    _c("C30", "Compute = Nova, Network = Neutron, Image = Glance, Volume = Cinder, Authentification = Keystone, Stockage objet = Swift", "E+Q", "cloud", "Principaux projets"),
    _c("C31", "OpenStack s'appuie sur d'autres briques libres : Ceph (volumes), MariaDB (base de données), RabbitMQ (bus de messages)", "Q+E", "cloud", "Mais aussi"),
    _c("C32", "Installer, c'est `pip install nova`… ; la difficulté est la configuration et le câblage", "E+Q", "cloud", "Installation d'OpenStack"),
    _c("C33", "Le client officiel python-openstackclient parle HTTP aux API REST", "E+Q", "cloud", "Utilisation d'OpenStack"),
    _c("C34", "Un fichier openrc donne l'URL de Keystone, un login, un mot de passe et un identifiant de projet", "E+Q", "cloud", "Fichier openrc"),
    _c("C35", "La première requête demande à Keystone le catalogue, qui révèle les autres API", "E+Q", "cloud", "Catalog"),
    _c("C36", "Avec Nova, `server list` ; avec Glance, `image list` ; avec Neutron, `network list`", "E+Q", "cloud", "Liste des instances"),
    _c("C37", "`server create --flavor --image --net NOM` démarre une instance", "E+Q", "cloud", "Utilisation d'OpenStack"),
    _c("C38", "Une interface web (Horizon) pilote aussi OpenStack", "Q", "", "Interface web"),
    _c("C39", "Du code le pilote aussi, par exemple `openstack_compute_instance_v2` de Terraform", "Q", "", "...ou via du code"),
)}


class UnknownClaim(ValueError):
    """A scenario or a question names a claim id that the course does not have."""


def check_ids(ids, where: str) -> list[str]:
    """Return `ids` if every one is a known claim id; raise UnknownClaim naming `where` otherwise."""
    ids = list(ids)
    unknown = [i for i in ids if i not in CLAIMS]
    if unknown:
        raise UnknownClaim(f"{where}: identifiant(s) de claim inconnu(s) {', '.join(unknown)} "
                           f"(connus : C01–C{len(CLAIMS):02d})")
    return ids
