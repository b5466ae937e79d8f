# language: fr
@claim:C05 @needs:x86_64 @needs:linux
Fonctionnalité: Les anneaux de protection x86
  Le noyau tourne en ring 0, les logiciels en ring 3 ; un appel système change d'anneau.

  Scénario: Un programme utilisateur tourne en ring 3
    Quand je lis le niveau de privilège courant dans le registre CS
    Alors le niveau de privilège est 3
