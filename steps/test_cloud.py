"""The cloud's features (features/cloud/)."""
from pytest_bdd import scenarios

from popek.paths import FEATURES_DIR

scenarios(str(FEATURES_DIR / "cloud"))
