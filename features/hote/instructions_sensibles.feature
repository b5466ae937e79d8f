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
  fuit vers le ring 3. Dans les deux cas le programme ne voit aucune faute ; chaque cas a son scénario,
  et celui qui ne correspond pas à cet hôte est ignoré. Le coût mesuré de l'instruction dit s'il y a eu
  trappe (environ 1 µs) ou non (quelques ns). Pour SLDT, STR et SMSW, Linux a choisi des valeurs
  factices égales aux vraies : seul ce coût distingue les deux cas ; pour SGDT et SIDT la valeur aussi.
  POPF, lui, ignore toujours en silence un changement des drapeaux IF et IOPL : aucun piège.

  Plan du scénario: Avec UMIP, <instruction> piège en ring 3 et le noyau l'émule : le programme reçoit une valeur factice
    Étant donné qu'UMIP est actif sur ce processeur et ce noyau
    Quand j'exécute l'instruction sensible <instruction> en ring 3 dans un processus isolé
    Alors l'instruction sensible s'exécute sans faute visible du programme
    Et elle a piégé vers le noyau, qui l'a émulée : elle coûte le prix d'une trappe (au moins 200 ns) et rend la valeur factice de Linux

    Exemples:
      | instruction | ce qu'elle lit                                     |
      | SGDT        | l'adresse de la table globale des descripteurs     |
      | SIDT        | l'adresse de la table des interruptions            |
      | SLDT        | le sélecteur de la table locale des descripteurs   |
      | STR         | le sélecteur du segment d'état de tâche (TSS)      |
      | SMSW        | les 16 bits bas du registre de contrôle CR0        |

  Plan du scénario: Sans UMIP, <instruction> s'exécute en ring 3 sans piéger : la vraie valeur du registre fuit
    Étant donné qu'UMIP n'est pas actif sur ce processeur et ce noyau
    Quand j'exécute l'instruction sensible <instruction> en ring 3 dans un processus isolé
    Alors l'instruction sensible s'exécute sans faute visible du programme
    Et elle n'a pas piégé : elle coûte moins de 200 ns et rend la vraie valeur du registre

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
