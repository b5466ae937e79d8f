# language: fr
@claim:C09 @needs:x86_64 @needs:linux
Fonctionnalité: Les conteneurs ne sont pas de la virtualisation
  Un conteneur est un processus ordinaire de l'hôte à qui le noyau montre un autre monde (espaces de
  noms : numéros de processus, nom d'hôte, points de montage, réseau, IPC) et qu'il tient dans des
  limites (cgroups). Aucun autre noyau ne tourne. Popek et Goldberg : équivalence KO, efficacité OK,
  contrôle OK. popek construit le conteneur à la main avec unshare(2), sans Docker ni runc.

  @needs:unshare
  Scénario: Conteneur, isolation : son processus est le PID 1, seul, avec son nom d'hôte et la seule interface lo
    Quand je crée un conteneur avec de nouveaux espaces de noms PID, UTS, mount, réseau et IPC
    Alors son processus y porte le PID 1 et son /proc ne montre que lui
    Et son nom d'hôte est « popek-conteneur » tandis que celui de l'hôte est inchangé
    Et sa seule interface réseau est lo
    Et ses cinq espaces de noms diffèrent de ceux de l'hôte

  @needs:unshare
  Scénario: Conteneur, équivalence KO : le conteneur tourne sur le noyau de l'hôte, il ne peut pas en avoir un autre
    Quand je crée un conteneur avec de nouveaux espaces de noms PID, UTS, mount, réseau et IPC
    Alors le conteneur voit exactement le noyau de l'hôte (même version)

  @needs:unshare
  Scénario: Conteneur, efficacité OK : la charge de travail tourne directement sur le processeur dans le conteneur
    Quand je chronomètre la charge de travail sur l'hôte et dans un conteneur
    Alors le PID 1 du conteneur calcule le même résultat que l'hôte
    Et le rapport de temps conteneur / natif est rapporté
    Et le conteneur tourne à moins de 2 fois le temps du natif

  @needs:unshare @needs:cgroup-pids
  Scénario: Conteneur, contrôle OK : le noyau refuse un processus de trop (cgroup pids)
    Quand le PID 1 d'un conteneur rejoint un cgroup limité à 16 processus et crée des processus jusqu'au refus
    Alors fork échoue avec EAGAIN quand le cgroup compte 16 processus
    Et le cgroup a été supprimé ensuite

  @needs:unshare @needs:cgroup-memory
  Scénario: Conteneur, contrôle OK : un processus limité à 64 Mio de mémoire qui en remplit 256 est tué par le noyau
    Quand dans un conteneur un processus limité à 64 Mio de mémoire écrit 256 Mio
    Alors le noyau le tue par SIGKILL
    Et le cgroup compte une mise à mort pour manque de mémoire (oom_kill)
    Et le cgroup a été supprimé ensuite
