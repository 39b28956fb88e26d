"""The Kubernetes front end: a kopf operator over the same orchestrator, store and scheduler.

Custom resources are the specs; the operator turns kopf's causes into orchestrator runs and
their results into `status` patches (Flux-style conditions, observedGeneration, last run,
last result, next run). No domain logic lives here.
"""
