"""The cloud's features (features/cloud/)."""
from pytest_bdd import scenario, scenarios

from popek.paths import FEATURES_DIR


# The longest scenario (a Debian 13 first boot under TCG: 100-170 s) is collected first (pytest keeps
# definition order, `scenarios` skips what is bound already): with `-n 2` one worker starts it at once while
# the other takes everything else, instead of starting it last and making the whole run wait for it.
@scenario(str(FEATURES_DIR / "cloud" / "plan_de_donnees.feature"), "cloud-init applique les user data")
def test_cloudinit_applique_les_user_data():
    pass


scenarios(str(FEATURES_DIR / "cloud"))
