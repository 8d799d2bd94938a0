"""Authentication methods, one module each, behind the interface in :mod:`freshid.methods.base`."""
