"""Passkeys end to end in Python: real WebAuthn responses from a software authenticator, checked
by FreshID's rules on py_webauthn (WebAuthn L2 §7.1 registration, §7.2 assertion)."""

from __future__ import annotations

import contextlib
import json
import secrets
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freshid.freshness.levels import ACR_1FA, ACR_PHR
from freshid.methods import email_code, passkey, recovery_codes, totp
from freshid.methods.base import CompletedMethod, Factor, MethodFailed
from freshid.methods.passkey import StoredPasskey

from .soft_authenticator import SoftAuthenticator, b64url, from_b64url

RP_ID = "id.example.com"
ORIGIN = "https://id.example.com"
NOW = 1_700_000_000


def enrol(authenticator: SoftAuthenticator) -> StoredPasskey:
    handle = secrets.token_bytes(32)
    options, challenge = passkey.registration_options(
        RP_ID, "FreshID", handle, "ana@example.com", "Ana", exclude=[]
    )
    new = passkey.verify_registration(authenticator.register(options), challenge, ORIGIN, RP_ID)
    return StoredPasskey(
        credential_id=new.credential_id,
        public_key=new.public_key,
        sign_count=new.sign_count,
        user_handle=handle,
        backup_eligible=new.backup_eligible,
    )


def reason_of(call: object, *args: object, **kwargs: object) -> str:
    assert callable(call)
    with pytest.raises(MethodFailed) as failed:
        call(*args, **kwargs)
    return failed.value.reason


# --- registration ---------------------------------------------------------------------------


def test_registration_options() -> None:
    handle = secrets.token_bytes(32)
    existing = [b"\x01" * 16, b"\x02" * 20]
    options_json, challenge = passkey.registration_options(
        RP_ID, "FreshID", handle, "ana@example.com", "Ana Lima", existing
    )
    options = json.loads(options_json)
    assert from_b64url(options["challenge"]) == challenge and len(challenge) >= 16
    assert options["rp"] == {"id": RP_ID, "name": "FreshID"}
    assert options["user"] == {
        "id": b64url(handle),
        "name": "ana@example.com",
        "displayName": "Ana Lima",
    }
    selection = options["authenticatorSelection"]
    assert selection["residentKey"] == "preferred"
    assert selection["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert [from_b64url(c["id"]) for c in options["excludeCredentials"]] == existing
    assert {p["alg"] for p in options["pubKeyCredParams"]} >= {-7, -8, -257}
    assert passkey.registration_options(RP_ID, "F", handle, "a", "A", [])[1] != challenge


def test_registration_succeeds() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    options, challenge = passkey.registration_options(RP_ID, "FreshID", b"h" * 32, "a", "A", [])
    new = passkey.verify_registration(device.register(options), challenge, ORIGIN, RP_ID)
    assert new.credential_id == device.credential_id
    assert new.public_key == device.cose_public_key()
    assert new.sign_count == 0
    assert new.transports == ("internal", "hybrid")
    assert new.backup_eligible is False
    assert new.aaguid == "01234567-89ab-cdef-0123-456789abcdef"


def test_registration_of_a_synced_passkey() -> None:
    new = passkey.verify_registration(
        *_register_args(SoftAuthenticator(RP_ID, ORIGIN, backup_eligible=True))
    )
    assert new.backup_eligible is True


def _register_args(device: SoftAuthenticator, **kwargs: object) -> tuple[str, bytes, str, str]:
    options, challenge = passkey.registration_options(RP_ID, "FreshID", b"h" * 32, "a", "A", [])
    return device.register(options, **kwargs), challenge, ORIGIN, RP_ID  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"challenge": b64url(b"x" * 32)}, "wrong_challenge"),
        ({"origin": "https://evil.example"}, "wrong_origin"),
        ({"uv": False}, "user_verification_required"),
    ],
)
def test_registration_failures(kwargs: dict[str, object], reason: str) -> None:
    args = _register_args(SoftAuthenticator(RP_ID, ORIGIN), **kwargs)
    assert reason_of(passkey.verify_registration, *args) == reason


def test_registration_for_another_rp_id() -> None:
    credential, challenge, origin, _ = _register_args(SoftAuthenticator("evil.example", ORIGIN))
    reason = reason_of(passkey.verify_registration, credential, challenge, origin, RP_ID)
    assert reason == "invalid_registration"


def test_registration_with_an_assertion_is_refused() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    enrol(device)
    options, challenge = passkey.authentication_options(RP_ID, [], require_uv=True)
    assertion = device.assertion(options)
    assert reason_of(passkey.verify_registration, assertion, challenge, ORIGIN, RP_ID) in {
        "malformed_credential",
        "wrong_ceremony",
    }


