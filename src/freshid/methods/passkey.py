"""Passkeys: WebAuthn registration and assertion, on py_webauthn (W3C Web Authentication Level 2,
with the Level 3 backup-flag rules).

- Registration (WebAuthn §7.1): options ask for a discoverable credential (``residentKey:
  preferred``) with user verification ``required`` and ``none`` attestation (§5.4.7: FreshID
  does not restrict authenticator models, so it does not collect attestation statements).
- Assertion (WebAuthn §7.2): FreshID checks, in order, the ceremony's own rules that need a clear
  reason — credential ownership (step 6: the credential is the stored one, and a returned
  ``userHandle`` is its user's), client data type, challenge and origin (steps 11-13) and L3's
  ``crossOrigin`` — then lets py_webauthn verify the RP ID hash, user presence and the signature
  (steps 15, 16, 20), then applies user verification (step 17), backup eligibility (L3: the BE
  flag never changes for a credential) and the signature counter (step 21, §6.1.1).
- Signature counter: when the stored or the new count is non-zero, the new one must be greater;
  otherwise the credential may have been cloned, and the assertion fails with
  ``counter_regressed``. Many synced passkeys always report 0; for them a replayed assertion is
  stopped by the challenge, which the caller stores server-side and deletes when it is consumed
  (compare-and-set), so each challenge verifies at most once.
- RFC 8176 §2 ``amr``: ``hwk`` for a device-bound key, ``swk`` for a backup-eligible (synced)
  passkey whose private key can leave the device, ``user`` (presence, always tested), and ``mfa``
  with user verification: one gesture proves possession of the key and a PIN or biometric
  (counted here as inherence). ``acr`` is phishing-resistant (``phr``) only with user
  verification; without it the passkey is one factor. It is phishing resistant either way: the
  signature covers the origin (NIST SP 800-63B §5.2.5, verifier-name binding).

Ownership: the caller looks the stored passkey up by credential id *and* the user being
authenticated (:func:`credential_id_of` reads the id out of the browser's JSON for that lookup),
must refuse to register a credential id already stored for anyone, and persists the returned
sign count. Every failure is a :class:`MethodFailed` with a short reason, never a library error.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    ClientDataType,
    CredentialDeviceType,
    PublicKeyCredentialCreationOptions,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialRequestOptions,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from freshid.freshness.levels import ACR_1FA, ACR_PHR
from freshid.methods.base import CompletedMethod, Factor, MethodFailed, MethodInfo

INFO = MethodInfo(
    "passkey",
    "Passkey",
    frozenset({Factor.POSSESSION, Factor.INHERENCE}),
    phishing_resistant=True,
    rank=50,
)

CHALLENGE_BYTES = 32
"""WebAuthn §13.4.3: at least 16 random bytes."""
TIMEOUT_MS = 300_000
"""WebAuthn §5.4 recommends 5-10 minutes when user verification is required."""
CHALLENGE_TTL = TIMEOUT_MS // 1000
"""How long the caller should keep a challenge before treating it as expired."""
MAX_CREDENTIAL_ID_BYTES = 1023
"""WebAuthn L3 §7.1: a credential id longer than this must be refused."""

_B64URL = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class NewPasskey:
    """What to store after a successful registration (plus a user-chosen name)."""

    credential_id: bytes
    public_key: bytes
    """COSE_Key, as the authenticator sent it."""
    sign_count: int
    transports: tuple[str, ...]
    backup_eligible: bool
    aaguid: str


@dataclass(frozen=True)
class StoredPasskey:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    user_handle: bytes
    """The WebAuthn user.id given at registration (random, not the account id or email)."""
    backup_eligible: bool


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _from_b64url(value: object) -> bytes:
    # py_webauthn's decoder silently drops characters outside the alphabet; be strict, so one
    # credential id has exactly one spelling.
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        raise MethodFailed("malformed_credential")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MethodFailed("malformed_credential") from exc
    if _b64url(raw) != value:
        raise MethodFailed("malformed_credential")
    return raw


def _embeddable_json(
    options: PublicKeyCredentialCreationOptions | PublicKeyCredentialRequestOptions,
) -> str:
    """The options as JSON that is safe inside ``<script type="application/json">``.

    The user name and display name are user-controlled; ``</script>`` in them would end the
    element. ``<``, ``>`` and ``&`` only ever occur inside JSON strings, where ``\\u003c`` and
    friends denote the same characters, so the escaped text parses to the same value. Templates
    must insert it unescaped (HTML entities are not decoded inside a script element).
    """
    text = json.dumps(options_to_json_dict(options))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def registration_options(
    rp_id: str,
    rp_name: str,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    exclude: list[bytes],
) -> tuple[str, bytes]:
    """Options JSON for ``navigator.credentials.create()`` and the challenge to keep server-side.

    The JSON is safe to embed in ``<script type="application/json">`` (:func:`_embeddable_json`).

    ``exclude`` lists the user's existing credential ids so one authenticator is not registered
    twice (WebAuthn §5.4 ``excludeCredentials``).
    """
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_id=user_handle,
        user_name=user_name,
        user_display_name=display_name,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=cid) for cid in exclude],
    )
    return _embeddable_json(options), challenge


def authentication_options(rp_id: str, allow: list[bytes], require_uv: bool) -> tuple[str, bytes]:
    """Options JSON for ``navigator.credentials.get()`` and the challenge to keep server-side.

    An empty ``allow`` lets the browser offer any discoverable passkey for ``rp_id`` (sign-in
    without a user name); for a step-up, pass the user's credential ids and ``require_uv=True``.
    """
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=[PublicKeyCredentialDescriptor(id=cid) for cid in allow],
        user_verification=(
            UserVerificationRequirement.REQUIRED
            if require_uv
            else UserVerificationRequirement.PREFERRED
        ),
    )
    return _embeddable_json(options), challenge


def credential_id_of(credential_json: str) -> bytes:
    """The raw credential id in the browser's JSON, to look the stored passkey up by."""
    try:
        data = json.loads(credential_json)
    except (ValueError, TypeError, RecursionError) as exc:
        raise MethodFailed("malformed_credential") from exc
    if not isinstance(data, dict):
        raise MethodFailed("malformed_credential")
    raw_id = _from_b64url(data.get("rawId"))
    # WebAuthn §5.1: ``id`` is the base64url of ``rawId``; two different ids is a forgery.
    if data.get("id") != data.get("rawId") or not 0 < len(raw_id) <= MAX_CREDENTIAL_ID_BYTES:
        raise MethodFailed("malformed_credential")
    return raw_id


