# language: fr
@needs:x86_64 @needs:linux
Fonctionnalité: L'émulation avec QEMU TCG
  Un hyperviseur qui fait tourner ses invités comme de simples logiciels fait de l'émulation : chaque
  instruction de l'invité est lue et traduite par l'émulateur (ici QEMU TCG) au lieu d'être exécutée
  par le processeur. Popek et Goldberg : équivalence OK, efficacité KO, contrôle OK ; ce n'est pas de la
  virtualisation. L'émulation permet en revanche à des architectures de processeur différentes de
  cohabiter. Les programmes sont écrits octet par octet par popek ; la charge de travail est la même
  boucle de code machine qu'en natif, dans KVM et dans un conteneur. Elle mêle, comme du code
  ordinaire, lectures et écritures en mémoire, branchements et opérations dont les drapeaux sont lus
  ensuite (retenue, comparaison) : le coût de la traduction s'y voit.
  Le surcoût est dit lourd quand l'émulation est au moins 2 fois plus lente que le processeur : c'est
  le seuil au-dessous duquel le tableau de Popek et Goldberg et le graphique d'efficacité comptent
  une exécution comme efficace. Le critère de Popek et Goldberg lui-même (le processeur exécute-t-il
  les instructions de l'invité ?) est vérifié directement sur les pages de code.
  Ce que ces scénarios vérifient du claim C06 : l'émulation par QEMU TCG a les trois propriétés que lui
  donne le cours (équivalence OK, efficacité KO, contrôle OK). Ce qu'ils ne vérifient pas : que tout
  hyperviseur qui fait tourner son invité en ring 3 l'émule. popek mesure au contraire que le code
  utilisateur d'un invité KVM tourne à la vitesse du processeur (seules les instructions privilégiées ou
  sensibles piègent) ; sur un KVM sans VT-x/AMD-V (PVM), c'est le code noyau de l'invité, privé de son
  ring 0, qui est émulé (popek_goldberg_kvm.feature, scénario « sans ring -1 »).

  @claim:C06 @needs:qemu-user
  Scénario: Émulation en mode utilisateur, équivalence : le même programme x86-64 donne le même résultat sur le processeur et sous QEMU
    Étant donné le programme x86-64 statique qui calcule la charge de travail pour n = 1000000
    Quand je l'exécute directement sur le processeur
    Et je l'exécute sous qemu-x86_64-static
    Alors les deux exécutions écrivent le résultat de référence

  @claim:C06 @needs:qemu-user
  Scénario: Émulation en mode utilisateur, efficacité KO : le processeur n'exécute pas lui-même le code de l'invité
    Étant donné le programme x86-64 statique qui calcule la charge de travail sans fin
    Quand je regarde sa page de code pendant qu'il tourne directement, puis sous qemu-x86_64-static
    Alors en natif sa page de code est exécutable
    Mais sous QEMU sa page de code n'est pas exécutable : le processeur exécute la traduction faite par QEMU

  @claim:C06 @needs:qemu-user
  Scénario: Émulation en mode utilisateur, contrôle : chaque appel système de l'invité passe par QEMU
    Étant donné le programme x86-64 statique qui calcule la charge de travail pour n = 1000
    Quand je l'exécute sous qemu-x86_64-static avec la trace des appels système
    Alors QEMU rapporte les appels système write et exit_group de l'invité
    Et le résultat écrit est celui de référence

  @claim:C06 @claim:C07 @needs:qemu-user
  Scénario: Émulation en mode utilisateur, surcoût lourd : la charge de travail est au moins 2 fois plus lente sous TCG qu'en natif
    Quand je chronomètre la charge de travail en natif et sous TCG en mode utilisateur
    Alors l'exécution émulée calcule le même résultat que le processeur
    Et le rapport de temps émulé / natif est rapporté
    Et l'exécution émulée est au moins 2 fois plus lente que le processeur

  @claim:C06 @needs:qemu-system
  Scénario: Émulation d'un PC entier : notre secteur d'amorçage passe en mode long 64 bits et calcule le même résultat
    Quand je démarre sous qemu-system-x86_64 (TCG) le secteur d'amorçage qui calcule la charge de travail pour n = 1000000
    Alors l'invité annonce « popek: mode long » : QEMU a émulé ses instructions privilégiées (CR0, CR4, EFER, LGDT)
    Et le résultat qu'il écrit sur le port 0xE9 est celui de référence
    Et QEMU s'arrête avec le code 33 que l'invité a demandé sur le port 0xF4 : ses entrées-sorties vont à l'émulateur

  @claim:C06 @claim:C07 @needs:qemu-system
  Scénario: Émulation d'un PC entier, surcoût lourd : la charge de travail est au moins 2 fois plus lente sous TCG en mode système qu'en natif
    Quand je chronomètre la charge de travail en natif et sous TCG en mode système
    Alors l'exécution émulée calcule le même résultat que le processeur
    Et le rapport de temps émulé / natif est rapporté
    Et l'exécution émulée est au moins 2 fois plus lente que le processeur

  @claim:C07 @needs:qemu-user
  Scénario: Émulation, architectures hétérogènes : un programme ARM64 tourne sur cet hôte x86-64
    Étant donné le programme ARM64 statique qui calcule la charge de travail pour n = 1000000
    Quand je demande au noyau de l'hôte de l'exécuter lui-même
    Alors le noyau le refuse (format d'exécutable inconnu) ou le confie à un émulateur enregistré dans binfmt_misc
    Quand je l'exécute sous qemu-aarch64-static
    Alors il écrit « bonjour de aarch64 » et se termine avec le code 0
    Et son résultat, calculé avec des instructions ARM, est celui de référence

  # L'isolation vérifiée ici est celle de la mémoire d'une machine entière émulée (qemu-system) : l'invité
  # ne peut lire que sa propre mémoire, pas celle du processus qui l'émule. Ni les périphériques ni les
  # fichiers ne sont vérifiés ; et en mode utilisateur (qemu-x86_64), l'invité partage au contraire les
  # fichiers et les appels système de l'hôte : cette isolation-là n'est pas celle de l'émulation d'un PC.
  @claim:C07 @needs:qemu-system
  Scénario: Émulation, isolation : l'invité ne lit que sa propre mémoire, pas celle du processus QEMU qui l'émule
    Quand je démarre sous qemu-system-x86_64 (TCG) un invité qui fouille octet par octet ses 16 Mio de mémoire à la recherche d'une marque placée dans sa mémoire et d'une autre placée dans celle du processus QEMU
    Alors l'invité trouve la marque placée dans sa propre mémoire : sa fouille fonctionne
    Et la marque de l'hôte était dans la mémoire du processus QEMU pendant la fouille
    Et l'invité ne trouve pas la marque de l'hôte : sa mémoire est un espace à part
