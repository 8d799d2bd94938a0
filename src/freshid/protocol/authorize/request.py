"""The validated authorization request, and how it travels through an interaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from freshid.freshness.decision import AuthRequest


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    acr_values: tuple[str, ...] = ()
    essential_acr: tuple[str, ...] = ()
    hint_subject: str | None = None
    login_hint: str | None = None
    action: str | None = None
    """The action named by RFC 9396 ``authorization_details`` (type ``urn:freshid:action``)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def freshness(
        self, client_default_max_age: int | None, proved_events: frozenset[str] = frozenset()
    ) -> AuthRequest:
        return AuthRequest(
            proved_events=proved_events,
            prompt=frozenset(self.prompt),
            max_age=self.max_age,
            acr_values=self.acr_values,
            essential_acr=self.essential_acr,
            hint_subject=self.hint_subject,
            client_default_max_age=client_default_max_age,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthorizationRequest:
        data = dict(data)
        for name in ("prompt", "acr_values", "essential_acr"):
            data[name] = tuple(data.get(name) or ())
        return cls(**data)
