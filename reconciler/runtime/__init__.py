"""The runtime around the engine: daemon, scheduler bridge, API, events out."""
