"""Retention against the real token endpoint: after a prune, a rotated-out refresh token of a live
grant is still recognised as reused and revokes its family (RFC 9700 §4.14.2), and once the
family is dead its rows go while its events stay."""

from __future__ import annotations

import sqlalchemy as sa

from freshid.events import audit
from freshid.storage import retention
from freshid.storage.retention import RetentionPolicy
from freshid.storage.tables import events as events_table
from freshid.storage.tables import grants, refresh_tokens
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.conftest import ADA, EventReader
from tests.protocol.rp import Browser, RelyingParty, shifted, sign_in

DAY = 24 * 3600


def _prune(server: RunningServer) -> retention.PruneReport:
    policy = RetentionPolicy.from_settings(server.settings)
    return retention.prune(server.provider.db, server.clock.now(), policy)


def _count(server: RunningServer, table: sa.Table) -> int:
    with server.provider.db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _refresh(rp: RelyingParty, token: str) -> tuple[int, dict[str, str]]:
    # A raw request: the ID token of a refresh made days from now would not pass the RP's
    # clock check, and this test is about the provider's answer.
    response = rp.token_request({"grant_type": "refresh_token", "refresh_token": token})
    return response.status_code, response.json()


def test_a_rotated_out_refresh_token_still_revokes_its_family_after_a_prune(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser, events: EventReader
) -> None:
    first = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    second = rp.refresh(first.refresh_token)  # first.refresh_token is now rotated out

    with shifted(server.clock, 2 * DAY):  # the family lives 30 days, the session idles 3
        before = _count(server, events_table)
        report = _prune(server)
        # Expired access-token records and the sign-in page go; the family stays whole.
        assert report.rows["access_tokens"] == 2 and report.rows["interactions"] >= 1
        for table in ("refresh_tokens", "authorization_codes", "grants", "sessions"):
            assert report.rows[table] == 0, table
        assert _count(server, events_table) == before

        status, body = _refresh(rp, second.refresh_token)  # the current token works
        assert status == 200
        third = body["refresh_token"]

        status, body = _refresh(rp, first.refresh_token)  # the thief's replay
        assert (status, body["error"]) == (400, "invalid_grant")
        assert "already used" in body["error_description"]
        [reuse] = events("token.refresh_reuse_detected")
        assert reuse.session_id == first.id_claims["sid"]

        status, body = _refresh(rp, third)  # the whole family is revoked
        assert (status, body["error"]) == (400, "invalid_grant")
        assert rp.introspect(third) == {"active": False}

    with shifted(server.clock, 2 * DAY + 600):  # revoked, but not yet for a day: nothing goes
        assert _prune(server).rows["refresh_tokens"] == 0
    with shifted(server.clock, 5 * DAY):
        before = _count(server, events_table)
        report = _prune(server)
        assert report.rows["refresh_tokens"] == 3 and report.rows["grants"] == 1
        assert _count(server, refresh_tokens) == 0 and _count(server, grants) == 0
        assert _count(server, events_table) == before
    assert audit.verify(server.provider.db.read).ok
