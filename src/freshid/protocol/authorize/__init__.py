"""The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): validating the request as a
declared pipeline of small checks, then the freshness decision."""
