"""Hosted pages: sign-in, re-authentication, logout and errors."""
