# language: fr
@claim:C02 @claim:C06 @claim:C08 @claim:C09 @needs:x86_64 @needs:linux
Fonctionnalité: Le tableau de Popek et Goldberg, mesuré sur cet hôte
  Le cours classe trois techniques selon les trois conditions de Popek et Goldberg :
  l'émulation (équivalence OK, efficacité KO, contrôle OK), la virtualisation assistée par le
  matériel (OK, OK, OK) et les conteneurs (KO, OK, OK). Ici chaque case est décidée par une mesure
  sur cet hôte : la même charge de travail en natif, sous QEMU TCG, dans un invité KVM et dans un
  conteneur ; qui exécute les instructions de l'invité ; les sorties que reçoit l'hyperviseur ; les
  limites qu'impose le noyau.

  Scénario: Chaque case mesurée du tableau a la valeur que lui donne le cours
    Quand je mesure les trois techniques sur cet hôte
    Alors le tableau mesuré est joint au rapport à côté de celui du cours
    Et au moins une case a pu être mesurée ici
    Et chaque case mesurée a la valeur que lui donne le cours

  Scénario: Le graphique d'efficacité compare natif, conteneur, KVM et émulation
    Quand je mesure les trois techniques sur cet hôte
    Alors le graphique d'efficacité est joint au rapport
    Et le conteneur et le code utilisateur de l'invité KVM tournent à moins de ×2 du natif
