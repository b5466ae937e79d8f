# language: fr
@needs:cloud @needs:write @needs:dataplane
Fonctionnalité: Le trafic réel vers les instances : SSH, pare-feu, IP flottante, metadata, cloud-init
  Ces scénarios envoient de vrais paquets depuis cet hôte vers l'IP flottante des instances, comme les
  tests « scenario » de Tempest. Un trafic n'est déclaré bloqué qu'après avoir vu la même instance
  répondre dans le même scénario : une absence de réponse seule ne prouve rien.

  Les instances que les scénarios ne font que lire (se connecter, lire les metadata, recevoir une IP
  flottante) sont les deux instances du run, démarrées une fois avec la paire de clés du run et dans son
  groupe « SSH seul ». La première garde pour tout le run une IP flottante du run ; avant de s'en servir,
  chaque scénario vérifie qu'elle mène au port de cette instance et que SSH par elle arrive bien sur
  l'adresse fixe de cette instance. Le scénario qui déplace l'IP flottante déplace celle-là et la rend à
  la première instance à la fin ; la seconde instance, quand il faut y entrer, reçoit une IP flottante
  propre au scénario, retirée à la fin. Ce qu'un scénario modifie (les règles d'un groupe) est à lui
  seul ; une instance qui doit être membre d'un groupe du scénario est l'une des deux du run, dont le port
  n'a plus que ce groupe jusqu'à la fin du scénario, qui lui rend alors ses groupes.

  Contexte:
    Étant donné la paire de clés du run, importée depuis une clé générée ici
    Et un réseau relié au réseau externe par un routeur

  @claim:C26 @claim:C18
  Scénario: La clé de la paire ouvre l'instance, une autre clé est refusée ; l'instance lit ses metadata
    Étant donné une instance du run, joignable par SSH sur une IP flottante
    Alors une autre clé est refusée par le même serveur SSH
    Et depuis l'instance, http://169.254.169.254 donne l'identifiant de l'instance
    Et les metadata donnent aussi à l'instance son nom d'hôte et la clé publique de la paire

  @claim:C25
  Scénario: Le groupe de sécurité bloque, puis laisse passer après l'ajout d'une règle
    Étant donné un groupe de sécurité qui n'autorise en entrée que SSH
    Et une instance de ce groupe, joignable par SSH sur son IP flottante
    Quand je retire du groupe la règle SSH
    Alors SSH et ping vers l'instance sont bloqués (délai 3 s)
    Quand j'ajoute au groupe une règle ICMP
    Alors le ping passe mais SSH reste bloqué (délai 3 s)
    Quand je remets la règle SSH
    Alors SSH passe de nouveau

  @claim:C25
  Scénario: Une règle à groupe distant ne laisse entrer que les membres de ce groupe
    Étant donné une instance du run, joignable par SSH sur une IP flottante
    Et une seconde instance dont le groupe n'accepte SSH que des membres du groupe de la première
    Alors la première instance atteint le port SSH de la seconde
    Quand la règle de la seconde désigne un autre groupe, dont la première n'est pas membre
    Alors la première instance n'atteint plus le port SSH de la seconde (délai 3 s)

  @claim:C24
  Scénario: L'IP flottante déplacée mène SSH sur l'autre instance
    Étant donné une instance du run, joignable par SSH sur une IP flottante
    Et la seconde instance du run, sur le même réseau
    Quand je déplace l'IP flottante vers la seconde instance
    Alors SSH sur la même adresse arrive sur la seconde instance

  @claim:C14
  Scénario: L'hyperviseur qui exécute les instances, mesuré depuis une instance (signature CPUID)
    Étant donné une instance du run, joignable par SSH sur une IP flottante
    Quand je lis dans l'instance la signature CPUID de son hyperviseur (feuilles 0x40000000 et 0x40000100)
    Alors l'instance tourne sous QEMU/KVM, et sous ce que Nova annonce quand on peut le lui demander

  @claim:C19 @claim:C18
  Scénario: cloud-init applique les user data
    Étant donné une instance d'une image avec cloud-init, démarrée avec des user data qui écrivent un fichier
    Alors le fichier écrit par cloud-init est dans l'instance, avec le contenu attendu
