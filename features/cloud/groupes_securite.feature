# language: fr
@needs:cloud @claim:C25
Fonctionnalité: Les groupes de sécurité, règles de pare-feu des instances (API)
  Un groupe de sécurité est un ensemble de règles de pare-feu qui contrôlent le trafic vers et entre
  les instances, comme un videur qui laisse entrer ou non. Ici, l'API : ce qu'on lui donne, elle le
  garde à l'identique ; ce qui n'a pas de sens, elle le refuse sans rien créer.

  Scénario: Le groupe « default » du projet et ses règles
    Quand je lis le groupe de sécurité « default » du projet
    Alors chacune de ses règles dit un sens (entrée ou sortie), une famille d'adresses et une origine

  @needs:write
  Scénario: Une règle ajoutée apparaît dans le groupe
    Étant donné un groupe de sécurité sans règle
    Quand j'y ajoute une règle qui autorise TCP 22 en entrée depuis 0.0.0.0/0
    Alors le groupe contient cette règle, avec ces valeurs

  @needs:write
  Scénario: Toute règle valide se relit à l'identique (propriété vérifiée avec Hypothesis)
    Étant donné un groupe de sécurité sans règle
    Quand je crée puis relis 25 règles valides générées, en supprimant chacune
    Alors chaque champ relu était celui donné et le groupe est de nouveau vide

  @needs:write
  Scénario: Toute règle invalide est refusée sans rien créer (propriété vérifiée avec Hypothesis)
    Étant donné un groupe de sécurité sans règle
    Quand je soumets 25 règles invalides générées
    Alors chacune est refusée par un statut 4xx et le groupe est resté vide
