"""The demo as a newcomer meets it, over plain HTTP: ``freshid demo``'s two apps, wired by
:func:`freshid.demo.build` and both loading ``examples/acme_console/actions.toml``.

The newcomer signs in (eleven minutes "ago"), browses, reveals an API key after confirming it's
them, changes billing on the strength of that same proof, adds an authenticator app at FreshID and
deletes their Acme account with a proof made for that deletion alone. The activity page then says
which re-verification covered which operation; FreshID's events say the same from its side.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.acme_console.harness import (
    DEMO_EMAIL,
    Walker,
    confirm_with_password,
    confirm_with_totp,
    enrol_totp,
    running_stack,
    sign_in,
)


def _user(walker: Walker) -> dict[str, Any]:
    value = next(c.value for c in walker.http.cookies.jar if c.name == "acme_session")
    assert value is not None
    user: dict[str, Any] = json.loads(base64.b64decode(value.split(".")[0]))["user"]
    return user


def test_the_whole_story(database_url: str) -> None:
    with running_stack(database_url) as stack, Walker() as walker:
        # Signed in eleven minutes ago: browsing is fine, every sensitive action will ask.
        sign_in(walker, stack, seconds_ago=660)
        sid = _user(walker)["sid"]
        assert "You proved it's you <strong>11 min ago</strong> with your password" in walker.text
        assert walker.text.count("FreshID will ask you to confirm it&#39;s you first.") == 2
        walker.get(f"{stack.app_url}/projects/rocket-launcher")
        assert "Production" in walker.text and "Needs a sign-in within 10 minutes." in walker.text

        # Reveal: FreshID asks again (max_age=600), and the user lands on the key.
        walker.get(f"{stack.app_url}/projects/rocket-launcher/keys/key-1")
        assert walker.authorize_request()["max_age"] == "600"
        confirm_with_password(walker)
        assert walker.url == f"{stack.app_url}/projects/rocket-launcher/keys/key-1"
        assert re.search(r'value="acme_live_[0-9a-f]{32}"', walker.text)

        # Billing: the proof just made is young enough; no second trip to FreshID.
        walker.get(f"{stack.app_url}/billing")
        assert re.search(r"Your last proof covers this for [45] minutes\.", walker.text)
        walker.submit(r"^/billing$", email="finance@acme.example", plan="enterprise")
        assert not any("/authorize?" in u for u in walker.visited())
        assert "Your billing details were saved." in walker.text

        # Delete: needs a passkey or an authenticator code, made for this deletion alone.
        phone = enrol_totp(walker, stack)
        walker.get(f"{stack.app_url}/account/delete")
        walker.submit(r"/account/delete$", understood="yes")
        assert "authorization_details" in walker.authorize_request()
        confirm_with_totp(walker, stack, phone)
        assert walker.url == f"{stack.app_url}/account/delete/confirm"
        walker.submit(r"/account/delete$")
        assert "Your Acme account was deleted." in walker.text
        assert _user(walker)["sid"] == sid  # one FreshID session all along

        # Activity: reveal and billing rest on the same re-verification; deletion on its own.
        walker.get(f"{stack.app_url}/activity")
        tokens = re.findall(r"<dt>Token id</dt><dd><code>([^<]+)</code>", walker.text)
        actions = re.findall(r'<code class="activity__code">([^<]+)</code>', walker.text)
        assert actions == ["account.delete", "billing.update", "api_key.reveal"]
        assert tokens[1] == tokens[2] != tokens[0]
        assert "Made for this action, used once" in walker.text
        assert DEMO_EMAIL in walker.text

    reauth = stack.events("authentication.reauthenticated")
    assert [(e.session_id, e.data.get("action"), e.data["method"]) for e in reauth] == [
        (sid, None, "password"),
        (sid, "account.delete", "totp"),
    ]
    assert reauth[0].data["auth_time"] - reauth[0].data["previous_auth_time"] >= 660
    assert len(stack.events("session.created")) == 1
    issued = [e for e in stack.events("token.issued") if e.data.get("action")]
    assert [e.data["jti"] for e in issued] == [tokens[0]]
