# language: fr
@claim:C01 @needs:x86_64 @needs:linux @needs:qemu-system
Fonctionnalité: Un système invité est un simple logiciel de l'hôte
  « La virtualisation consiste à faire fonctionner un ou plusieurs systèmes d'exploitation comme un
  simple logiciel. » popek démarre un invité (QEMU TCG : un PC émulé entier, BIOS compris, qui exécute
  le secteur d'amorçage de popek, passe en mode long 64 bits en ring 0 et calcule sans fin) et le
  regarde comme le noyau de l'hôte le voit : un processus parmi d'autres. Avec KVM c'est plus direct
  encore : le processeur virtuel de l'invité que lance popek est un thread du processus popek lui-même,
  qui entre dans l'invité par l'ioctl KVM_RUN.
  Ce que ce scénario vérifie : une machine entière émulée, avec son code privilégié, est un processus
  ordinaire de l'hôte. Ce qu'il ne vérifie pas : l'invité n'est pas un système d'exploitation complet
  (512 octets, sans pilotes ni processus) ; un vrai Debian démarré comme logiciel par QEMU est vérifié
  par les scénarios du cloud qui ont un plan de données (cloud-init dans une instance Debian 13, C19).

  Scénario: L'invité en marche est un processus ordinaire de l'hôte, qui consomme du temps processeur
    Quand je démarre un invité qui calcule sans fin et que je l'observe depuis l'hôte pendant 300 ms
    Alors l'invité a annoncé « popek: mode long »
    Et il a un PID dans /proc, sa ligne de commande est celle de qemu-system-x86_64 et son parent est popek
    Et son processeur virtuel est un thread de ce processus
    Et son temps processeur (utime + stime) a augmenté pendant l'observation d'au moins 10 % du temps écoulé
    Et une fois arrêté comme n'importe quel processus, son PID a disparu
