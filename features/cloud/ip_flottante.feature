# language: fr
@needs:cloud @needs:write
Fonctionnalité: L'IP flottante se déplace d'une instance à l'autre
  Une IP flottante est une adresse publique qu'on attache à une instance et qu'on peut transférer à une
  autre, comme un numéro de portable passe d'un téléphone à l'autre (ici, au niveau de l'API). Les deux
  instances sont celles du run ; l'IP flottante du run que porte la première lui est retirée le temps du
  scénario (Neutron n'accepte qu'une IP flottante par adresse fixe), puis rendue à la fin.

  @claim:C24
  Scénario: Une IP flottante associée à une instance passe à une autre en gardant son adresse
    Étant donné un réseau relié au réseau externe par un routeur
    Et deux instances sur ce réseau
    Quand je crée une IP flottante
    Et je l'associe à la première instance
    Alors l'IP flottante mène au port de la première instance
    Quand je la déplace vers la seconde instance
    Alors l'IP flottante mène au port de la seconde instance
    Et son adresse n'a pas changé
