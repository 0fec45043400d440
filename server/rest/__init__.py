"""HTTP transport (ASGI)."""
