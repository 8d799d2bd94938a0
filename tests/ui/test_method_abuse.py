"""Bad input and abuse against each sign-in method, through real HTTP (no browser).

Every refusal must be a page with a clear message and a 4xx status (never a 500), recorded as an
``authentication.failed`` event naming the method; and no race may yield more successes than the
proof allows. Emailed codes are read from a real SMTP server; passkey answers come from a software
authenticator (tests/methods/soft_authenticator.py) against the options the page issued.
"""

from __future__ import annotations

import base64
import html
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from freshid.methods import totp
from tests.conftest import DEMO_PASSWORD
from tests.e2e.harness import IdP, code_of, link_of
from tests.methods.soft_authenticator import SoftAuthenticator
from tests.protocol.rp import AuthRequest, Browser, Callback, Form, Page, RelyingParty, shifted
from tests.ui.conftest import REDIRECT_URI

ADA = "ada@example.com"
MFA = "urn:freshid:acr:mfa"

pytestmark = pytest.mark.e2e


# --- helpers -----------------------------------------------------------------------------------


def alert(page: Page) -> str:
    """The page's error message (the first non-empty ``role="alert"`` element)."""
    for found in re.finditer(r'role="alert"[^>]*>(.*?)</(?:div|p)>', page.html, re.S):
        text = html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()
        if text:
            return text
    raise AssertionError(f"no error message on {page.title!r}")


def form_with(page: Page, fragment: str) -> Form:
    for form in page.forms:
        if fragment in form.action:
            return form
    raise AssertionError(f"no form posting to *{fragment}* on {page.title!r}")


def page_of(landing: Page | Callback) -> Page:
    assert isinstance(landing, Page), landing
    return landing


def refused(landing: Page | Callback, status: int, message: str) -> Page:
    page = page_of(landing)
    assert page.status == status, (page.status, page.title)
    assert alert(page) == message
    return page


def begin(app: RelyingParty, ua: Browser, **params: str) -> tuple[AuthRequest, Page]:
    request = app.authorization_request(**params)
    return request, page_of(ua.open(request.url))


def request_code(ua: Browser, login: Page, email: str = ADA) -> Page:
    page = page_of(ua.submit(login.form("/email/send"), email=email))
    assert page.status == 200 and "Check your email" in page.title
    return page


def failures(idp: IdP, method: str) -> list[str]:
    return [e.data["reason"] for e in idp.failures(method)]


def successes(idp: IdP, method: str) -> int:
    kinds = ("authentication.succeeded", "authentication.reauthenticated")
    return sum(1 for k in kinds for e in idp.events(k) if e.data["method"] == method)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def race(ua: Browser, url: str, data: dict[str, str], n: int = 8) -> list[httpx.Response]:
    """``n`` copies of one browser POST the same form at the same moment."""
    barrier = threading.Barrier(n)

    def one(_: int) -> httpx.Response:
        with httpx.Client(cookies=ua.http.cookies, follow_redirects=False, timeout=30) as http:
            barrier.wait()
            return http.post(url, data=data)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def winners(ua: Browser, responses: list[httpx.Response]) -> int:
    """How many won; the browser keeps the winner's rotated session cookie, as a real one would."""
    assert all(r.status_code < 500 for r in responses), [r.status_code for r in responses]
    won = [
        r
        for r in responses
        if r.status_code == 303 and r.headers["location"].startswith(REDIRECT_URI + "?")
    ]
    losers = [r for r in responses if r not in won]
    assert all(400 <= r.status_code < 500 for r in losers), [r.status_code for r in losers]
    for r in won:
        ua.http.cookies.extract_cookies(r)
    return len(won)


def sign_in(app: RelyingParty, ua: Browser, **params: str) -> dict[str, Any]:
    request = app.authorization_request(**params)
    return app.redeem(request, ua.authorize(request.url, ADA, DEMO_PASSWORD)).id_claims


