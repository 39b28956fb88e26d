"""Reading specs: from folders and git revisions, with located errors; secret resolution."""

from reconciler.loading.secrets import MASK, Secret, SecretResolver
from reconciler.loading.specs import Origin, SpecSet, load_specs

__all__ = ["MASK", "Origin", "Secret", "SecretResolver", "SpecSet", "load_specs"]
