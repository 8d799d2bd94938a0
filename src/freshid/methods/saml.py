"""SAML 2.0 Web Browser SSO as an authentication method: the service-provider core, on pysaml2.

No HTTP and no SQL: the caller stores the request ID and the assertion IDs it has seen.

- Request (SAML 2.0 Core §3.4.1, HTTP-Redirect binding): an ``AuthnRequest`` for the connection's
  IdP, read from its metadata. A re-authentication sets ``ForceAuthn="true"``: the IdP "MUST
  authenticate the presenter directly rather than rely on a previous security context".
- Response (SAML 2.0 Profiles §4.1.4, HTTP-POST binding), checked by pysaml2 with ``xmlsec1``:
  the assertion must be signed by a key of the IdP's metadata (an unsigned one is refused even
  inside a signed response), ``Destination`` and the bearer ``SubjectConfirmationData``
  ``Recipient`` must be our ACS URL, ``InResponseTo`` must be the request this flow sent
  (unsolicited responses are refused), ``AudienceRestriction`` must name our entity ID, and
  ``NotBefore``/``NotOnOrAfter`` must hold, with ``skew`` seconds of tolerance.
- Replay (Profiles §4.1.4.5): the assertion ``ID`` is returned with its ``NotOnOrAfter`` so the
  caller can refuse an ID it has already accepted; after that time the validity check refuses it.
- Freshness (Core §2.7.2 ``AuthnStatement``): ``AuthnInstant`` is the upstream's authentication
  time, checked like OIDC's ``auth_time`` by :func:`freshid.methods.oidc_upstream.check_fresh`;
  ``AuthnContextClassRef`` plays the part of ``acr`` and maps to factor kinds per connection.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import logging
import shutil
import warnings
from dataclasses import dataclass
from typing import Any

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    # pysaml2 names a cipher mode that cryptography has moved (it never uses it for us), and it
    # ships no type information.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # type: ignore[import-untyped]
    from saml2.client import Saml2Client  # type: ignore[import-untyped]
    from saml2.config import SPConfig  # type: ignore[import-untyped]
    from saml2.metadata import entity_descriptor  # type: ignore[import-untyped]
    from saml2.saml import NAMEID_FORMAT_PERSISTENT  # type: ignore[import-untyped]
    from saml2.time_util import str_to_time  # type: ignore[import-untyped]

from freshid.methods.base import MethodFailed
from freshid.methods.oidc_upstream import UpstreamProof

log = logging.getLogger("freshid.federation")

EMAIL_ATTRIBUTES = ("email", "mail", "emailAddress", "urn:oid:0.9.2342.19200300.100.1.3")
MAX_RESPONSE = 256 * 1024


@dataclass(frozen=True)
class ServiceProvider:
    entity_id: str
    acs_url: str
    idp_metadata: str
    skew: int = 60


@dataclass(frozen=True)
class SamlAnswer:
    proof: UpstreamProof
    assertion_id: str
    not_on_or_after: int
    attributes: dict[str, list[str]]


def xmlsec_binary() -> str | None:
    return shutil.which("xmlsec1")


def _client(sp: ServiceProvider) -> Saml2Client:
    binary = xmlsec_binary()
    if binary is None:
        raise MethodFailed("saml_unavailable")
    config = SPConfig()
    config.load(
        {
            "entityid": sp.entity_id,
            "xmlsec_binary": binary,
            "accepted_time_diff": sp.skew,
            "allow_unknown_attributes": True,
            "metadata": {"inline": [sp.idp_metadata]},
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(sp.acs_url, BINDING_HTTP_POST)]},
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                    "authn_requests_signed": False,
                    "allow_unsolicited": False,
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                }
            },
        }
    )
    return Saml2Client(config=config)


def _idp_entity_id(client: Saml2Client) -> str:
    idps = list(client.metadata.identity_providers())
    if len(idps) != 1:
        raise MethodFailed("saml_metadata_needs_one_idp")
    return str(idps[0])


def check_metadata(sp: ServiceProvider) -> str:
    """The IdP entity ID of ``sp.idp_metadata``; raises MethodFailed if it is not usable."""
    try:
        return _idp_entity_id(_client(sp))
    except MethodFailed:
        raise
    except Exception as exc:
        raise MethodFailed("saml_metadata_invalid") from exc


def sp_metadata(sp: ServiceProvider) -> str:
    """Our SP metadata (SAML 2.0 Metadata §2.4.4), for the IdP's administrator."""
    return str(entity_descriptor(_client(sp).config))


