# language: fr
@needs:cloud
Fonctionnalité: Les versions d'API situent la version d'OpenStack
  OpenStack sort deux versions par an (2025.1 Epoxy, 2025.2 Flamingo, 2026.1 Gazpacho…). Chaque API
  annonce ses versions ; la microversion maximale de Nova désigne la version d'OpenStack de son Nova.

  @claim:C28
  Scénario: Les versions annoncées par les API désignent une version d'OpenStack
    Quand je lis les versions que chaque API annonce
    Alors Keystone annonce l'API v3
    Et l'API compute annonce une microversion maximale
    Et cette microversion désigne une version d'OpenStack
