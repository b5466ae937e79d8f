# language: fr
@needs:cloud
Fonctionnalité: Les API REST du cloud et le client officiel
  Le cloud s'utilise par des requêtes HTTP vers ses API REST : un GET sur les instances renvoie la liste
  des instances. Le client officiel `openstack` (python-openstackclient) fait ces mêmes requêtes.
  Les instances du run sont créées une fois, au premier scénario qui en a besoin, et supprimées à la fin.

  @claim:C17 @needs:write
  Scénario: Un GET HTTP sur /servers renvoie la liste des instances
    Étant donné une instance du run
    Quand j'envoie GET /servers à l'API compute avec mon jeton
    Alors la réponse HTTP est 200 et la liste contient l'instance créée
    Et c'est la même liste d'instances que celle du SDK

  @claim:C33 @claim:C36 @needs:write
  Scénario: openstack server list parle à Nova
    Étant donné une instance du run
    Quand je lance « openstack server list -f json »
    Alors le client renvoie les mêmes identifiants que le SDK pour les instances

  @claim:C33 @claim:C36
  Plan du scénario: openstack <commande> list parle à <projet>
    Quand je lance « openstack <commande> list -f json »
    Alors le client renvoie les mêmes identifiants que le SDK pour les <ressources>

    Exemples:
      | commande | projet  | ressources |
      | image    | Glance  | images     |
      | network  | Neutron | réseaux    |