def authn_request(sp: ServiceProvider, relay_state: str, *, force: bool) -> tuple[str, str]:
    """``(request ID, URL to send the browser to)`` for an HTTP-Redirect ``AuthnRequest``."""
    client = _client(sp)
    extra: dict[str, Any] = {"force_authn": "true"} if force else {}
    request_id, info = client.prepare_for_authenticate(
        entityid=_idp_entity_id(client),
        relay_state=relay_state,
        binding=BINDING_HTTP_REDIRECT,
        **extra,
    )
    location = dict(info["headers"]).get("Location")
    if not location:
        raise MethodFailed("saml_no_sso_endpoint")
    return str(request_id), str(location)


def _epoch(value: str) -> int:
    return int(calendar.timegm(str_to_time(value)))


def parse_response(
    sp: ServiceProvider, saml_response: str, request_id: str, *, email_verified: bool
) -> SamlAnswer:
    """Verify a base64 ``SAMLResponse`` sent to our ACS for ``request_id``.

    ``email_verified``: whether this IdP may vouch for the addresses it sends (FreshID trusts an
    enterprise IdP's address only within the connection's own domains).
    """
    if not saml_response or len(saml_response) > MAX_RESPONSE:
        raise MethodFailed("saml_malformed")
    try:
        base64.b64decode(saml_response, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MethodFailed("saml_malformed") from exc
    client = _client(sp)
    try:
        response = client.parse_authn_request_response(
            saml_response, BINDING_HTTP_POST, outstanding={request_id: "flow"}
        )
    except Exception as exc:
        # Signature, InResponseTo, audience, recipient, destination or time window: pysaml2
        # raises a different class for each; the class name is the reason, never the XML.
        log.info("SAML response refused: %s", type(exc).__name__)
        raise MethodFailed(f"saml_invalid:{type(exc).__name__}") from exc
    if response is None or response.assertion is None:
        raise MethodFailed("saml_invalid:no_assertion")
    if getattr(response, "in_response_to", None) != request_id:
        raise MethodFailed("saml_invalid:in_response_to")
    assertion = response.assertion
    if assertion.signature is None:  # pysaml2 checks it too; say it twice for signed responses
        raise MethodFailed("saml_invalid:unsigned_assertion")
    name_id = response.name_id
    subject = getattr(name_id, "text", None)
    if not subject or len(subject) > 255:
        raise MethodFailed("missing_subject")
    authn = response.authn_info()
    if not authn:
        raise MethodFailed("saml_invalid:no_authn_statement")
    class_ref, _authorities, instant = authn[0]
    not_on_or_after = assertion.conditions.not_on_or_after if assertion.conditions else None
    if not not_on_or_after:
        raise MethodFailed("saml_invalid:no_validity_window")
    attributes: dict[str, list[str]] = {
        k: [str(v) for v in vs] for k, vs in (response.ava or {}).items()
    }
    email = next((attributes[a][0] for a in EMAIL_ATTRIBUTES if attributes.get(a)), None)
    proof = UpstreamProof(
        subject=str(subject),
        email=email if email and "@" in email and len(email) <= 320 else None,
        email_verified=email_verified,
        auth_time=_epoch(instant) if instant else None,
        acr=class_ref or None,
        amr=(),
    )
    return SamlAnswer(proof, str(assertion.id), _epoch(not_on_or_after), attributes)
