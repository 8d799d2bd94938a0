"""passkey.js in headless Chromium with a CDP virtual authenticator: the credential JSON it posts
is what py_webauthn parses, for both ceremonies, under a CSP that forbids inline scripts."""

from __future__ import annotations

import html
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import pytest

from freshid.methods import passkey
from freshid.methods.passkey import StoredPasskey

if TYPE_CHECKING:
    from playwright.sync_api import Route

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("FRESHID_CHROMIUM") or shutil.which("chromium")
SCRIPT = Path(__file__).parents[2] / "src" / "freshid" / "ui" / "static" / "passkey.js"
ORIGIN = "http://localhost:8765"
RP_ID = "localhost"
CSP = "default-src 'none'; script-src 'self'; form-action 'self'"


def page_html(mode: str, options: str) -> str:
    # "</" cannot appear inside the JSON (no user-controlled text here); a real template must
    # still escape "<" in JSON it embeds in a script element.
    return f"""<!doctype html><html lang="en"><head><title>passkey</title>
<script src="/static/passkey.js" defer></script></head><body>
<form method="post" action="/done" data-passkey="{html.escape(mode)}">
<script type="application/json" id="passkey-options">{options}</script>
<input type="hidden" name="csrf" value="token-1">
<p data-passkey-error role="alert" hidden></p>
<button type="submit">Continue with a passkey</button>
</form></body></html>"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium")
def test_register_then_authenticate_through_passkey_js() -> None:
    served: dict[str, str] = {}
    posted: list[dict[str, list[str]]] = []

    def route(route: Route) -> None:
        request = route.request
        path = request.url.removeprefix(ORIGIN)
        if path == "/static/passkey.js":
            route.fulfill(body=SCRIPT.read_text(), content_type="text/javascript")
        elif path == "/done":
            posted.append(parse_qs(request.post_data or ""))
            route.fulfill(body="<p>done</p>", content_type="text/html")
        else:
            route.fulfill(
                body=served["page"],
                content_type="text/html",
                headers={"Content-Security-Policy": CSP},
            )

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            cdp = page.context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            cdp.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                    }
                },
            )
            page.route(f"{ORIGIN}/**", route)

            handle = secrets.token_bytes(32)
            options, challenge = passkey.registration_options(
                RP_ID, "FreshID", handle, "ana@example.com", "Ana", []
            )
            served["page"] = page_html("register", options)
            page.goto(f"{ORIGIN}/register")
            page.get_by_role("button", name="Continue with a passkey").click()
            page.wait_for_url(f"{ORIGIN}/done")
            assert posted[0]["csrf"] == ["token-1"]
            new = passkey.verify_registration(posted[0]["credential"][0], challenge, ORIGIN, RP_ID)
            stored = StoredPasskey(
                new.credential_id, new.public_key, new.sign_count, handle, new.backup_eligible
            )

            options, challenge = passkey.authentication_options(RP_ID, [], require_uv=True)
            served["page"] = page_html("authenticate", options)
            page.goto(f"{ORIGIN}/sign-in")
            page.get_by_role("button", name="Continue with a passkey").click()
            page.wait_for_url(f"{ORIGIN}/done")
            assertion = posted[1]["credential"][0]
            assert passkey.credential_id_of(assertion) == new.credential_id
            done, count = passkey.verify_assertion(
                assertion, challenge, ORIGIN, RP_ID, stored, True, 1
            )
            assert done.amr[1:] == ("user", "mfa")
            assert count >= stored.sign_count
            assert not [e for e in errors if "Content Security Policy" in e]

            # A ceremony the browser refuses (an RP ID this origin may not claim) shows the
            # error in the alert element and leaves the form usable.
            options, _ = passkey.authentication_options("example.com", [], require_uv=True)
            served["page"] = page_html("authenticate", options)
            page.goto(f"{ORIGIN}/sign-in")
            page.get_by_role("button", name="Continue with a passkey").click()
            alert = page.get_by_role("alert")
            alert.wait_for(timeout=5_000)
            assert alert.inner_text() == "Passkeys cannot be used on this address."
            assert len(posted) == 2
            assert page.get_by_role("button").is_enabled()
        finally:
            browser.close()
