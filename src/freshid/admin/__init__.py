"""The admin API (``/api/v1``), its API keys and OpenAPI document, and the admin CLI commands."""
