"""Token endpoint grants (RFC 6749 §4.1.3 and §6). Implicit and password grants do not exist
here by design (RFC 9700 §2.1.2, §2.4)."""
