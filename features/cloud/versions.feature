# language: fr
@needs:cloud
Fonctionnalité: Les versions d'API situent la version d'OpenStack
  OpenStack sort deux versions par an, nommées ANNÉE.1 et ANNÉE.2 (2025.1 Epoxy, 2025.2 Flamingo,
  2026.1 Gazpacho…). Chaque API annonce ses versions ; la microversion maximale de Nova s'arrête, pour
  chaque version publiée, à une valeur que la table de Nova donne : elle désigne la version d'OpenStack
  de son Nova. Une valeur qui n'est le maximum d'aucune version est un Nova de développement ; une valeur
  qui n'est pas 2.x n'est pas l'API compute de Nova.

  @claim:C28
  Scénario: Les versions annoncées par les API désignent une version publiée d'OpenStack
    Quand je lis les versions que chaque API annonce
    Alors Keystone annonce l'API v3
    Et l'API compute annonce une microversion maximale
    Et cette microversion est le maximum d'une version publiée d'OpenStack, située dans le calendrier
