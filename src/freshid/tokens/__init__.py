"""Token formats: JWS signing and keys, refresh tokens, opaque secrets."""
