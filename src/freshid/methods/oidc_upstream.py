"""Upstream OpenID Connect (and plain OAuth 2.0) as an authentication method: the pure core.

No HTTP and no SQL here: the caller fetches documents and stores flow state; these functions build
the request and judge the answer.

- Discovery (OIDC Discovery §4.3): the metadata's ``issuer`` must equal the configured issuer
  exactly, or the document is refused (it would let one provider impersonate another).
- Request (OIDC Core §3.1.2.1): code flow with ``state``, ``nonce`` and PKCE S256 (RFC 7636
  §4.2; RFC 9700 §2.1.1). A re-authentication sends ``prompt=login`` *and* ``max_age=0``:
  providers honour one or the other, and ``max_age`` obliges them to return ``auth_time``. A
  plain sign-in sends a long ``max_age`` for the same reason: the session FreshID starts is dated
  by the upstream's ``auth_time``, not by the moment the answer arrived.
- Response (RFC 9207): when the provider sends ``iss`` (or advertises that it does), it must be the
  provider's issuer; each connection also has its own redirect URI, the other mix-up defence of
  RFC 9700 §4.4.
- ID token validation (OIDC Core §3.1.3.7): signature by a key of the provider's JWKS chosen by
  ``kid``, ``alg`` in the connection's allow-list, ``iss``, ``aud`` containing our client id,
  ``azp`` when present (and required with several audiences), ``exp``, ``iat`` not in the future,
  ``nonce`` equal to the one stored for this flow.
- Freshness: asking is not proving. When FreshID demanded a new login, the upstream's
  ``auth_time`` must be within ``skew`` seconds of now; a missing ``auth_time`` is not fresh.
- Assurance: the upstream's ``acr``/``amr`` map, per connection, to FreshID's factor kinds (NIST SP
  800-63B §4), so an upstream MFA can meet a multi-factor requirement. The ``amr`` of a federated
  proof contains ``fed`` (RFC 8176 §2); ``mfa`` is added by the event that combines it.

Plain OAuth 2.0 providers (no ID token) identify the user through a userinfo call; they say nothing
about when the user authenticated, so they can sign a user in but never prove freshness.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from freshid.federation import jose
from freshid.freshness.levels import event_acr
from freshid.methods.base import CompletedMethod, Factor, MethodFailed, MethodInfo
from freshid.tokens.jws import JWSError

METHOD_PREFIX = "fed:"
AMR = ("fed",)
RANK = 40
"""Above the authenticator app: for a federated user, the upstream is their own credential."""
DEFAULT_ALGS = ("RS256", "ES256", "PS256")
ID_TOKEN_LEEWAY = 60
"""Seconds of clock difference tolerated on ``exp`` and ``iat``."""

# RFC 8176 §2 values, by the kind of factor they stand for (NIST SP 800-63B §5.1).
_KNOWLEDGE_AMR = frozenset({"pwd", "pin", "kba"})
_POSSESSION_AMR = frozenset({"otp", "hwk", "swk", "sms", "tel", "sc", "pop"})
_INHERENCE_AMR = frozenset({"fpt", "face", "iris", "retina", "vbm"})


def method_name(connection_id: str) -> str:
    return f"{METHOD_PREFIX}{connection_id}"


def info(connection_id: str, label: str, *, multi_factor: bool = False) -> MethodInfo:
    """What a connection offers: one factor unless the upstream is known to do MFA."""
    factors = (
        frozenset({Factor.KNOWLEDGE, Factor.POSSESSION})
        if multi_factor
        else frozenset({Factor.KNOWLEDGE})
    )
    return MethodInfo(method_name(connection_id), label, factors, rank=RANK)


# --- discovery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str | None
    userinfo_endpoint: str | None = None
    iss_parameter_supported: bool = False
    """RFC 9207 §3: the provider always sends ``iss`` in its authorization responses."""


def _https_or_loopback(url: object, what: str) -> str:
    if not isinstance(url, str):
        raise MethodFailed(f"metadata_missing_{what}")
    parts = urlsplit(url)
    loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise MethodFailed(f"metadata_insecure_{what}")
    return url


def parse_metadata(doc: Mapping[str, Any], expected_issuer: str) -> ProviderMetadata:
    """OIDC Discovery §3 metadata, accepted only for ``expected_issuer`` (§4.3)."""
    if doc.get("issuer") != expected_issuer:
        raise MethodFailed("metadata_issuer_mismatch")
    return ProviderMetadata(
        issuer=expected_issuer,
        authorization_endpoint=_https_or_loopback(
            doc.get("authorization_endpoint"), "authorization_endpoint"
        ),
        token_endpoint=_https_or_loopback(doc.get("token_endpoint"), "token_endpoint"),
        jwks_uri=_https_or_loopback(doc.get("jwks_uri"), "jwks_uri"),
        userinfo_endpoint=(
            _https_or_loopback(doc["userinfo_endpoint"], "userinfo_endpoint")
            if doc.get("userinfo_endpoint")
            else None
        ),
        iss_parameter_supported=doc.get("authorization_response_iss_parameter_supported") is True,
    )


# --- the request -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowSecrets:
    """What one flow must remember server-side: never in the browser, never in a log."""

    state: str
    nonce: str
    verifier: str

    @property
    def challenge(self) -> str:
        """RFC 7636 §4.2: S256, the only method FreshID sends."""
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_flow() -> FlowSecrets:
    # 256 bits each; the verifier is 43 characters of the RFC 7636 §4.1 alphabet.
    return FlowSecrets(
        secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    )


def authorization_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: Sequence[str],
    flow: FlowSecrets,
    force_login: bool,
    auth_time_within: int | None = None,
    oidc: bool = True,
    login_hint: str | None = None,
    acr_values: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
) -> str:
    """The authorization request URL; the endpoint's own query is kept (RFC 6749 §3.1)."""
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scope),
        "state": flow.state,
        "code_challenge": flow.challenge,
        "code_challenge_method": "S256",
    }
    if oidc:
        params["nonce"] = flow.nonce
        if force_login:
            # OIDC Core §3.1.2.1: both, so a provider honouring either re-authenticates, and
            # max_age makes auth_time a REQUIRED claim of the ID token.
            params["prompt"] = "login"
            params["max_age"] = "0"
        elif auth_time_within is not None:
            # Not a demand for a new login (only sessions older than this are asked again), but
            # with max_age the provider MUST return auth_time, so FreshID learns how old the
            # upstream proof really is instead of dating it "now".
            params["max_age"] = str(auth_time_within)
        if acr_values:
            params["acr_values"] = " ".join(acr_values)
    if login_hint:
        params["login_hint"] = login_hint
    for key, value in (extra or {}).items():
        params.setdefault(key, value)
    parts = urlsplit(endpoint)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


