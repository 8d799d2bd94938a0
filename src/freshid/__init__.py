"""FreshID: a self-hosted OpenID Connect provider in which trust has an age."""

__version__ = "0.1.0"
