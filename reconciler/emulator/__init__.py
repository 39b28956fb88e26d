"""Local stand-ins for the services reconciler talks to, so everything runs and is tested offline.

`dataset` generates a deterministic synthetic copy of the national AED registry; `egen`
serves it over HTTP the way data.go.kr's `AEDInfoInqireService` does, with switchable
faults (quota envelopes, HTTP 500, slow or truncated pages, ...).
"""
