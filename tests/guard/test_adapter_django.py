"""The Django decorator against a real FreshID (minimal ``settings.configure``)."""

from __future__ import annotations

import json
import types
from typing import Any

import django  # type: ignore[import-untyped]
from django.conf import settings  # type: ignore[import-untyped]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        SECRET_KEY="freshid-guard-tests",
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
    )
    django.setup()

from django.http import HttpRequest, HttpResponse, JsonResponse  # type: ignore[import-untyped]
from django.test import Client, override_settings  # type: ignore[import-untyped]
from django.urls import path  # type: ignore[import-untyped]
from freshid_guard import Allowed, Guard
from freshid_guard.adapters.django import fresh_required

from tests.conftest import RunningServer
from tests.guard.scenario import Answer, check_adapter, guard_for, real_tokens

urlpatterns: list[Any] = []


def _proof(allowed: Allowed) -> dict[str, Any]:
    return {"sub": allowed.token.sub, "action": allowed.action, "proof_age": allowed.proof_age}


def _urls(guard: Guard) -> types.ModuleType:
    @fresh_required(guard, "billing.update")
    def billing(request: HttpRequest) -> HttpResponse:
        return JsonResponse(_proof(request.freshid))

    @fresh_required(guard, "keys.reveal")
    async def keys(request: HttpRequest) -> HttpResponse:  # async views use the async path
        return JsonResponse(_proof(request.freshid))

    def open_page(request: HttpRequest) -> HttpResponse:
        return JsonResponse({"ok": "yes"})

    module = types.ModuleType("freshid_guard_test_urls")
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("billing", billing),
        path("keys", keys),
        path("open", open_page),
    ]
    return module


def test_django_decorator(server: RunningServer) -> None:
    guard = guard_for(server)
    with override_settings(ROOT_URLCONF=_urls(guard)):
        client = Client()

        def get(route: str, headers: dict[str, str]) -> Answer:
            r = client.get(route, headers=headers)
            lowered = {k.lower(): v for k, v in r.headers.items()}
            return Answer(r.status_code, lowered, r.content)

        check_adapter(get, real_tokens(server))
        assert json.loads(client.get("/open").content) == {"ok": "yes"}
