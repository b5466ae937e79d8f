# language: fr
@claim:C05 @needs:x86_64 @needs:linux
Fonctionnalité: Les anneaux de protection x86
  Le noyau tourne en ring 0, les logiciels en ring 3 ; un appel système change d'anneau.
  En ring 3, le processeur refuse les instructions qui pilotent la machine (interruptions, tables des
  pages, ports d'entrée-sortie, registres de contrôle) : il lève une faute de protection générale (#GP,
  vecteur 13), que Linux transmet au programme sous forme de SIGSEGV. Chaque instruction est exécutée
  dans un processus fils isolé dont un gestionnaire de signal en code machine relève le numéro de trappe.

  Scénario: Un programme utilisateur tourne en ring 3
    Quand je lis le niveau de privilège courant dans le registre CS
    Alors le niveau de privilège est 3

  Scénario: La sonde de fautes est étalonnée sur des fautes connues
    Quand je provoque dans un processus isolé une faute de page, une instruction indéfinie et un point d'arrêt
    Alors le gestionnaire relève pour chacune le signal, le si_code, la trappe, le code d'erreur et l'adresse attendus

  Plan du scénario: L'instruction privilégiée <instruction> est refusée en ring 3
    Quand j'exécute l'instruction privilégiée <instruction> en ring 3 dans un processus isolé
    Alors le processus reçoit SIGSEGV avec la trappe 13 (#GP) et le si_code 128 (SI_KERNEL)
    Et la faute a lieu sur l'instruction <instruction> elle-même

    Exemples:
      | instruction | rôle en ring 0                                      |
      | HLT         | arrêter le processeur                               |
      | CLI         | masquer les interruptions                           |
      | STI         | démasquer les interruptions                         |
      | MOV CR0     | lire le registre de contrôle CR0                    |
      | MOV CR3     | changer de table des pages                          |
      | IN          | lire un port d'entrée-sortie                        |
      | OUT         | écrire sur un port d'entrée-sortie                  |
      | RDMSR       | lire un registre spécifique au modèle               |
      | LGDT        | charger la table globale des descripteurs           |
      | LIDT        | charger la table des interruptions                  |
      | INVD        | invalider les caches                                |
      | WBINVD      | réécrire et invalider les caches                    |
      | CLTS        | effacer le drapeau TS de CR0                        |
      | INVLPG      | invalider une entrée du TLB                         |
      | MOV DR7     | lire le registre de débogage DR7                    |
      | SWAPGS      | échanger la base GS avec celle du noyau             |

  Scénario: Un appel système change d'anneau : il coûte bien plus qu'un appel de fonction
    Quand je chronomètre en code machine l'appel système getppid par SYSCALL et un appel de fonction CALL/RET
    Alors l'appel système par SYSCALL renvoie bien le pid du processus parent
    Et l'appel système coûte plus qu'un appel de fonction, et le rapport des deux est consigné
