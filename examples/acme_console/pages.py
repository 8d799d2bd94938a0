"""Server-rendered HTML: one Jinja environment, one way to render a page or an error.

Autoescaping is always on (error descriptions come from the provider) and undefined variables
fail loudly instead of rendering as blanks. Every signed-in page gets the header's navigation,
the sign-out form's CSRF token and the proof banner ("You proved it's you 3 min ago with a
password"), so the age of the proof is always in view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .errors import ConsoleError
from .session import AcmeSession, SignedInUser
from .wording import ago, proof_method, sentence, utc_text

__all__ = ["STATIC_DIR", "Pages", "ProofBanner"]

_HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"

NAVIGATION: tuple[tuple[str, str], ...] = (
    ("/", "Projects"),
    ("/billing", "Billing"),
    ("/activity", "Activity"),
    ("/account/delete", "Danger zone"),
)


def section_of(path: str) -> str | None:
    """The navigation entry a path belongs to (marked ``aria-current`` in the header)."""
    if path == "/" or path.startswith("/projects/"):
        return "/"
    return next((href for href, _ in NAVIGATION[1:] if path.startswith(href)), None)


@dataclass(frozen=True)
class ProofBanner:
    """How old the user's latest proof is, as the page says it."""

    age: str
    method: str
    when: str
    when_iso: str


def proof_banner(user: SignedInUser, now: float) -> ProofBanner | None:
    if user.auth_time is None:
        return None
    return ProofBanner(
        age=ago(int(now) - user.auth_time),
        method=proof_method(user.amr),
        when=utc_text(user.auth_time),
        when_iso=datetime.fromtimestamp(user.auth_time, tz=UTC).isoformat(),
    )


class Pages:
    """Renders templates with what every page needs (see the module docstring)."""

    def __init__(self, clock: Callable[[], float], provider_account_url: str) -> None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["sentence"] = sentence
        self._templates = Jinja2Templates(env=env)
        self._clock = clock
        self._provider_account_url = provider_account_url

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        signed_in: bool = True,
    ) -> Response:
        """Render ``name``. ``signed_in=False`` renders the page as for a signed-out visitor
        (the header then has no navigation, even if the cookie still names someone)."""
        session = AcmeSession(request.session)
        user = session.user() if signed_in else None
        full: dict[str, Any] = {
            "user": user,
            "csrf_token": session.csrf_token() if user is not None else "",
            "proof": proof_banner(user, self._clock()) if user is not None else None,
            "navigation": NAVIGATION,
            "section": section_of(request.url.path),
            "provider_account_url": self._provider_account_url,
            "notice": None,
        }
        full.update(context or {})
        return self._templates.TemplateResponse(request, name, full, status_code=status_code)

    def error(self, request: Request, error: ConsoleError) -> Response:
        """The error page: what happened, the provider's own words if any, and a way home."""
        problem = error.problem
        return self.render(
            request,
            "error.html",
            {"problem": problem, "code": error.code, "description": error.description},
            status_code=problem.status_code,
        )
