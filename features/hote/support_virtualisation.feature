# language: fr
@needs:x86_64 @needs:linux
Fonctionnalité: Le support de la virtualisation sur l'hôte
  Depuis 2004, Intel VT-x et AMD-V ajoutent au processeur des instructions de virtualisation, le
  « ring -1 » du cours : le processeur l'annonce par CPUID. KVM, l'hyperviseur du noyau Linux sur lequel
  s'appuient la plupart des clouds (QEMU/KVM), s'utilise par des ioctl sur /dev/kvm. Un /dev/kvm peut
  aussi exister sans VT-x/AMD-V : c'est alors une implémentation paravirtuelle ou imbriquée (PVM).

  @claim:C08 @needs:ring-1
  Scénario: Ring -1 : le processeur annonce VT-x ou AMD-V par CPUID, et KVM s'en sert
    Quand j'exécute CPUID en code machine
    Alors les drapeaux VMX, SVM et hyperviseur de CPUID concordent avec /proc/cpuinfo
    Et CPUID annonce VT-x (VMX) ou AMD-V (SVM)

  # Ce scénario vérifie que CPUID et /proc/cpuinfo concordent et relève quel hyperviseur fait tourner
  # cet hôte quand il est lui-même une machine virtuelle (sur une VM de cloud KVM : « KVMKVMKVM ») ;
  # il ne dit pas quel hyperviseur utilisent les clouds en général.
  @claim:C14
  Scénario: CPUID dit, en code machine, si cet hôte est lui-même une machine virtuelle et sous quel hyperviseur
    Quand j'exécute CPUID en code machine
    Alors les drapeaux VMX, SVM et hyperviseur de CPUID concordent avec /proc/cpuinfo
    Et si le bit hyperviseur est levé, la feuille 0x40000000 nomme l'hyperviseur sous cet hôte

  @claim:C14 @needs:kvm
  Scénario: Support de la virtualisation : /dev/kvm répond à l'API KVM
    Quand j'interroge /dev/kvm par ses ioctl
    Alors la version de l'API KVM est 12
    Et les capacités KVM_CAP_USER_MEMORY, KVM_CAP_IRQCHIP, KVM_CAP_HLT et KVM_CAP_SYNC_MMU sont présentes
    Et KVM_CAP_NR_VCPUS et KVM_CAP_MAX_VCPUS annoncent au moins 1 vCPU par VM

  @claim:C14 @needs:kvm
  Scénario: Support de la virtualisation : le verdict de préparation dit quel KVM tourne sur cet hôte
    Quand j'évalue la préparation de l'hôte à la virtualisation
    Alors chaque vérification est PASS, WARN ou FAIL avec une explication en français
    Et aucune vérification de KVM n'est en échec
    Et le type de KVM annoncé concorde avec CPUID et les modules du noyau