# --- the response ------------------------------------------------------------------------------


def check_response(
    params: Mapping[str, str], metadata: ProviderMetadata | None, issuer: str | None
) -> str:
    """The authorization response (RFC 6749 §4.1.2, RFC 9207 §2.4); returns the code.

    ``state`` was already matched by the caller (it found the flow by it).
    """
    returned_iss = params.get("iss")
    iss_required = metadata is not None and metadata.iss_parameter_supported
    if (returned_iss is not None or iss_required) and (
        returned_iss is None or issuer is None or returned_iss != issuer
    ):
        raise MethodFailed("issuer_mismatch")
    error = params.get("error")
    if error is not None:
        # access_denied, login_required... the user (or the upstream) said no.
        safe = error if error.replace("_", "").isalnum() and len(error) <= 40 else "invalid"
        raise MethodFailed(f"upstream_error:{safe}")
    code = params.get("code")
    if not code or len(code) > 2048:
        raise MethodFailed("missing_code")
    return code


def validate_id_token(
    id_token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: int,
    algorithms: Sequence[str] = DEFAULT_ALGS,
    leeway: int = ID_TOKEN_LEEWAY,
) -> dict[str, Any]:
    """OIDC Core §3.1.3.7, in its order. Raises :class:`jose.UnknownKid` so the caller can
    refresh the JWKS once; every other failure is a :class:`MethodFailed` with its reason."""
    try:
        claims = jose.verify(id_token, jwks, algorithms)
    except jose.UnknownKid:
        raise
    except JWSError as exc:
        reason = "alg_not_allowed" if "algorithm" in str(exc) else "invalid_signature"
        raise MethodFailed(reason) from exc
    if claims.get("iss") != issuer:
        raise MethodFailed("wrong_issuer")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise MethodFailed("wrong_audience")
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise MethodFailed("wrong_azp")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _is_time(exp) or not _is_time(iat):
        raise MethodFailed("missing_time_claims")
    if now >= int(exp) + leeway:
        raise MethodFailed("id_token_expired")
    if int(iat) > now + leeway:
        raise MethodFailed("id_token_from_future")
    got = claims.get("nonce")
    if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
        raise MethodFailed("wrong_nonce")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise MethodFailed("missing_subject")
    return claims


