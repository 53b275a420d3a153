"""The experiment manager: one asyncio process that owns the tuner, the store and the REST API."""