def _check_client_data(
    client_data_json: bytes, expected: ClientDataType, challenge: bytes, origin: str
) -> None:
    """WebAuthn §7.1 steps 7-9 / §7.2 steps 11-13, and L3 ``crossOrigin``; one reason per rule."""
    try:
        client_data = parse_client_data_json(client_data_json)
    except Exception as exc:
        raise MethodFailed("malformed_client_data") from exc
    if client_data.type != expected:
        raise MethodFailed("wrong_ceremony")
    if not hmac.compare_digest(client_data.challenge, challenge):
        raise MethodFailed("wrong_challenge")
    if not isinstance(client_data.origin, str) or client_data.origin != origin:
        raise MethodFailed("wrong_origin")
    # FreshID's pages are never embedded in another site's frame; an assertion made inside one
    # would be a framing attack (WebAuthn L3 §7.2, ``crossOrigin`` / ``topOrigin``).
    if client_data.cross_origin:
        raise MethodFailed("cross_origin")


def verify_registration(
    credential_json: str, challenge: bytes, origin: str, rp_id: str
) -> NewPasskey:
    """Check the browser's answer to :func:`registration_options` (WebAuthn §7.1).

    Raises MethodFailed: ``malformed_credential``, ``malformed_client_data``, ``wrong_ceremony``,
    ``wrong_challenge``, ``wrong_origin``, ``cross_origin``, ``invalid_registration`` (RP ID,
    presence, attestation or key not acceptable), ``user_verification_required``.
    """
    # The library can fail in many ways on hostile input (JSON, base64, CBOR, COSE, crypto); any of
    # them means "not verified", so every exception becomes a MethodFailed.
    try:
        credential = parse_registration_credential_json(credential_json)
    except Exception as exc:
        raise MethodFailed("malformed_credential") from exc
    if _b64url(credential.raw_id) != credential.id or not (
        0 < len(credential.raw_id) <= MAX_CREDENTIAL_ID_BYTES
    ):
        raise MethodFailed("malformed_credential")
    _check_client_data(
        credential.response.client_data_json, ClientDataType.WEBAUTHN_CREATE, challenge, origin
    )
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_presence=True,
            require_user_verification=False,  # checked below, for its own reason
        )
    except Exception as exc:
        raise MethodFailed("invalid_registration") from exc
    if not verified.user_verified:
        raise MethodFailed("user_verification_required")
    if verified.credential_id != credential.raw_id:
        # The attested credential id must be the one the browser reported (WebAuthn §7.1).
        raise MethodFailed("invalid_registration")
    return NewPasskey(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=tuple(t.value for t in credential.response.transports or ()),
        backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
        aaguid=verified.aaguid,
    )


