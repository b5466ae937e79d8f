# language: fr
@needs:x86_64 @needs:linux
Fonctionnalité: Le tableau de Popek et Goldberg, mesuré sur cet hôte
  Le cours classe trois techniques selon les trois conditions de Popek et Goldberg :
  l'émulation (équivalence OK, efficacité KO, contrôle OK), la virtualisation assistée par le
  matériel (OK, OK, OK) et les conteneurs (KO, OK, OK). Ici chaque case est décidée par une mesure
  sur cet hôte : la même charge de travail en natif, sous QEMU TCG, dans un invité KVM et dans un
  conteneur ; qui exécute les instructions de l'invité ; les sorties que reçoit l'hyperviseur ; les
  limites qu'impose le noyau. Une case qui ne peut pas être mesurée ici reste vide, avec sa raison.
  Chaque ligne du tableau vérifie le claim du cours sur sa technique : elle n'est vérifiée que si
  ses trois cases ont été mesurées ici, sinon son scénario est ignoré avec les raisons.

  @claim:C02
  Scénario: Chaque case mesurée du tableau a la valeur que lui donne le cours
    Quand je mesure les trois techniques sur cet hôte
    Alors le tableau mesuré est joint au rapport à côté de celui du cours
    Et au moins une ligne du tableau a pu être mesurée entièrement ici
    Et chaque case mesurée a la valeur que lui donne le cours

  @claim:C06
  Scénario: Tableau, ligne « émulation » : équivalence OK, efficacité KO, contrôle OK, mesurés ici
    Quand je mesure les trois techniques sur cet hôte
    Alors les trois cases de la ligne « Émulation » ont été mesurées ici
    Et elles ont la valeur que leur donne le cours

  @claim:C08
  Scénario: Tableau, ligne « virtualisation assistée par le matériel » : équivalence, efficacité et contrôle OK, mesurés ici
    Quand je mesure les trois techniques sur cet hôte
    Alors les trois cases de la ligne « Virtualisation assistée par le matériel » ont été mesurées ici
    Et elles ont la valeur que leur donne le cours

  @claim:C09
  Scénario: Tableau, ligne « conteneur » : équivalence KO, efficacité OK, contrôle OK, mesurés ici
    Quand je mesure les trois techniques sur cet hôte
    Alors les trois cases de la ligne « Conteneur » ont été mesurées ici
    Et elles ont la valeur que leur donne le cours

  @claim:C02
  Scénario: Le graphique d'efficacité compare natif, conteneur, KVM et émulation au seuil ×2
    Quand je mesure les trois techniques sur cet hôte
    Alors le graphique d'efficacité est joint au rapport
    Et chaque technique mesurée est du côté du seuil ×2 que lui donne le cours : conteneur et code utilisateur de l'invité KVM en dessous, émulation TCG au-dessus
