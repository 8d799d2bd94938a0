"""Acme Console against a real FreshID: sign-in, the three sensitive actions, step-ups, sign-out.

One FreshID and one console (wired as ``freshid demo`` wires them) serve the whole module; each test
signs in as its own user, so accounts and sessions do not meet. "A proof made N seconds ago" is a
sign-in with FreshID's clock shifted back by N seconds.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acme_console.harness import (
    DEMO_PASSWORD,
    Stack,
    Walker,
    confirm_with_password,
    confirm_with_totp,
    enrol_totp,
    query,
    running_stack,
    sign_in,
)

pytestmark = pytest.mark.e2e

_emails = (f"user{n}@example.com" for n in itertools.count(1))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    path = Path(tmp_path_factory.mktemp("acme")) / "freshid.sqlite3"
    with running_stack(f"sqlite:///{path}") as running:
        yield running


@pytest.fixture
def email(stack: Stack) -> str:
    address = next(_emails)
    stack.create_user(address)
    return address


@pytest.fixture
def walker() -> Iterator[Walker]:
    with Walker() as w:
        yield w


def cookie_session(walker: Walker) -> dict[str, Any]:
    """The readable part of the console's signed session cookie."""
    value = next(c.value for c in walker.http.cookies.jar if c.name == "acme_session")
    assert value is not None
    data: dict[str, Any] = json.loads(base64.b64decode(value.split(".")[0]))
    return data


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def server_session(stack: Stack, walker: Walker) -> Any:
    data = cookie_session(walker)
    record = stack.console.sessions.get(data["server_key"], data["user"]["sub"], stack.app_clock())
    assert record is not None
    return record


def went_to_authorize(walker: Walker) -> bool:
    return any("/authorize?" in url for url in walker.visited())


def shown_key(text: str) -> str:
    match = re.search(r'id="api-key"[^>]* value="(acme_live_[0-9a-f]+)"', text)
    assert match, "no API key on the page"
    return match.group(1)


# --- signing in -----------------------------------------------------------------------------


def test_dashboard_shows_projects_the_age_of_the_proof_and_what_each_action_needs(
    stack: Stack, walker: Walker, email: str
) -> None:
    sign_in(walker, stack, email, seconds_ago=200)
    page = walker.text
    assert walker.url == f"{stack.app_url}/"
    for name in ("Rocket launcher", "Weather station", "Support inbox"):
        assert name in page
    assert "You proved it's you <strong>3 min ago</strong> with your password" in page
    assert "Needs a sign-in within 10 minutes." in page
    assert "Your last proof covers this for 6 minutes." in page  # 600 - 200 s
    assert "Needs a sign-in within 5 minutes." in page
    assert "Your last proof covers this for 1 minute." in page  # 300 - 200 s
    assert "Needs a passkey or authenticator code within 2 minutes, just for this action." in page
    assert email in page and "Sign out" in page


def test_the_access_token_stays_on_the_server(stack: Stack, walker: Walker, email: str) -> None:
    sign_in(walker, stack, email)
    data = cookie_session(walker)
    assert data["user"]["email"] == email
    assert data["id_token"].count(".") == 2
    record = server_session(stack, walker)
    assert record.access_token is not None
    assert record.access_token not in json.dumps(data)
    claims = jwt_claims(record.access_token)
    assert claims["sub"] == data["user"]["sub"] and claims["sid"] == data["user"]["sid"]


def test_a_signed_out_visit_comes_back_after_sign_in(
    stack: Stack, walker: Walker, email: str
) -> None:
    walker.get(f"{stack.app_url}/billing")
    assert 'name="email"' in walker.text  # FreshID's sign-in page
    walker.submit(r"/password$", email=email, password=DEMO_PASSWORD)
    assert walker.url == f"{stack.app_url}/billing"
    assert "Change billing details" in walker.text


def test_a_forged_state_is_refused(stack: Stack, walker: Walker, email: str) -> None:
    sign_in(walker, stack, email)
    walker.get(f"{stack.app_url}/callback?code=abc&state=forged&iss={stack.idp_url}")
    assert walker.page is not None and walker.page.status_code == 400
    assert "could not be matched" in walker.text