# --- assertion ------------------------------------------------------------------------------


def test_authentication_options() -> None:
    ids = [b"\x01" * 16]
    options_json, challenge = passkey.authentication_options(RP_ID, ids, require_uv=True)
    options = json.loads(options_json)
    assert from_b64url(options["challenge"]) == challenge
    assert options["rpId"] == RP_ID
    assert options["userVerification"] == "required"
    assert [from_b64url(c["id"]) for c in options["allowCredentials"]] == ids
    relaxed = json.loads(passkey.authentication_options(RP_ID, [], require_uv=False)[0])
    assert relaxed["userVerification"] == "preferred"
    assert relaxed["allowCredentials"] == []


def sign_in(
    device: SoftAuthenticator, stored: StoredPasskey, *, require_uv: bool = True, **kwargs: object
) -> tuple[CompletedMethod, int]:
    options, challenge = passkey.authentication_options(
        RP_ID, [stored.credential_id], require_uv=require_uv
    )
    assertion = device.assertion(options, **kwargs)  # type: ignore[arg-type]
    return passkey.verify_assertion(assertion, challenge, ORIGIN, RP_ID, stored, require_uv, NOW)


def test_assertion_succeeds_with_user_verification() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    done, count = sign_in(device, stored)
    assert count == 1
    assert done == passkey.completed(NOW, user_verified=True, backup_eligible=False)
    assert done.method == "passkey"
    assert done.amr == ("hwk", "user", "mfa")
    assert done.acr == ACR_PHR
    assert done.completed_at == NOW
    assert done.factors == frozenset({Factor.POSSESSION, Factor.INHERENCE})
    assert done.phishing_resistant is True


def test_synced_passkey_with_a_zero_counter() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN, backup_eligible=True, counter_step=0)
    stored = enrol(device)
    done, count = sign_in(device, stored)
    assert count == 0
    assert done.amr == ("swk", "user", "mfa")
    # Counter 0 stays acceptable; the single-use challenge is what stops replays there.
    assert sign_in(device, stored)[1] == 0


def test_assertion_without_user_verification_when_not_required() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    done, _ = sign_in(device, stored, require_uv=False, uv=False)
    assert done.amr == ("hwk", "user")
    assert done.acr == ACR_1FA
    assert done.factors == frozenset({Factor.POSSESSION})


def test_user_verification_missing_when_required() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    assert reason_of(sign_in, device, stored, require_uv=True, uv=False) == (
        "user_verification_required"
    )


def test_wrong_challenge() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    reason = reason_of(sign_in, device, stored, challenge=b64url(secrets.token_bytes(32)))
    assert reason == "wrong_challenge"


def test_wrong_origin() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    assert reason_of(sign_in, device, stored, origin="https://id.example.com.evil") == (
        "wrong_origin"
    )


def test_wrong_rp_id() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    assert reason_of(sign_in, device, stored, rp_id="example.com") == "invalid_assertion"


def test_cross_origin_iframe() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    extra = {"crossOrigin": True, "topOrigin": "https://evil.example"}
    assert reason_of(sign_in, device, stored, client_data_extra=extra) == "cross_origin"


def _tamper(assertion: str, change: dict[str, object]) -> str:
    data = json.loads(assertion)
    client_data = json.loads(from_b64url(data["response"]["clientDataJSON"]))
    client_data.update(change)
    data["response"]["clientDataJSON"] = b64url(json.dumps(client_data).encode())
    return json.dumps(data)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"note": "added after signing"}, "invalid_assertion"),  # signature no longer matches
        ({"type": "webauthn.create"}, "wrong_ceremony"),
        ({"origin": "https://evil.example"}, "wrong_origin"),
    ],
)
def test_tampered_client_data(change: dict[str, object], reason: str) -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    options, challenge = passkey.authentication_options(RP_ID, [], require_uv=True)
    tampered = _tamper(device.assertion(options), change)
    assert (
        reason_of(passkey.verify_assertion, tampered, challenge, ORIGIN, RP_ID, stored, True, NOW)
        == reason
    )


def test_malformed_client_data() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    options, challenge = passkey.authentication_options(RP_ID, [], require_uv=True)
    data = json.loads(device.assertion(options))
    data["response"]["clientDataJSON"] = b64url(b"{not json")
    assert (
        reason_of(
            passkey.verify_assertion, json.dumps(data), challenge, ORIGIN, RP_ID, stored, True, NOW
        )
        == "malformed_client_data"
    )


