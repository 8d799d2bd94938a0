"""The operator's dashboard: FreshID's own sign-in, the admin role, a fresh proof for changes,
and the figures it shows."""

from __future__ import annotations

import sqlalchemy as sa

from freshid.admin import stats
from freshid.storage.tables import events, sessions
from freshid.storage.tables_events import webhook_endpoints
from tests.admin.dashboard_data import seed
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.rp import Browser, Page, shifted

ADMIN = "ops@example.com"


def _sign_in(server: RunningServer) -> tuple[Browser, Page]:
    browser = Browser(server.url)
    landing = browser.open("/admin/")
    assert isinstance(landing, Page) and landing.kind == "login", landing
    page = browser.submit(landing.form("/password"), email=ADMIN, password=DEMO_PASSWORD)
    assert isinstance(page, Page)
    return browser, page


def test_only_administrators_get_in(server: RunningServer) -> None:
    server.create_user(ADMIN)
    browser, page = _sign_in(server)
    assert page.status == 403 and "Administrators only" in page.html
    browser.close()


def test_the_dashboard_shows_how_fresh_the_trust_is(server: RunningServer) -> None:
    admin = server.create_user(ADMIN)
    seed(server, admin)
    browser, page = _sign_in(server)
    assert page.status == 200, page.html[:500]
    html = page.html
    assert "How fresh is the trust?" in html
    for text in ["billing.change", "api_key.reveal", "account.method.remove", "bob@example.com"]:
        assert text in html, text
    assert "wrong_code" in html and "disabled: a delivery failed 9 attempts" in html
    assert "<svg" in html and "style=" not in html  # charts without inline style (CSP)
    assert browser.open("/admin/?period=30d").status == 200  # type: ignore[union-attr]
    assert browser.http.get(f"{server.url}/admin/admin.css").status_code == 200
    browser.close()


def test_changes_need_a_fresh_proof_and_csrf(server: RunningServer) -> None:
    admin = server.create_user(ADMIN)
    ids = seed(server, admin)
    browser, page = _sign_in(server)
    # Just signed in: fresh enough to sign out one of Bob's sessions right away.
    done = browser.submit(page.form("/admin/sessions/bobsess2/revoke"))
    assert isinstance(done, Page) and "The session was signed out." in done.html
    # Without the CSRF token, nothing happens.
    raw = browser.http.post(f"{server.url}/admin/sessions/bobsess3/revoke", data={})
    assert raw.status_code in (400, 403)
    # Ten minutes later the proof is too old for a change: "Confirm it's you" first.
    with shifted(server.clock, 600):
        page = browser.open("/admin/")
        assert isinstance(page, Page) and page.status == 200  # looking is still fine
        step_up = browser.submit(page.form(f"/admin/webhooks/{ids['endpoint']}/enable"))
        assert isinstance(step_up, Page) and step_up.kind == "reauth", step_up.title
        confirm = browser.submit(step_up.form("/password"), password=DEMO_PASSWORD)
        assert isinstance(confirm, Page) and "Re-enable this webhook endpoint?" in confirm.html
        done = browser.submit(confirm.form(f"/admin/webhooks/{ids['endpoint']}/enable"))
        assert isinstance(done, Page) and "enabled again" in done.html
    with server.provider.db.read() as conn:
        revoked = conn.execute(
            sa.select(sessions.c.id, sessions.c.revoked_reason).where(
                sessions.c.revoked_at.is_not(None)
            )
        ).all()
        assert [(r.id, r.revoked_reason) for r in revoked] == [("bobsess2", "admin")]
        assert conn.execute(sa.select(webhook_endpoints.c.enabled)).scalar_one()
        kinds = set(conn.execute(sa.select(events.c.type)).scalars())
        assert {"session.revoked", "webhook_endpoint.enabled"} <= kinds
        reauths = conn.execute(
            sa.select(events.c.data).where(events.c.type == "authentication.reauthenticated")
        ).scalars()
        assert any(d.get("action") == "admin.change" for d in reauths)
    browser.close()


def test_the_figures(server: RunningServer) -> None:
    admin = server.create_user(ADMIN)
    seed(server, admin)
    with server.provider.db.read() as conn:
        data = stats.overview(conn, server.clock.now(), stats.PERIODS["7d"], 3 * 24 * 3600)
    by_action = {a.action: a for a in data.actions}
    billing = by_action["billing.change"]
    assert (billing.grants, billing.step_ups, billing.allowed_fresh) == (2, 1, 1)
    assert sorted(billing.ages) == [30, 200]
    assert stats.histogram(billing.ages)[:3] == [("< 1 min", 1), ("1-5 min", 1), ("5-15 min", 0)]
    reveal = by_action["api_key.reveal"]
    assert (reveal.step_ups, reveal.failed, reveal.allowed_fresh) == (1, 1, 0)
    assert by_action["account.method.remove"].abandoned == 1
    assert data.by_method["totp"] == {"succeeded": 1, "failed": 1}
    assert [s.id for s in data.sessions][:1] == ["bobsess3"]  # the stalest proof first
    assert dict(data.session_ages)["1-7 d"] == 1
