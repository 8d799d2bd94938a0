"""The demo as a newcomer meets it: Acme Console signs in through FreshID, and "Reveal API key"
sends an old proof back to FreshID for a re-authentication that keeps the session."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import sqlalchemy as sa

from acme_console import AcmeConfig, create_app
from freshid.demo import DEMO_CLIENT_ID, DEMO_EMAIL, DEMO_PASSWORD, seed
from freshid.storage.tables import events
from tests.conftest import RunningServer, free_port, serve_in_thread


def _form(page: str) -> tuple[str, dict[str, str]]:
    action = html.unescape(re.search(r'<form[^>]*action="([^"]+/password)"', page).group(1))  # type: ignore[union-attr]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return action, {"csrf_token": csrf}


def _follow(http: httpx.Client, response: httpx.Response) -> httpx.Response:
    while response.status_code in (302, 303, 307):
        response = http.get(response.url.join(response.headers["location"]))
    return response


def test_sign_in_then_step_up_keeps_the_session(server: RunningServer) -> None:
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    secret = seed(server.provider, app_url)
    acme = create_app(
        AcmeConfig(
            issuer=server.url,
            client_id=DEMO_CLIENT_ID,
            client_secret=secret,
            base_url=app_url,
            session_secret="s" * 64,
        )
    )
    stop = serve_in_thread(acme, port)
    try:
        with httpx.Client(timeout=30) as http:
            # Sign in five minutes "ago": the proof will be too old for the 2-minute action.
            server.clock.offset = -300
            login_page = _follow(http, http.get(f"{app_url}/login"))
            assert 'name="email"' in login_page.text
            action, fields = _form(login_page.text)
            done = _follow(
                http,
                http.post(
                    f"{server.url}{action}",
                    data={**fields, "email": DEMO_EMAIL, "password": DEMO_PASSWORD},
                ),
            )
            assert DEMO_EMAIL in done.text
            sid = re.search(
                r"\(<code>sid</code>\)</dt>\s*<dd><code>([^<]+)</code>", done.text
            ).group(1)  # type: ignore[union-attr]
            server.clock.offset = 0

            # The action needs a proof within 120 s: the console sends us back to FreshID.
            step_up = http.get(f"{app_url}/api-key")
            assert step_up.status_code in (302, 303, 307)
            authorize = urlsplit(step_up.headers["location"])
            assert parse_qs(authorize.query)["max_age"] == ["120"]
            reauth_page = _follow(http, http.get(step_up.url.join(step_up.headers["location"])))
            assert "Confirm it" in reauth_page.text and DEMO_EMAIL in reauth_page.text
            assert 'name="email"' not in reauth_page.text
            action, fields = _form(reauth_page.text)
            revealed = _follow(
                http, http.post(f"{server.url}{action}", data={**fields, "password": DEMO_PASSWORD})
            )
            assert "acme_live_" in revealed.text
            assert f"<code>{sid}</code>" in http.get(f"{app_url}/").text
        with server.provider.db.read() as conn:
            rows = conn.execute(
                sa.select(events.c.type, events.c.session_id, events.c.data).order_by(events.c.id)
            ).all()
        reauth = [r for r in rows if r.type == "authentication.reauthenticated"]
        assert len(reauth) == 1 and reauth[0].session_id == sid
        assert reauth[0].data["auth_time"] - reauth[0].data["previous_auth_time"] >= 300
        assert [r.type for r in rows].count("session.created") == 1
    finally:
        stop()