def test_replayed_assertion_with_the_same_counter() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    options, challenge = passkey.authentication_options(RP_ID, [], require_uv=True)
    assertion = device.assertion(options)
    _, count = passkey.verify_assertion(assertion, challenge, ORIGIN, RP_ID, stored, True, NOW)
    stored = replace(stored, sign_count=count)
    assert (
        reason_of(passkey.verify_assertion, assertion, challenge, ORIGIN, RP_ID, stored, True, NOW)
        == "counter_regressed"
    )


def test_cloned_authenticator_counter_goes_backwards() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = replace(enrol(device), sign_count=10)
    assert reason_of(sign_in, device, stored) == "counter_regressed"


def test_credential_of_another_user() -> None:
    mine = SoftAuthenticator(RP_ID, ORIGIN)
    theirs = SoftAuthenticator(RP_ID, ORIGIN)
    enrol(mine)
    their_stored = enrol(theirs)
    options, challenge = passkey.authentication_options(RP_ID, [], require_uv=True)
    assertion = mine.assertion(options)
    assert (
        reason_of(
            passkey.verify_assertion, assertion, challenge, ORIGIN, RP_ID, their_stored, True, NOW
        )
        == "credential_mismatch"
    )


def test_user_handle_of_another_user() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = replace(enrol(device), user_handle=secrets.token_bytes(32))
    assert reason_of(sign_in, device, stored) == "credential_mismatch"
    # Without a userHandle in the response (non-discoverable use), ownership rests on the id.
    assert sign_in(device, stored, user_handle=False)[1] == 2


def test_signature_by_another_key() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = enrol(device)
    impostor = SoftAuthenticator(
        RP_ID, ORIGIN, credential_id=device.credential_id, user_handle=device.user_handle
    )
    assert reason_of(sign_in, impostor, stored) == "invalid_assertion"


def test_backup_eligibility_cannot_change() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    stored = replace(enrol(device), backup_eligible=True)
    assert reason_of(sign_in, device, stored) == "backup_eligibility_changed"


# --- parsing ----------------------------------------------------------------------------------


def test_credential_id_of() -> None:
    device = SoftAuthenticator(RP_ID, ORIGIN)
    enrol(device)
    options, _ = passkey.authentication_options(RP_ID, [], require_uv=True)
    assert passkey.credential_id_of(device.assertion(options)) == device.credential_id


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "null",
        "[]",
        '{"rawId": 5}',
        '{"id": "AAAA", "rawId": "AAAB"}',
        '{"id": "AA A", "rawId": "AA A"}',
        '{"id": "", "rawId": ""}',
        '{"id": "AAA=", "rawId": "AAA="}',
        "{" * 100_000,
    ],
)
def test_credential_id_of_garbage(garbage: str) -> None:
    assert reason_of(passkey.credential_id_of, garbage) == "malformed_credential"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_STORED = StoredPasskey(b"\x01" * 16, b"\xa0", 0, b"h", False)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.text(max_size=50),
        _json.map(json.dumps),
        st.fixed_dictionaries(
            {
                "id": st.just("AQEBAQEBAQEBAQEBAQEBAQ"),
                "rawId": st.just("AQEBAQEBAQEBAQEBAQEBAQ"),
                "type": st.just("public-key"),
                "response": st.dictionaries(
                    st.sampled_from(
                        ["clientDataJSON", "authenticatorData", "signature", "userHandle"]
                    ),
                    st.text(max_size=40) | _json,
                ),
            }
        ).map(json.dumps),
    )
)
def test_hostile_input_only_ever_fails_cleanly(credential_json: str) -> None:
    for call in (
        lambda: passkey.credential_id_of(credential_json),
        lambda: passkey.verify_assertion(
            credential_json, b"c" * 32, ORIGIN, RP_ID, _STORED, True, NOW
        ),
        lambda: passkey.verify_registration(credential_json, b"c" * 32, ORIGIN, RP_ID),
    ):
        with contextlib.suppress(MethodFailed):
            call()


def test_method_ranks_put_passkeys_first() -> None:
    ranks = [m.INFO.rank for m in (passkey, totp, email_code, recovery_codes)]
    assert ranks == sorted(ranks, reverse=True)
    assert passkey.INFO.phishing_resistant


def test_options_json_is_safe_inside_a_script_element() -> None:
    hostile = "</script><script>alert(1)</script> & co"
    options_json, _ = passkey.registration_options(RP_ID, "F", b"h" * 32, hostile, hostile, [])
    assert "<" not in options_json and ">" not in options_json and "&" not in options_json
    assert json.loads(options_json)["user"]["displayName"] == hostile