def _is_time(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- what the answer proves --------------------------------------------------------------------


@dataclass(frozen=True)
class Assurance:
    """How one connection's ``acr``/``amr`` values translate into FreshID's factor kinds."""

    mfa_acr: frozenset[str] = frozenset()
    """Upstream ``acr`` values that mean a multi-factor authentication."""
    phr_acr: frozenset[str] = frozenset()
    """Upstream ``acr`` values that mean phishing-resistant multi-factor authentication."""
    mfa_amr: frozenset[str] = frozenset({"mfa"})
    """Upstream ``amr`` values that, present, mean multi-factor (RFC 8176 ``mfa``)."""


@dataclass(frozen=True)
class UpstreamProof:
    """Who the upstream says the user is, and what it says about how and when they proved it."""

    subject: str
    email: str | None
    email_verified: bool
    auth_time: int | None
    acr: str | None
    amr: tuple[str, ...]
    claims: Mapping[str, Any] = field(default_factory=dict)


def proof_from_claims(claims: Mapping[str, Any]) -> UpstreamProof:
    """The parts of validated ID token (or userinfo) claims that FreshID uses."""
    auth_time = claims.get("auth_time")
    amr = claims.get("amr")
    acr = claims.get("acr")
    email = claims.get("email")
    return UpstreamProof(
        subject=str(claims["sub"]),
        email=email if isinstance(email, str) and "@" in email and len(email) <= 320 else None,
        # OIDC Core §5.1: only a JSON true means verified ("true" strings are a provider bug).
        email_verified=claims.get("email_verified") is True,
        auth_time=int(auth_time) if _is_time(auth_time) else None,
        acr=acr if isinstance(acr, str) and len(acr) <= 256 else None,
        amr=tuple(v for v in amr if isinstance(v, str) and len(v) <= 64)[:16]
        if isinstance(amr, list)
        else (),
        claims=dict(claims),
    )


def check_fresh(proof: UpstreamProof, now: int, skew: int) -> int:
    """The upstream re-authenticated the user just now, or :class:`MethodFailed`.

    ``auth_time`` (OIDC Core §2) must be within ``skew`` seconds of ``now``; absent, the upstream
    proved nothing about *when* (``upstream_not_fresh``), and a time ahead of ours by more than the
    skew is a clock we cannot trust (``upstream_clock_skew``).
    """
    if proof.auth_time is None or now - proof.auth_time > skew:
        raise MethodFailed("upstream_not_fresh")
    if proof.auth_time - now > skew:
        raise MethodFailed("upstream_clock_skew")
    return proof.auth_time


def factors_of(proof: UpstreamProof, assurance: Assurance) -> tuple[frozenset[Factor], bool]:
    """The factor kinds the upstream's answer stands for, and whether it resists phishing.

    Without a statement, a federated proof is one factor, counted as knowledge (a password at the
    upstream is by far the most common case); it never counts for more than it says.
    """
    amr = set(proof.amr)
    phr = proof.acr is not None and proof.acr in assurance.phr_acr
    if phr or (proof.acr is not None and proof.acr in assurance.mfa_acr) or amr & assurance.mfa_amr:
        return frozenset({Factor.KNOWLEDGE, Factor.POSSESSION}), phr
    kinds: set[Factor] = set()
    if amr & _KNOWLEDGE_AMR:
        kinds.add(Factor.KNOWLEDGE)
    if amr & _POSSESSION_AMR:
        kinds.add(Factor.POSSESSION)
    if amr & _INHERENCE_AMR:
        kinds.add(Factor.INHERENCE)
    return frozenset(kinds or {Factor.KNOWLEDGE}), False


def completed(
    connection_id: str,
    proof: UpstreamProof,
    assurance: Assurance,
    *,
    completed_at: int,
    forced: bool,
) -> CompletedMethod:
    """The completed method, with the upstream evidence the session history keeps."""
    factors, phr = factors_of(proof, assurance)
    amr = (*AMR, "mfa") if len(factors) >= 2 else AMR
    return CompletedMethod(
        method=method_name(connection_id),
        amr=amr,
        acr=event_acr(frozenset(factors), phr),
        completed_at=completed_at,
        upstream={
            "connection": connection_id,
            "subject": proof.subject,
            "auth_time": proof.auth_time,
            "acr": proof.acr,
            "amr": list(proof.amr),
            "forced": forced,
        },
        factors=factors,
        phishing_resistant=phr,
    )
