# language: fr
@needs:cloud
Fonctionnalité: Images, gabarits, paires de clés et instances
  Une image est un modèle de système prêt à démarrer ; un gabarit (flavor), une taille prédéfinie de
  CPU, RAM et disque ; une paire de clés, la clé publique SSH que le cloud pose dans l'instance. Une
  instance démarre d'une image, avec un gabarit, sur un réseau : c'est une boîte avec CPU, RAM, disque, port.

  @claim:C20
  Scénario: Les images sont des modèles prêts à démarrer
    Une image « active » dont le fichier a disparu du stockage de Glance n'est plus prête à démarrer :
    le premier Kio des données de chaque image active est relu (GET /v2/images/ID/file), et doit porter
    la signature de son format de disque quand ce format en a une (qcow2, vhdx, vdi). Une image que ce run
    démarre (l'instance sonde, sur un cloud joint sans identifiants admin ; sinon la paire d'instances du
    run) et dont la console reste muette alors qu'une autre image, démarrée après elle sur le même cloud, y
    démarre n'est pas prête à démarrer (les autres scénarios démarrent alors une autre image). Un démarrage
    lent n'est pas un échec : seule l'autre image qui démarre pendant ce silence départage.
    Quand je liste les images du cloud
    Alors au moins une image est active, avec son format de disque et sa taille
    Et les données de chaque image active se relisent depuis Glance
    Et chaque image que ce run a démarrée a démarré

  @claim:C22
  Scénario: Les gabarits sont des tailles prédéfinies de CPU, de RAM et de disque
    Chaque gabarit doit donner un nombre de vCPU (au moins 1), une RAM (au moins 1 Mio) et un disque (en
    Gio ; 0 veut dire pour Nova « la taille de l'image », relevé comme tel). Le prix (« plus c'est gros, plus
    c'est cher ») ne se lit pas dans l'API : il n'est pas vérifié ici.
    Quand je liste les gabarits du cloud
    Alors chaque gabarit donne un nombre de vCPU, une RAM et un disque

  @claim:C26
  Scénario: Une paire de clés garde la clé publique, la clé privée reste ici
    Étant donné une clé SSH générée sur cette machine
    Quand je l'importe comme paire de clés
    Alors le cloud garde la même clé publique, avec la même empreinte
    Et le cloud ne détient pas la clé privée

  @claim:C37 @claim:C33 @needs:write
  Scénario: La commande du cours « openstack server create --flavor small --image 'Debian 13' --net public » démarre une instance
    La commande est lancée telle quelle avec le client openstack (seul le nom de l'instance change) là où
    le cloud a ces trois noms ; l'instance doit devenir ACTIVE, puis elle est supprimée sans attendre la
    fin de son démarrage.
    Étant donné le gabarit « small », l'image « Debian 13 » et le réseau « public » du cours
    Quand je lance la commande du cours avec le client openstack
    Alors l'instance créée par le client est ACTIVE, puis je la supprime aussitôt

  @claim:C21 @needs:write
  Scénario: server create avec un gabarit, une image et un réseau démarre une instance
    Quand je crée une instance avec un gabarit, une image et un réseau
    Alors l'instance est ACTIVE
    Et elle a des vCPU, de la RAM, un disque et un port réseau
    Et elle a démarré de l'image choisie avec le gabarit choisi
    Quand je supprime l'instance
    Alors elle n'est plus dans la liste des instances

  @claim:C14 @needs:admin
  Scénario: Le type d'hyperviseur du cloud
    Quand je demande à Nova la liste de ses hyperviseurs
    Alors le cloud virtualise avec QEMU/KVM
