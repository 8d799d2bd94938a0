"""Seeding for the dashboard tests: users, sessions of several ages, action-bound grants,
step-ups that succeeded and failed, and an abandoned step-up."""

from __future__ import annotations

import secrets

from freshid.admin import dashboard
from freshid.events import outbox
from freshid.events import webhooks as hooks
from freshid.events.catalog import EventType
from freshid.storage import interactions as interaction_store
from freshid.storage.tables import grants, sessions
from tests.conftest import RunningServer


def seed(server: RunningServer, admin_user_id: str) -> dict[str, str]:
    now = server.clock.now()
    bob = server.create_user("bob@example.com")
    client_id, _ = server.create_client("https://rp.example/cb", name="Acme Console")
    with server.provider.db.write() as conn:
        dashboard.grant(conn, admin_user_id, now)
        for sid, age in [("bobsess1", 40), ("bobsess2", 4000), ("bobsess3", 90000)]:
            conn.execute(
                sessions.insert().values(
                    id=sid,
                    user_id=bob,
                    cookie_digest=secrets.token_hex(16),
                    created_at=now - age - 10,
                    auth_time=now - age,
                    last_seen_at=now - 5,
                    expires_at=now + 3600,
                    user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                )
            )
        for i, (action, age) in enumerate(
            [("billing.change", 30), ("billing.change", 200), ("api_key.reveal", 20)]
        ):
            conn.execute(
                grants.insert().values(
                    id=f"grant{i}",
                    client_id=client_id,
                    user_id=bob,
                    session_id="bobsess1",
                    scope="openid",
                    auth_time=now - age - 60,
                    acr="urn:freshid:acr:1fa",
                    amr=["pwd"],
                    offline=False,
                    action=action,
                    created_at=now - 60,
                    expires_at=now + 600,
                )
            )
        for method, action in [("password", "billing.change"), ("totp", "api_key.reveal")]:
            outbox.record(
                conn,
                EventType.AUTHENTICATION_REAUTHENTICATED,
                now - 50,
                user_id=bob,
                session_id="bobsess1",
                method=method,
                action=action,
                auth_time=now - 50,
                previous_auth_time=now - 4000,
            )
        outbox.record(
            conn,
            EventType.AUTHENTICATION_FAILED,
            now - 45,
            user_id=bob,
            session_id="bobsess1",
            method="totp",
            reason="wrong_code",
            reauthentication=True,
            action="api_key.reveal",
        )
        interaction_store.create(
            conn,
            secrets.token_hex(8),
            None,
            {"action": "account.method.remove", "return_to": "/account"},
            now - 3000,
            900,
        )
        endpoint, _ = hooks.create(conn, "https://siem.example/in", [], "SIEM", now)
        hooks.set_enabled(conn, endpoint.id, False, now, "a delivery failed 9 attempts")
    return {"bob": bob, "endpoint": endpoint.id}
