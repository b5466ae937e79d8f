# language: fr
@needs:cloud @needs:embedded
Fonctionnalité: Les briques d'un cloud OpenStack et son installation
  OpenStack s'appuie sur d'autres briques libres : une base de données (MariaDB), un bus de messages
  (RabbitMQ), souvent Ceph pour les volumes. Chaque service s'installe avec pip ; la difficulté est la
  configuration et l'imbrication. Seul le cloud embarqué de popek laisse voir ces entrailles.

  @claim:C31
  Scénario: Le cloud embarqué s'appuie sur MariaDB et RabbitMQ, qui répondent
    Quand je lis la configuration des services du cloud embarqué
    Alors Nova range ses données dans une base MariaDB qui répond
    Et les services se parlent par un bus RabbitMQ qui répond
    Et je relève le stockage derrière les volumes (Ceph ou autre)

  @claim:C32
  Scénario: Le cloud embarqué a été installé avec pip
    Quand je lis les distributions Python de l'environnement du cloud embarqué
    Alors nova, neutron, glance, keystone, cinder et swift y ont été installés par pip
