"""The event catalog: every event type FreshID writes, named ``noun.past_verb``.

Payloads never carry secrets: no passwords, codes, tokens or cookie values.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    AUTHENTICATION_SUCCEEDED = "authentication.succeeded"
    AUTHENTICATION_REAUTHENTICATED = "authentication.reauthenticated"
    AUTHENTICATION_FAILED = "authentication.failed"
    SESSION_CREATED = "session.created"
    SESSION_REVOKED = "session.revoked"
    TOKEN_ISSUED = "token.issued"
    TOKEN_REFRESHED = "token.refreshed"
    TOKEN_REVOKED = "token.revoked"
    TOKEN_REFRESH_REUSE_DETECTED = "token.refresh_reuse_detected"
    AUTHORIZATION_CODE_REUSE_DETECTED = "authorization_code.reuse_detected"
    CREDENTIAL_ADDED = "credential.added"
    CREDENTIAL_REMOVED = "credential.removed"
    CREDENTIAL_ENROLMENT_FAILED = "credential.enrolment_failed"
    USER_CREATED = "user.created"
    USER_DISABLED = "user.disabled"
    CLIENT_CREATED = "client.created"
    SIGNING_KEY_ROTATED = "signing_key.rotated"
    ADMIN_KEY_CREATED = "admin_key.created"
    ADMIN_KEY_REVOKED = "admin_key.revoked"
    WEBHOOK_ENDPOINT_CREATED = "webhook_endpoint.created"
    WEBHOOK_ENDPOINT_UPDATED = "webhook_endpoint.updated"
    WEBHOOK_ENDPOINT_DELETED = "webhook_endpoint.deleted"
    WEBHOOK_ENDPOINT_DISABLED = "webhook_endpoint.disabled"
    WEBHOOK_ENDPOINT_ENABLED = "webhook_endpoint.enabled"
    WEBHOOK_SECRET_ROTATED = "webhook_endpoint.secret_rotated"
    CONNECTION_CREATED = "connection.created"
    CONNECTION_UPDATED = "connection.updated"
    CONNECTION_ENABLED = "connection.enabled"
    CONNECTION_DISABLED = "connection.disabled"
    CONNECTION_DELETED = "connection.deleted"