def enrol_totp(idp: IdP, ua: Browser) -> tuple[str, list[str]]:
    page = page_of(ua.open("/account/totp/new"))
    found = re.search(r'class="secret__value">([^<]+)<', page.html)
    assert found
    secret = found.group(1).replace(" ", "")
    code = totp.code_at(secret, totp.step_at(idp.clock.now()))
    done = page_of(ua.submit(form_with(page, "/account/totp/confirm"), code=code))
    codes = re.findall(r'class="codes__item"><code>([^<]+)</code>', done.html)
    assert len(codes) == 10
    return secret, codes


def options_of(page: Page) -> str:
    found = re.search(
        r'<script type="application/json" id="passkey-options">(.*?)</script>', page.html
    )
    assert found, page.title
    return found.group(1)


def enrol_passkey(idp: IdP, ua: Browser) -> SoftAuthenticator:
    page = page_of(ua.open("/account/passkeys/new"))
    key = SoftAuthenticator(idp.settings.rp_id, idp.settings.origin)
    form = form_with(page, "/account/passkeys/new?c=")
    done = page_of(ua.submit(form, credential=key.register(options_of(page)), name="Soft key"))
    assert "Your passkey was added." in done.html
    return key


def totp_now(idp: IdP, secret: str) -> str:
    return totp.code_at(secret, totp.step_at(idp.clock.now()))


# --- emailed codes -------------------------------------------------------------------------------


