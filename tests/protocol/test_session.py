"""Session continuity across re-authentication, and "Not you?" (DESIGN: the heart; OIDC Core §2
``sid``; OWASP ASVS 5.0 V7 session fixation)."""

from __future__ import annotations

from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.conftest import ADA, GRACE, BrowserFactory, EventReader, UserFactory
from tests.protocol.rp import Browser, Callback, RelyingParty, shifted, sign_in


def _cookie_is_dead(rp: RelyingParty, make_browser: BrowserFactory, cookie: str) -> bool:
    """Present only this session cookie value: does the provider still honour it?"""
    stranger = make_browser({"freshid_session": cookie})
    request = rp.authorization_request(prompt="none")
    landing = stranger.open(request.url)
    assert isinstance(landing, Callback)
    params = rp.check_response(request, landing)
    return params.get("error") == "login_required"


def test_step_up_keeps_the_sid_rotates_the_cookie_and_records_evidence(
    server: RunningServer,
    ada: str,
    rp: RelyingParty,
    browser: Browser,
    make_browser: BrowserFactory,
    events: EventReader,
) -> None:
    with shifted(server.clock, -300):
        first = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    old_cookie = browser.session_cookie
    assert old_cookie is not None
    assert not _cookie_is_dead(rp, make_browser, old_cookie)

    stepped = sign_in(rp, browser, ADA, DEMO_PASSWORD, max_age="60")
    assert browser.shown == ["login", "reauth"]
    assert stepped.id_claims["sid"] == first.id_claims["sid"]
    assert stepped.id_claims["auth_time"] > first.id_claims["auth_time"]

    new_cookie = browser.session_cookie
    assert new_cookie is not None and new_cookie != old_cookie
    assert _cookie_is_dead(rp, make_browser, old_cookie)
    assert not _cookie_is_dead(rp, make_browser, new_cookie)

    [event] = events("authentication.reauthenticated")
    assert event.user_id == ada
    assert event.session_id == first.id_claims["sid"]
    assert event.client_id == rp.client_id
    assert event.data["method"] == "password"
    assert event.data["amr"] == stepped.id_claims["amr"]
    assert event.data["acr"] == stepped.id_claims["acr"]
    assert event.data["auth_time"] == stepped.id_claims["auth_time"]
    assert event.data["previous_auth_time"] == first.id_claims["auth_time"]


def test_not_you_starts_a_new_session_and_never_takes_over_the_old_one(
    server: RunningServer,
    ada: str,
    rp: RelyingParty,
    browser: Browser,
    make_browser: BrowserFactory,
    events: EventReader,
    make_user: UserFactory,
) -> None:
    grace = make_user(GRACE)
    with shifted(server.clock, -300):
        adas = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    adas_cookie = browser.session_cookie
    assert adas_cookie is not None

    request = rp.authorization_request(max_age="60")
    reauth = browser.open(request.url)
    assert not isinstance(reauth, Callback) and reauth.kind == "reauth"
    assert ADA in reauth.html

    login = browser.submit(reauth.form("/switch"))
    assert not isinstance(login, Callback) and login.kind == "login"
    # Asking to switch changes nothing yet: Ada's session stands until someone signs in.
    assert not _cookie_is_dead(rp, make_browser, adas_cookie)

    callback = browser.submit(login.form("/password"), email=GRACE, password=DEMO_PASSWORD)
    assert isinstance(callback, Callback)
    graces = rp.redeem(request, callback)
    assert graces.id_claims["sub"] == grace != adas.id_claims["sub"]
    assert graces.id_claims["sid"] != adas.id_claims["sid"]
    info = rp.userinfo(graces.access_token).json()
    assert info["sub"] == grace and info["email"] == GRACE

    assert browser.session_cookie not in (None, adas_cookie)
    assert _cookie_is_dead(rp, make_browser, adas_cookie)
    revoked = [e for e in events("session.revoked") if e.session_id == adas.id_claims["sid"]]
    assert len(revoked) == 1 and revoked[0].user_id == ada
    assert not events("authentication.reauthenticated")


def test_an_interaction_cannot_be_continued_from_another_browser(
    server: RunningServer, ada: str, rp: RelyingParty, make_browser: BrowserFactory
) -> None:
    mine, theirs = make_browser(), make_browser()
    started = mine.http.get(rp.authorization_request().url)
    assert started.status_code == 303
    interaction = started.headers["location"]
    landing = theirs.open(interaction)
    assert not isinstance(landing, Callback) and landing.kind == "error"
    # Nor can another browser post its form: the interaction and its CSRF token are bound to
    # the first browser's cookie.
    page = mine.open(interaction)
    assert not isinstance(page, Callback) and page.kind == "login"
    posted = theirs.submit(page.form("/password"), email=ADA, password=DEMO_PASSWORD)
    assert not isinstance(posted, Callback) and posted.kind == "error"
    assert theirs.session_cookie is None
