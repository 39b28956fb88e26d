"""The RbacMapping driver: an RBAC database kept in line with declarations and archive facts.

Reading order: `driver.py` (observe / diff / apply / verify / release) ties together
`source.py` (one read-only snapshot of the dcm4chee archive) with `layouts.py` (which
schema layout it has) and `facts.py` (the fact queries per layout), `templating.py`
(facts → bindings), `planning.py` (the pure diff with ownership) and `changes.py` (the
diff as a plan per subject), `schema.py` and `target.py` (the RBAC tables: managed or
mapped, read and written set-based) and `guards.py`. `keys.py` names every row.

`archive_ddl.py` and `archive_fixture.py` are not used by the driver: they build seeded
archives of the real table layouts for tests, the example and the benchmark.
"""
