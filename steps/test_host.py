"""The host's features (features/hote/)."""
from pytest_bdd import scenarios

from popek.paths import FEATURES_DIR

scenarios(str(FEATURES_DIR / "hote"))
