"""A SAML 2.0 identity provider run in-process with pysaml2's ``Server``, signing with xmlsec1.

The test plays the browser: it reads the ``AuthnRequest`` FreshID redirected to (HTTP-Redirect
binding), asks this IdP for a signed response, and posts it to FreshID's ACS (HTTP-POST binding).
Knobs let a test send what a broken or hostile IdP would: an old ``AuthnInstant``, an unsigned
assertion, another ``InResponseTo``, another audience.
"""

from __future__ import annotations

import base64
import datetime
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

with warnings.catch_warnings():
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)  # see freshid.methods.saml
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.config import IdPConfig
    from saml2.metadata import entity_descriptor
    from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
    from saml2.server import Server

from freshid.methods.saml import xmlsec_binary
from tests.federation.peers import SAML_SSO_URL

ENTITY_ID = "https://idp.saml.test/metadata"
SSO_URL = SAML_SSO_URL
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
MFA = "https://refeds.org/profile/mfa"


def _key_pair(directory: Path) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.saml.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "idp.key", directory / "idp.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(key_path), str(cert_path)


@dataclass(frozen=True)
class Request:
    id: str
    acs_url: str
    force_authn: bool
    relay_state: str


class SamlIdP:
    def __init__(self, directory: Path) -> None:
        self.key_file, self.cert_file = _key_pair(directory)
        self.server: Server | None = None

    def _config(self, sp_metadata: str | None) -> IdPConfig:
        config = IdPConfig()
        config.load(
            {
                "entityid": ENTITY_ID,
                "xmlsec_binary": xmlsec_binary(),
                "key_file": self.key_file,
                "cert_file": self.cert_file,
                "metadata": {"inline": [sp_metadata]} if sp_metadata else {},
                "service": {
                    "idp": {
                        "endpoints": {"single_sign_on_service": [(SSO_URL, BINDING_HTTP_REDIRECT)]},
                        "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                        "policy": {"default": {"lifetime": {"minutes": 5}}},
                    }
                },
            }
        )
        return config

    def metadata(self) -> str:
        return str(entity_descriptor(self._config(None)))

    def trust(self, sp_metadata: str) -> None:
        self.server = Server(config=self._config(sp_metadata))

    def read_request(self, url: str) -> Request:
        assert url.startswith(SSO_URL), url
        assert self.server is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        parsed = self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
        message = parsed.message
        return Request(
            message.id,
            message.assertion_consumer_service_url,
            str(message.force_authn).lower() == "true",
            query.get("RelayState", ""),
        )

    def respond(
        self,
        request: Request,
        *,
        subject: str = "alice-saml",
        email: str = "alice@corp.example",
        authn_age: int = 0,
        class_ref: str = PASSWORD,
        sign_assertion: bool = True,
        in_response_to: str | None = None,
        sp_entity_id: str,
    ) -> dict[str, str]:
        """The form an IdP's page would auto-post to the ACS."""
        assert self.server is not None
        instant = int(datetime.datetime.now(datetime.UTC).timestamp()) - authn_age
        response = self.server.create_authn_response(
            identity={"mail": [email]},
            in_response_to=in_response_to or request.id,
            destination=request.acs_url,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=subject),
            authn={"class_ref": class_ref, "authn_instant": instant},
            sign_assertion=sign_assertion,
            sign_response=False,
        )
        return {
            "SAMLResponse": base64.b64encode(str(response).encode()).decode(),
            "RelayState": request.relay_state,
        }