def verify_assertion(
    credential_json: str,
    challenge: bytes,
    origin: str,
    rp_id: str,
    stored: StoredPasskey,
    require_uv: bool,
    now: int,
) -> tuple[CompletedMethod, int]:
    """Check the browser's answer to :func:`authentication_options` against ``stored``.

    Returns the completed method and the new sign count to persist. Raises MethodFailed:
    ``malformed_credential``, ``credential_mismatch`` (not the stored credential, or another
    user's handle), the client data reasons of :func:`verify_registration`, ``invalid_assertion``
    (RP ID, presence or signature), ``user_verification_required``,
    ``backup_eligibility_changed``, ``counter_regressed``.
    """
    try:
        credential = parse_authentication_credential_json(credential_json)
    except Exception as exc:
        raise MethodFailed("malformed_credential") from exc
    if _b64url(credential.raw_id) != credential.id:
        raise MethodFailed("malformed_credential")
    # Ownership first (WebAuthn §7.2 step 6): the caller found ``stored`` by credential id and
    # user, and the assertion must be for exactly that credential and that user.
    if not hmac.compare_digest(credential.raw_id, stored.credential_id):
        raise MethodFailed("credential_mismatch")
    user_handle = credential.response.user_handle
    if user_handle is not None and not hmac.compare_digest(user_handle, stored.user_handle):
        raise MethodFailed("credential_mismatch")
    _check_client_data(
        credential.response.client_data_json, ClientDataType.WEBAUTHN_GET, challenge, origin
    )
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=stored.public_key,
            # 0 disables the library's counter check, which runs *before* the signature; the
            # rule is applied below, so "counter_regressed" is only ever reported for a validly
            # signed assertion (the cloned-authenticator signal), never for a forgery.
            credential_current_sign_count=0,
            require_user_verification=False,  # checked below, for its own reason
        )
    except Exception as exc:
        raise MethodFailed("invalid_assertion") from exc
    if require_uv and not verified.user_verified:
        raise MethodFailed("user_verification_required")
    backup_eligible = verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    if backup_eligible != stored.backup_eligible:
        raise MethodFailed("backup_eligibility_changed")
    new_count = verified.new_sign_count
    if (stored.sign_count or new_count) and new_count <= stored.sign_count:
        raise MethodFailed("counter_regressed")
    return (
        completed(now, user_verified=verified.user_verified, backup_eligible=backup_eligible),
        new_count,
    )


def completed(now: int, *, user_verified: bool, backup_eligible: bool) -> CompletedMethod:
    key = "swk" if backup_eligible else "hwk"
    if user_verified:
        amr: tuple[str, ...] = (key, "user", "mfa")
        acr = ACR_PHR
        factors = INFO.factors
    else:
        amr = (key, "user")
        acr = ACR_1FA
        factors = frozenset({Factor.POSSESSION})
    return CompletedMethod(
        method=INFO.name,
        amr=amr,
        acr=acr,
        completed_at=now,
        factors=factors,
        phishing_resistant=INFO.phishing_resistant,
    )