def test_a_replayed_callback_is_refused(stack: Stack, walker: Walker, email: str) -> None:
    sign_in(walker, stack, email, seconds_ago=400)
    [sign_in_callback] = [u for u in walker.visited() if "/callback?" in u]
    walker.get(sign_in_callback)
    assert walker.page is not None and walker.page.status_code == 400
    assert "could not be matched" in walker.text

    # A step-up's callback, too: its state is used up.
    walker.get(f"{stack.app_url}/billing")
    walker.submit(r"^/billing$", email="x@acme.example", plan="team")
    confirm_with_password(walker)
    assert walker.url == f"{stack.app_url}/billing/confirm"
    [step_up_callback] = [u for u in walker.visited() if "/callback?" in u]
    walker.get(step_up_callback)
    assert walker.page is not None and walker.page.status_code == 400
    assert "could not be matched" in walker.text


# --- revealing an API key -------------------------------------------------------------------


def test_a_fresh_proof_reveals_the_key_directly_and_leaves_evidence(
    stack: Stack, walker: Walker, email: str
) -> None:
    sign_in(walker, stack, email, seconds_ago=30)
    walker.get(f"{stack.app_url}/projects/rocket-launcher")
    assert "Production" in walker.text and "acme_live_••••••••" in walker.text
    assert "Your last proof covers this for 9 minutes." in walker.text
    walker.get(f"{stack.app_url}/projects/rocket-launcher/keys/key-1")
    assert not went_to_authorize(walker)
    # 30 s, give or take the seconds a busy machine takes to get here.
    assert re.search(r"Shown because you proved it's you 3\d seconds ago\.", walker.text)
    sub = cookie_session(walker)["user"]["sub"]
    account = stack.console.workspaces.get(sub)
    assert account is not None
    assert shown_key(walker.text) == account.projects[0].keys[0].secret

    record = server_session(stack, walker)
    [evidence] = stack.console.activity.for_user(sub)
    assert evidence.action == "api_key.reveal" and not evidence.bound
    assert evidence.token_id == jwt_claims(record.access_token)["jti"]
    assert evidence.amr == ("pwd",) and evidence.session == cookie_session(walker)["user"]["sid"]
    walker.get(f"{stack.app_url}/activity")
    assert "Reveal an API key" in walker.text and evidence.token_id in walker.text


def test_an_old_proof_steps_up_and_comes_back_to_the_key(
    stack: Stack, walker: Walker, email: str
) -> None:
    sign_in(walker, stack, email, seconds_ago=660)
    sid = cookie_session(walker)["user"]["sid"]
    assert "You proved it's you <strong>11 min ago</strong>" in walker.text
    assert "FreshID will ask you to confirm it&#39;s you first." in walker.text

    key_url = f"{stack.app_url}/projects/weather-station/keys/key-3"
    walker.get(key_url)
    params = walker.authorize_request()
    assert params["max_age"] == "600"
    assert params["login_hint"] == email
    assert params["code_challenge_method"] == "S256" and params["nonce"]
    assert "authorization_details" not in params
    assert "this app needs a sign-in within the last 10 minutes" in walker.text
    confirm_with_password(walker)

    assert walker.url == key_url
    assert "Shown because you proved it's you just now." in walker.text
    assert cookie_session(walker)["user"]["sid"] == sid  # same session, newer proof
    reauth = [e for e in stack.events("authentication.reauthenticated") if e.session_id == sid]
    assert len(reauth) == 1 and reauth[0].client_id == "acme-console"


# --- billing ----------------------------------------------------------------------------------


