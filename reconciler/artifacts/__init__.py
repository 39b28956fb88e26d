"""Files generated from the models: JSON Schemas for editors and CRDs for Kubernetes.

The pydantic models are the only definition of a field; these generators derive the
other representations from them, and a test fails when the committed files drift.
"""

from reconciler.artifacts.crds import render_crds
from reconciler.artifacts.jsonschemas import render_json_schemas

__all__ = ["render_crds", "render_json_schemas"]
