# language: fr
@needs:cloud
Fonctionnalité: Stockage bloc (volumes) et stockage objet
  Un volume est un disque virtuel persistant, de bas niveau (un /dev/vdb pour l'instance), attachable
  et détachable d'une instance à l'autre comme un disque dur externe. Le stockage objet, de haut
  niveau, s'utilise par une API HTTP. Les deux instances du run servent à plusieurs scénarios ; le volume,
  lui, est créé et supprimé par son scénario. Ses données sont écrites et relues depuis les instances
  elles-mêmes (SSH par une IP flottante) : il faut un plan de données.

  @claim:C15 @claim:C23 @needs:write @needs:dataplane @needs:volume
  Scénario: Un volume garde ses données d'une instance à l'autre
    Étant donné deux instances du run, joignables par SSH sur une IP flottante
    Et un volume de 1 Gio
    Quand j'attache le volume à la première instance
    Alors le volume est « in-use », vu comme le disque /dev/… de la première instance
    Et la première instance voit un disque brut de la taille du volume
    Quand j'écris depuis la première instance 1 Mio de données aléatoires sur ce disque
    Et je détache le volume
    Alors le volume est de nouveau « available »
    Quand j'attache le volume à la seconde instance
    Alors c'est le même volume, même identifiant et même taille, attaché à la seconde instance
    Et la seconde instance relit sur son disque les données écrites par la première

  @claim:C16 @needs:write @needs:object-store
  Scénario: Un objet déposé par HTTP se relit octet pour octet
    Étant donné un conteneur créé par une requête HTTP PUT
    Quand je dépose un objet de 65536 octets aléatoires par HTTP PUT
    Alors un HTTP GET rend l'objet octet pour octet
    Et le conteneur liste l'objet avec sa taille et son empreinte MD5