def test_billing_after_a_step_up_comes_back_to_a_confirm_page(
    stack: Stack, walker: Walker, email: str
) -> None:
    sign_in(walker, stack, email, seconds_ago=400)
    sub = cookie_session(walker)["user"]["sub"]
    walker.get(f"{stack.app_url}/billing")
    assert "FreshID will ask you to confirm it&#39;s you first." in walker.text
    walker.submit(r"^/billing$", email="finance@acme.example", plan="enterprise")
    assert walker.authorize_request()["max_age"] == "300"
    confirm_with_password(walker)

    # Back in the console: nothing changed on the way (no state change on a GET).
    assert walker.url == f"{stack.app_url}/billing/confirm"
    assert "finance@acme.example" in walker.text and "Enterprise" in walker.text
    account = stack.console.workspaces.get(sub)
    assert account is not None and account.billing is not None
    assert account.billing.plan == "team"
    walker.get(walker.url)  # reloading the confirm page changes nothing either
    assert stack.console.workspaces.get(sub).billing.plan == "team"  # type: ignore[union-attr]

    walker.submit(r"^/billing$")
    assert walker.url == f"{stack.app_url}/billing"
    assert "Your billing details were saved." in walker.text
    billing = stack.console.workspaces.get(sub).billing  # type: ignore[union-attr]
    assert billing is not None
    assert (billing.email, billing.plan) == ("finance@acme.example", "enterprise")
    actions = [e.action for e in stack.console.activity.for_user(sub)]
    assert actions == ["billing.update"]


def test_billing_with_a_fresh_proof_saves_at_once(stack: Stack, walker: Walker, email: str) -> None:
    sign_in(walker, stack, email)
    walker.get(f"{stack.app_url}/billing")
    walker.submit(r"^/billing$", email="ap@acme.example", plan="starter")
    assert not went_to_authorize(walker)
    assert "Your billing details were saved." in walker.text
    assert "Starter" in walker.text and "ap@acme.example" in walker.text


def test_invalid_billing_details_cost_no_proof(stack: Stack, walker: Walker, email: str) -> None:
    sign_in(walker, stack, email, seconds_ago=400)
    walker.get(f"{stack.app_url}/billing")
    walker.submit(r"^/billing$", email="not an address", plan="platinum")
    assert walker.page is not None and walker.page.status_code == 400
    assert not went_to_authorize(walker)
    assert "Enter an email address like name@example.com." in walker.text
    assert "Choose one of the plans." in walker.text
    assert 'aria-invalid="true"' in walker.text


def test_posts_need_the_csrf_token(stack: Stack, walker: Walker, email: str) -> None:
    sign_in(walker, stack, email)
    for path, data in (
        ("/billing", {"email": "x@acme.example", "plan": "team"}),
        ("/account/delete", {"understood": "yes"}),
    ):
        response = walker.post(f"{stack.app_url}{path}", {"csrf_token": "forged", **data})
        assert response.status_code == 403 and "Request expired" in response.text
    sub = cookie_session(walker)["user"]["sub"]
    account = stack.console.workspaces.get(sub)
    assert account is not None and account.deleted_at is None
    assert account.billing is not None and account.billing.email == email


def test_the_confirm_page_without_a_draft_goes_back_to_the_form(
    stack: Stack, walker: Walker, email: str
) -> None:
    sign_in(walker, stack, email)
    walker.get(f"{stack.app_url}/billing/confirm")
    assert walker.url == f"{stack.app_url}/billing"


# --- deleting the account (action-bound) ------------------------------------------------------


def test_deletion_needs_a_passkey_or_an_authenticator_app(
    stack: Stack, walker: Walker, email: str
) -> None:
    sign_in(walker, stack, email)
    walker.get(f"{stack.app_url}/account/delete")
    walker.submit(r"/account/delete$", understood="yes")
    # A password is all this user has, and it cannot do: FreshID refuses at once, without
    # asking for a proof that could never be enough.
    assert "unmet_authentication_requirements" in walker.url
    assert walker.page is not None and walker.page.status_code == 403
    assert "A passkey or authenticator app is needed" in walker.text
    assert f'href="{stack.idp_url}/account"' in walker.text
    account = stack.console.workspaces.get(cookie_session(walker)["user"]["sub"])
    assert account is not None and account.deleted_at is None


def test_the_box_must_be_ticked(stack: Stack, walker: Walker, email: str) -> None:
    sign_in(walker, stack, email)
    walker.get(f"{stack.app_url}/account/delete")
    walker.submit(r"/account/delete$")
    assert walker.page is not None and walker.page.status_code == 400
    assert not went_to_authorize(walker)
    assert "Tick the box" in walker.text


