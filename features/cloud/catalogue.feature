# language: fr
Fonctionnalité: Les identifiants et le catalogue de Keystone
  Pour parler à un cloud OpenStack, le client a besoin de l'URL de Keystone, d'un login, d'un mot de
  passe et d'un projet (fichier openrc ou clouds.yaml). La première requête demande à Keystone un jeton,
  dont la réponse contient le catalogue : il révèle les autres API du cloud, chacune par son type (sa
  fonction), son nom (son projet) et son adresse, où l'API répond par son document de versions.
  Un cloud peut se passer de Cinder ou de Swift : leurs lignes sont alors ignorées, avec cette raison.
  Un cloud choisi pour ce run qui ne répond pas (le cloud embarqué en marche, son Keystone muet) n'est pas
  un cloud absent : les identifiants et la première requête y échouent, en le disant.

  @claim:C34 @needs:configured
  Scénario: Un fichier openrc avec l'URL de Keystone, un login, un mot de passe et un projet suffit au client
    Étant donné les identifiants du cloud choisi
    Alors ils donnent l'URL de Keystone, un identifiant, un mot de passe et un projet
    Quand j'écris ces quatre valeurs dans un fichier openrc, que je le charge et lance « openstack token issue »
    Alors Keystone délivre un jeton au client, sinon le verdict dit ce que Keystone v3 demande en plus
    Et le mot de passe est masqué dans tout ce que popek écrit

  @claim:C35 @needs:configured
  Scénario: La première requête authentifiée renvoie le catalogue, qui révèle les autres API
    Quand je demande un jeton à Keystone
    Alors la réponse contient le catalogue des services
    Et chaque autre API que révèle le catalogue répond à l'adresse donnée par son document de versions

  @claim:C27 @needs:cloud
  Plan du scénario: Le catalogue expose les projets OpenStack du cours, et chacun répond
    Quand je lis le catalogue du cloud
    Alors le catalogue contient le service de type "<type>"
    Et ce service, <projet>, répond à son adresse par son document de versions (HTTP 200 ou 300)

    Exemples:
      | type         | projet   |
      | compute      | Nova     |
      | network      | Neutron  |
      | image        | Glance   |
      | volumev3     | Cinder   |
      | identity     | Keystone |
      | object-store | Swift    |

  @claim:C30 @needs:cloud
  Plan du scénario: Le catalogue nomme le projet qui remplit chaque fonction du cours
    Quand je lis le catalogue du cloud
    Alors le service de type "<type>" porte dans le catalogue le nom du projet <projet>

    Exemples:
      | fonction       | type         | projet   |
      | Compute        | compute      | Nova     |
      | Network        | network      | Neutron  |
      | Image          | image        | Glance   |
      | Volume         | volumev3     | Cinder   |
      | Authentication | identity     | Keystone |
      | Object Storage | object-store | Swift    |

  @claim:C11 @needs:cloud
  Scénario: Le cloud est de l'IaaS ; les autres offres « as a service » du cours qu'il expose sont relevées
    L'IaaS est vérifié : le catalogue a les API de calcul, d'images et de réseau et elles répondent. Les
    autres offres (PaaS, DBaaS, NaaS, FWaaS, LBaaS, DNSaaS) sont relevées, présentes ou absentes, sans être
    exigées : un cloud n'est pas tenu de les offrir. Le SaaS, une application, ne se voit pas dans un catalogue.
    Quand je lis le catalogue du cloud
    Alors le cloud offre de l'IaaS : les API de calcul, d'images et de réseau du catalogue répondent
    Et je relève lesquelles des autres offres « as a service » du cours il expose
