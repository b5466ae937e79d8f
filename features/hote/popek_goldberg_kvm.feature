# language: fr
@needs:x86_64 @needs:linux @needs:kvm
Fonctionnalité: Popek et Goldberg vérifiés à travers l'API KVM
  Un petit VMM écrit pour popek lance, par des ioctl sur /dev/kvm, un invité en mode long 64 bits
  (pagination, ring 0 ou ring 3) et observe les trois conditions de Popek et Goldberg :
  le contrôle (l'invité ne touche pas le matériel : ses entrées-sorties reviennent au VMM),
  l'équivalence (le même code machine donne le même résultat que sur le processeur nu)
  et l'efficacité (ce code tourne directement sur le processeur, à vitesse native).
  Ces trois conditions valent pour tout KVM, y compris un KVM sans VT-x/AMD-V (PVM) : elles vérifient
  le claim C02 pour le code utilisateur de l'invité. Le « ring -1 » du cours (C08) n'est vérifié que par
  le dernier scénario, et seulement là où KVM s'appuie sur VT-x ou AMD-V : c'est le code noyau de
  l'invité (ring 0) qui doit alors tourner à vitesse quasi native.

  @claim:C02
  Scénario: Popek et Goldberg par KVM, contrôle : entrées-sorties, MMIO et HLT de l'invité reviennent au VMM
    Quand l'invité exécute OUT, IN, une écriture et une lecture MMIO puis HLT en ring 0
    Alors le VMM voit KVM_EXIT_IO en écriture sur le port 0x510, 4 octets, donnée 0x1234abcd
    Et le VMM voit KVM_EXIT_IO en lecture sur le port 0x511 et la valeur qu'il fournit arrive dans l'invité
    Et le VMM voit KVM_EXIT_MMIO en écriture à l'adresse 0x10000000 avec les octets écrits par l'invité
    Et le VMM voit KVM_EXIT_MMIO en lecture à l'adresse 0x10000008 et la valeur qu'il fournit arrive dans l'invité
    Et le VMM voit KVM_EXIT_HLT
    Et un HLT exécuté en ring 3 de l'invité arrête l'invité (KVM_EXIT_SHUTDOWN), pas l'hôte

  @claim:C02
  Plan du scénario: Popek et Goldberg par KVM, équivalence : la charge de travail donne dans l'invité le résultat natif
    Quand la charge de travail tourne <n> fois en natif et dans l'invité en ring <anneau>
    Alors le résultat de l'invité est celui du natif et de la référence

    Exemples:
      | anneau | n       |
      | 3      | 1000000 |
      | 0      | 1000    |

  @claim:C02
  Scénario: Popek et Goldberg par KVM, équivalence : des programmes générés donnent les mêmes registres en natif et dans l'invité
    Quand 50 programmes d'opérations arithmétiques et logiques tirés au hasard tournent en natif et dans l'invité en ring 3
    Alors les 15 registres obtenus sont identiques pour chaque programme

  @claim:C02
  Scénario: Popek et Goldberg par KVM, efficacité : le code utilisateur de l'invité tourne à la vitesse du processeur
    Quand je chronomètre la boucle de travail en natif et dans l'invité en ring 3 et en ring 0
    Alors les trois exécutions calculent le résultat de référence
    Et le rapport invité ring 3 / natif est inférieur à 2
    Et le rapport invité ring 0 / natif est rapporté avec son explication

  @claim:C06 @needs:kvm-sans-vtx
  Scénario: Popek et Goldberg par KVM, émulation : sans « ring -1 », le code noyau de l'invité est émulé (efficacité KO)
    Quand je chronomètre la boucle de travail en natif et dans l'invité en ring 0
    Alors l'invité en ring 0 calcule le résultat de référence
    Et le rapport invité ring 0 / natif dépasse 10

  @claim:C08 @needs:ring-1
  Scénario: Ring -1 : avec VT-x ou AMD-V, le code noyau de l'invité (ring 0) tourne lui aussi à vitesse quasi native
    Quand je chronomètre la boucle de travail en natif et dans l'invité en ring 3 et en ring 0
    Alors les trois exécutions calculent le résultat de référence
    Et le rapport invité ring 0 / natif est inférieur à 2
    Et le rapport invité ring 3 / natif est inférieur à 2