def test_deletion_is_bound_to_its_own_proof_and_uses_it_once(
    stack: Stack, walker: Walker, email: str
) -> None:
    sign_in(walker, stack, email)
    sub, sid = cookie_session(walker)["user"]["sub"], cookie_session(walker)["user"]["sid"]
    phone = enrol_totp(walker, stack)

    walker.get(f"{stack.app_url}/account/delete")
    assert "Every time, FreshID asks you to confirm it&#39;s you" in walker.text
    walker.submit(r"/account/delete$", understood="yes")
    params = walker.authorize_request()
    assert json.loads(params["authorization_details"]) == [
        {"type": "urn:freshid:action", "action": "account.delete"}
    ]
    assert params["max_age"] == "0"
    assert "to delete your Acme account</h1>" in walker.text
    confirm_with_totp(walker, stack, phone)

    assert walker.url == f"{stack.app_url}/account/delete/confirm"
    assert "for this deletion only" in walker.text
    assert stack.console.workspaces.get(sub).deleted_at is None  # type: ignore[union-attr]
    record = server_session(stack, walker)
    bound = record.bound_tokens["account.delete"]
    assert jwt_claims(bound)["authorization_details"] == json.loads(params["authorization_details"])
    walker.submit(r"/account/delete$")

    assert walker.url == f"{stack.app_url}/"
    assert "Your Acme account was deleted." in walker.text
    assert stack.console.workspaces.get(sub).deleted_at is not None  # type: ignore[union-attr]
    [evidence] = stack.console.activity.for_user(sub)
    assert evidence.action == "account.delete" and evidence.bound
    assert evidence.token_id == jwt_claims(bound)["jti"] and "otp" in evidence.amr
    assert evidence.token_id in walker.text
    reauth = [e for e in stack.events("authentication.reauthenticated") if e.session_id == sid]
    assert [(e.data["action"], e.data["method"]) for e in reauth] == [("account.delete", "totp")]

    # A new account, the same session, the same (used) proof: the guard's replay store refuses
    # it and the user is sent to confirm again.
    walker.submit(r"/account/new$")
    assert "Your new Acme account is ready." in walker.text
    walker.get(f"{stack.app_url}/account/delete")
    walker.submit(r"/account/delete$", understood="yes")
    assert "authorization_details" in walker.authorize_request()
    assert "to delete your Acme account</h1>" in walker.text
    assert record.bound_tokens["account.delete"] == bound  # still there: the guard said no
    assert stack.console.workspaces.get(sub).deleted_at is None  # type: ignore[union-attr]


# --- someone else, and signing out -------------------------------------------------------------


def test_a_step_up_as_someone_else_signs_out_of_the_console(
    stack: Stack, walker: Walker, email: str
) -> None:
    other = next(_emails)
    stack.create_user(other)
    sign_in(walker, stack, email, seconds_ago=660)
    walker.get(f"{stack.app_url}/projects/rocket-launcher/keys/key-1")
    walker.submit(r"/switch$")  # "Not you? Sign in as someone else"
    walker.submit(r"/password$", email=other, password=DEMO_PASSWORD)
    assert walker.page is not None and walker.page.status_code == 403
    assert "Different account" in walker.text
    assert "acme_live_" not in walker.text
    walker.get(f"{stack.app_url}/")
    assert "Sign in with FreshID" in walker.text


def test_sign_out_ends_both_sessions(stack: Stack, walker: Walker, email: str) -> None:
    sign_in(walker, stack, email)
    key = cookie_session(walker)["server_key"]
    walker.submit(r"/logout$")
    assert walker.url.startswith(f"{stack.idp_url}/logout")
    walker.submit(r"/logout", confirm="yes")  # FreshID always asks before ending its session
    assert walker.url.startswith(f"{stack.app_url}/?")
    assert query(walker.url)["state"]
    assert "You are signed out of Acme Console and FreshID." in walker.text
    assert stack.console.sessions.get(key, "x", stack.app_clock()) is None
    walker.get(f"{stack.app_url}/login")
    assert 'name="email"' in walker.text  # FreshID asks again: its session ended too
