"""The dashboard: server-rendered pages over the same controller as the HTTP API (see pages.py)."""