def test_wrong_code_gets_a_message_then_the_right_code_works(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    request, login = begin(app, user_agent)
    sent = request_code(user_agent, login)
    code = code_of(idp.mail.wait(ADA))
    for wrong in (other_code(code), "12345", "١٢٣٤٥٦", "x" * 5000):
        page = refused(
            user_agent.submit(sent.form("/email/verify"), code=wrong),
            401,
            "That code is not right.",
        )
    landing = user_agent.submit(page.form("/email/verify"), code=code)
    assert isinstance(landing, Callback)
    assert app.redeem(request, landing).id_claims["amr"] == ["email"]
    assert failures(idp, "email_code") == ["invalid_code"] * 4


def test_expired_code_is_refused(idp: IdP, app: RelyingParty, user_agent: Browser) -> None:
    idp.create_user(ADA)
    _request, login = begin(app, user_agent)
    sent = request_code(user_agent, login)
    code = code_of(idp.mail.wait(ADA))
    with shifted(idp.clock, 601):
        refused(
            user_agent.submit(sent.form("/email/verify"), code=code),
            401,
            "That code has expired. Request a new one.",
        )
    assert failures(idp, "email_code") == ["expired"]
    assert successes(idp, "email_code") == 0


def test_used_code_cannot_be_used_again(idp: IdP, app: RelyingParty, user_agent: Browser) -> None:
    idp.create_user(ADA)
    # A multi-factor sign-in: the emailed code first, then the password; the interaction stays
    # open in between, which is when a replay of the code could matter.
    request, login = begin(app, user_agent, acr_values=MFA)
    sent = request_code(user_agent, login)
    code = code_of(idp.mail.wait(ADA))
    verify = sent.form("/email/verify")
    second = page_of(user_agent.submit(verify, code=code))
    assert second.kind == "reauth"  # "Confirm it's you" with the password, same interaction
    refused(
        user_agent.submit(verify, code=code), 401, "That code was already used. Request a new one."
    )
    landing = user_agent.submit(second.form("/password"), password=DEMO_PASSWORD)
    assert isinstance(landing, Callback)
    claims = app.redeem(request, landing).id_claims
    assert sorted(claims["amr"]) == ["email", "mfa", "pwd"]
    # Once the request is answered, the code's interaction is gone: no second answer.
    after = page_of(user_agent.submit(verify, code=code))
    assert after.status == 400 and "expired" in after.title
    assert failures(idp, "email_code") == ["used"]
    assert successes(idp, "email_code") == 1


def test_code_from_another_interaction_is_refused(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    request_a, login_a = begin(app, user_agent)
    sent_a = request_code(user_agent, login_a)
    code_a = code_of(idp.mail.wait(ADA, 1))
    _request_b, login_b = begin(app, user_agent)
    sent_b = request_code(user_agent, login_b)
    code_b = code_of(idp.mail.wait(ADA, 2))
    if code_a != code_b:  # 1 in a million they coincide; then the test proves nothing new
        refused(
            user_agent.submit(sent_b.form("/email/verify"), code=code_a),
            401,
            "That code is not right.",
        )
    # Nor does it work in another browser, in that browser's flow or in the victim's.
    attacker = Browser(idp.url)
    try:
        _r, attacker_login = begin(app, attacker)
        attacker_sent = request_code(attacker, attacker_login)
        refused(
            attacker.submit(attacker_sent.form("/email/verify"), code=code_a),
            401,
            "That code is not right.",
        )
        stolen = attacker.submit(sent_a.form("/email/verify"), code=code_a)
        assert page_of(stolen).status == 400  # the interaction is bound to the victim's browser
    finally:
        attacker.close()
    landing = user_agent.submit(sent_a.form("/email/verify"), code=code_a)
    assert isinstance(landing, Callback)
    app.redeem(request_a, landing)
    assert "invalid_code" in failures(idp, "email_code")


def test_sixth_try_is_refused_even_with_the_right_code(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    request, login = begin(app, user_agent)
    sent = request_code(user_agent, login)
    code = code_of(idp.mail.wait(ADA))
    verify = sent.form("/email/verify")
    for _ in range(5):
        refused(user_agent.submit(verify, code=other_code(code)), 401, "That code is not right.")
    page = refused(
        user_agent.submit(verify, code=code), 429, "Too many wrong tries. Request a new code."
    )
    assert failures(idp, "email_code") == ["invalid_code"] * 5 + ["too_many_attempts"]
    # A new code starts a new count.
    again = page_of(user_agent.submit(page.form("/email/send")))
    landing = user_agent.submit(again.form("/email/verify"), code=code_of(idp.mail.wait(ADA, 2)))
    assert isinstance(landing, Callback)
    app.redeem(request, landing)


def test_new_request_invalidates_the_old_code_and_link(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    request, login = begin(app, user_agent)
    sent = request_code(user_agent, login)
    first = idp.mail.wait(ADA, 1)
    resent = page_of(user_agent.submit(sent.form("/email/send")))
    second = idp.mail.wait(ADA, 2)
    if code_of(first) != code_of(second):
        refused(
            user_agent.submit(resent.form("/email/verify"), code=code_of(first)),
            401,
            "A newer code was sent. Use the latest one.",
        )
    # The first email's link: opening it says it was replaced; a confirm page opened before the
    # new request, posted now, is refused on the flow's page.
    old_link = link_of(first)
    opened = page_of(user_agent.open(old_link))
    assert opened.status == 400 and opened.title.startswith("This sign-in link was replaced")
    csrf = resent.forms[0].fields["csrf_token"]
    refused(
        user_agent.submit(Form(old_link, {"csrf_token": csrf})),
        401,
        "A newer code was sent. Use the latest one.",
    )
    assert failures(idp, "email_code") == ["superseded", "superseded"]
    landing = user_agent.submit(resent.form("/email/verify"), code=code_of(second))
    assert isinstance(landing, Callback)
    app.redeem(request, landing)


def test_link_followed_by_a_scanner_changes_nothing(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    request, login = begin(app, user_agent)
    request_code(user_agent, login)
    link = link_of(idp.mail.wait(ADA))
    with httpx.Client() as scanner:  # a mail scanner: no cookies, follows the link
        assert scanner.get(link).status_code == 200
        assert "Continue signing in" in scanner.get(link).text
    # Another browser (a phone that got the mail) may see the page, but cannot sign in there.
    other = Browser(idp.url)
    try:
        elsewhere = page_of(other.open(link))
        refused_there = page_of(other.submit(elsewhere.forms[0]))
        assert refused_there.status == 400
        assert refused_there.title.startswith("Open this link where you started")
    finally:
        other.close()
    confirm = page_of(user_agent.open(link))
    assert confirm.status == 200 and ADA in confirm.html
    landing = user_agent.submit(confirm.forms[0])
    assert isinstance(landing, Callback)
    app.redeem(request, landing)
    # Used: opening it again says so, and posting it again signs nobody in.
    again = page_of(user_agent.open(link))
    assert again.status == 400 and "already used" in again.title
    reposted = page_of(user_agent.submit(confirm.forms[0]))
    assert reposted.status == 400 and "already used" in reposted.title
    assert successes(idp, "email_code") == 1
    assert failures(idp, "email_code") == ["used"]


def test_parallel_submissions_of_one_emailed_code_have_one_winner(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    _request, login = begin(app, user_agent)
    sent = request_code(user_agent, login)
    form = sent.form("/email/verify")
    responses = race(
        user_agent,
        f"{idp.url}{form.action}",
        {**form.fields, "code": code_of(idp.mail.wait(ADA))},
    )
    assert winners(user_agent, responses) == 1
    assert successes(idp, "email_code") == 1
    assert len(idp.events("session.created")) == 1


# --- authenticator app and recovery codes ------------------------------------------------------


def test_parallel_submissions_of_one_totp_code_have_one_winner(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    with shifted(idp.clock, -120):
        sign_in(app, user_agent)
        secret, _codes = enrol_totp(idp, user_agent)
    _request, page = begin(app, user_agent, max_age="0")
    form = page.form("/totp")
    responses = race(
        user_agent, f"{idp.url}{form.action}", {**form.fields, "code": totp_now(idp, secret)}
    )
    assert winners(user_agent, responses) == 1
    assert successes(idp, "totp") == 1


def test_totp_attempts_are_capped_and_codes_are_single_use(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    with shifted(idp.clock, -300):
        sign_in(app, user_agent)
        secret, codes = enrol_totp(idp, user_agent)
    # Successes do not use up the attempts: six step-ups in a row, one time step (30 s) apart.
    for step in range(6):
        with shifted(idp.clock, -240 + 30 * step):
            request, page = begin(app, user_agent, max_age="0")
            code = totp_now(idp, secret)
            landing = user_agent.submit(page.form("/totp"), code=code)
            assert isinstance(landing, Callback), page_of(landing).title
            app.redeem(request, landing)
    # The code just used cannot be used again, even for another request.
    with shifted(idp.clock, -240 + 30 * 5):
        _request, page = begin(app, user_agent, max_age="0")
        page = refused(
            user_agent.submit(page.form("/totp"), code=code),
            401,
            "That code was already used. Wait for the next one.",
        )
    _request, page = begin(app, user_agent, max_age="0")
    interaction_url = page.url
    right = totp_now(idp, secret)
    for _ in range(4):
        page = refused(
            user_agent.submit(page.form("/totp"), code=other_code(right)),
            401,
            "That code is not right. Try the current one.",
        )
    refused(
        user_agent.submit(page.form("/totp"), code=right),
        429,
        "Too many attempts. Wait a few minutes, then try again.",
    )
    assert failures(idp, "totp") == ["replayed_code"] + ["invalid_code"] * 4 + ["throttled"]
    # Recovery codes share the cap.
    choice = page_of(user_agent.open(f"{interaction_url}?method=recovery_code"))
    refused(
        user_agent.submit(choice.form("/recovery"), code=codes[0]),
        429,
        "Too many attempts. Wait a few minutes, then try again.",
    )
    assert failures(idp, "recovery_code") == ["throttled"]


def test_recovery_code_is_single_use_in_parallel(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    with shifted(idp.clock, -120):
        sign_in(app, user_agent)
        _secret, codes = enrol_totp(idp, user_agent)
    _request, page = begin(app, user_agent, max_age="0")
    choice = page_of(user_agent.open(f"{page.url}?method=recovery_code"))
    form = choice.form("/recovery")
    responses = race(user_agent, f"{idp.url}{form.action}", {**form.fields, "code": codes[0]}, 5)
    assert winners(user_agent, responses) == 1
    _request, page = begin(app, user_agent, max_age="0")
    choice = page_of(user_agent.open(f"{page.url}?method=recovery_code"))
    refused(
        user_agent.submit(choice.form("/recovery"), code=codes[0]),
        401,
        "That recovery code is not valid.",
    )
    assert successes(idp, "recovery_code") == 1
    assert "invalid_code" in failures(idp, "recovery_code")


# --- passkeys ----------------------------------------------------------------------------------


def passkey_step_up(app: RelyingParty, ua: Browser) -> tuple[AuthRequest, Page, Form]:
    request, page = begin(app, ua, max_age="0")
    return request, page, form_with(page, "/passkey?c=")


def test_replayed_passkey_assertion_is_refused(
    idp: IdP, app: RelyingParty, user_agent: Browser
) -> None:
    idp.create_user(ADA)
    with shifted(idp.clock, -120):
        sign_in(app, user_agent)
        key = enrol_passkey(idp, user_agent)
    _request, page, form = passkey_step_up(app, user_agent)
    assertion = key.assertion(options_of(page))
    # Sent twice at once: the challenge verifies once.
    responses = race(
        user_agent, f"{idp.url}{form.action}", {**form.fields, "credential": assertion}, 4
    )
    assert winners(user_agent, responses) == 1
    # Replayed later, on a new request: its challenge is not this page's.
    _request, page, form = passkey_step_up(app, user_agent)
    assert page.title.startswith("Confirm it's you")
    page = refused(
        user_agent.submit(form, credential=assertion),
        401,
        "That passkey could not be used. Try again or choose another way.",
    )
    # The page offers a new challenge, and a fresh assertion works.
    landing = user_agent.submit(
        form_with(page, "/passkey?c="), credential=key.assertion(options_of(page))
    )
    assert isinstance(landing, Callback)
    assert successes(idp, "passkey") == 2
    assert "wrong_challenge" in failures(idp, "passkey")


def _tamper(assertion: str, **changes: Any) -> str:
    credential = json.loads(assertion)
    raw = credential["response"]["clientDataJSON"]
    client_data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    client_data.update(changes)
    encoded = base64.urlsafe_b64encode(json.dumps(client_data).encode()).rstrip(b"=").decode()
    credential["response"]["clientDataJSON"] = encoded
    return json.dumps(credential)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"origin": "https://evil.example"}, "wrong_origin"),
        ({"type": "webauthn.create"}, "wrong_ceremony"),
        ({"crossOrigin": True}, "cross_origin"),
        ({"tokenBinding": {"status": "present", "id": "eA"}}, "invalid_assertion"),
    ],
)
def test_tampered_client_data_json_is_refused(
    idp: IdP, app: RelyingParty, user_agent: Browser, changes: dict[str, Any], reason: str
) -> None:
    idp.create_user(ADA)
    with shifted(idp.clock, -120):
        sign_in(app, user_agent)
        key = enrol_passkey(idp, user_agent)
    _request, page, form = passkey_step_up(app, user_agent)
    tampered = _tamper(key.assertion(options_of(page)), **changes)
    page = refused(
        user_agent.submit(form, credential=tampered),
        401,
        "That passkey could not be used. Try again or choose another way.",
    )
    assert failures(idp, "passkey") == [reason]
    assert successes(idp, "passkey") == 0
    for garbage in ("", "{", '{"id": 1}', "[]", "x" * 8000):
        page = refused(
            user_agent.submit(form_with(page, "/passkey?c="), credential=garbage),
            401,
            "That passkey could not be used. Try again or choose another way.",
        )
    too_big = page_of(user_agent.submit(form_with(page, "/passkey?c="), credential="x" * 9000))
    assert too_big.status == 400 and too_big.title.startswith("The form could not be read")
