# language: fr
@needs:cloud
Fonctionnalité: Les identifiants et le catalogue de Keystone
  Pour parler à un cloud OpenStack, le client a besoin de l'URL de Keystone, d'un login, d'un mot de
  passe et d'un projet (fichier openrc ou clouds.yaml). La première requête demande à Keystone un jeton,
  dont la réponse contient le catalogue : il révèle les autres API du cloud.

  @claim:C34
  Scénario: Les identifiants donnent l'URL de Keystone, un login, un mot de passe et un projet
    Étant donné les identifiants du cloud choisi
    Alors ils donnent l'URL de Keystone, un identifiant, un mot de passe et un projet
    Et le mot de passe est masqué dans tout ce que popek écrit

  @claim:C35
  Scénario: La première requête authentifiée renvoie le catalogue
    Quand je demande un jeton à Keystone
    Alors la réponse contient le catalogue des services
    Et le catalogue donne l'adresse d'au moins une autre API que Keystone

  @claim:C27 @claim:C30
  Plan du scénario: Le catalogue expose les projets OpenStack du cours
    Quand je lis le catalogue du cloud
    Alors le catalogue contient le service de type "<type>"
    Et ce service, <projet> (« <fonction> » dans le cours), répond à son adresse

    Exemples:
      | type         | projet   | fonction       |
      | compute      | Nova     | Compute        |
      | network      | Neutron  | Network        |
      | image        | Glance   | Image          |
      | volumev3     | Cinder   | Volume         |
      | identity     | Keystone | Authentication |
      | object-store | Swift    | Object Storage |

  @claim:C11
  Scénario: Les offres « as a service » que révèle le catalogue
    Quand je lis le catalogue du cloud
    Alors le cloud offre de l'IaaS : calcul, images et réseau à la demande
    Et je relève quelles autres offres « as a service » du cours il expose
