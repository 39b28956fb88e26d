"""The AgentConfig driver: one canonical AI-client config in six clients' native files.

Layers, bottom up: `jsonc` and `documents` edit one key of a native file and keep every
other byte; `entries` and `translating` are the vocabulary adapters render with;
`clients/` holds one adapter per client (render and import); `ownership` decides per
key (in sync, spec change, drift, conflict, prune) under the conflict policies;
`planning` turns a spec and the observed files into a plan, purely; `driver` observes,
snapshots and writes atomically; `importing` reads native files back into a spec.
"""
