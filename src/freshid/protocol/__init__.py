"""The wire protocol: OAuth 2.0, OpenID Connect and their extensions. No HTML, no SQL here."""
