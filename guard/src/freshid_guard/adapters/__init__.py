"""Framework adapters. Each module imports its framework; importing :mod:`freshid_guard` does not.

- :mod:`freshid_guard.adapters.asgi` — a plain ASGI middleware (no framework needed);
- :mod:`freshid_guard.adapters.starlette` — a FastAPI/Starlette dependency (``starlette`` extra);
- :mod:`freshid_guard.adapters.flask` — a view decorator (``flask`` extra);
- :mod:`freshid_guard.adapters.django` — a view decorator (``django`` extra).
"""
