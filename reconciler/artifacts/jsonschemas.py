"""JSON Schemas for editors (yaml-language-server), one file per kind."""

from __future__ import annotations

import json

from reconciler.kinds import rendering
from reconciler.models import BUILTIN_KINDS, Resource

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(model: type[Resource]) -> dict:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": SCHEMA_DIALECT, **schema}


def render_json_schemas(models: tuple[type[Resource], ...] = BUILTIN_KINDS) -> dict[str, str]:
    """File name → content, e.g. `syncjob.json`."""
    with rendering([m.KIND for m in models]):
        return {
            f"{model.KIND.lower()}.json": json.dumps(json_schema(model), indent=2,
                                                     ensure_ascii=False) + "\n"
            for model in models
        }
