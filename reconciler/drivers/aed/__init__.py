"""The AedSourceBinding driver: the AED open API as a source, one PostgreSQL table as a target."""
