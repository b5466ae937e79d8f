# language: fr
@claim:C02 @needs:x86_64 @needs:linux
Fonctionnalité: Les instructions sensibles mais non privilégiées du x86
  Popek et Goldberg (1974) : une machine est virtualisable efficacement si toute instruction sensible
  (qui lit ou modifie l'état de la machine) est privilégiée, c'est-à-dire piège quand on l'exécute hors
  du mode le plus privilégié, pour que l'hyperviseur en garde le contrôle. Robin et Irvine (2000) ont
  recensé 17 instructions du x86 sensibles mais non privilégiées : elles s'exécutent en ring 3 sans
  piéger. C'est pourquoi le x86 ne respectait pas ces principes avant VT-x et AMD-V (2004).
  SGDT, SIDT, SLDT, STR et SMSW lisent des registres système. Depuis UMIP (Intel 2017, AMD Zen 2),
  le noyau peut les faire piéger et les émule avec des valeurs factices ; sans UMIP, la vraie valeur
  fuit vers le ring 3. Dans les deux cas le programme ne voit aucune faute : le rapport dit lequel.
  POPF, lui, ignore toujours en silence un changement des drapeaux IF et IOPL : aucun piège.

  Plan du scénario: <instruction> s'exécute en ring 3 sans faute visible du programme
    Étant donné l'état d'UMIP sur ce processeur et ce noyau
    Quand j'exécute l'instruction sensible <instruction> en ring 3 dans un processus isolé
    Alors l'instruction sensible s'exécute sans faute visible du programme
    Et le rapport dit si le noyau l'a piégée et émulée ou si la vraie valeur a fui

    Exemples:
      | instruction | ce qu'elle lit                                     |
      | SGDT        | l'adresse de la table globale des descripteurs     |
      | SIDT        | l'adresse de la table des interruptions            |
      | SLDT        | le sélecteur de la table locale des descripteurs   |
      | STR         | le sélecteur du segment d'état de tâche (TSS)      |
      | SMSW        | les 16 bits bas du registre de contrôle CR0        |

  Plan du scénario: POPF en ring 3 : un changement du drapeau <drapeau> est <effet>
    Quand je demande à POPF d'inverser le drapeau <drapeau> en ring 3 dans un processus isolé
    Alors POPF s'exécute sans faute visible du programme
    Et le changement du drapeau <drapeau> a été <effet>

    Exemples:
      | drapeau | effet             | rôle du drapeau                                        |
      | IF      | ignoré en silence | masquer les interruptions (sensible)                   |
      | IOPL    | ignoré en silence | droit aux entrées-sorties et à CLI/STI (sensible)      |
      | DF      | appliqué          | sens des copies de chaînes (témoin : non sensible)     |

  Scénario: MOV depuis CS révèle au programme l'anneau où il tourne, sans piéger
    Quand je lis le sélecteur CS par MOV en ring 3 dans un processus isolé
    Alors la lecture de CS s'exécute sans faute visible du programme et révèle le niveau de privilège 3
