"""Server-rendered HTML: one Jinja environment, one way to render a page or an error.

Autoescaping is always on (error descriptions come from the provider) and undefined variables
fail loudly in development instead of rendering as blanks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from .errors import ConsoleError
from .session import AcmeSession

__all__ = ["STATIC_DIR", "Pages"]

_HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = _HERE / "templates"
STATIC_DIR = _HERE / "static"


class Pages:
    """Renders templates with what every page needs: the user (for the header) and CSRF."""

    def __init__(self) -> None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self._templates = Jinja2Templates(env=env)

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
    ) -> Response:
        """Render ``name``; the sign-out form in the header needs the session's CSRF token."""
        session = AcmeSession(request.session)
        user = session.user()
        full: dict[str, Any] = {
            "user": user,
            "csrf_token": session.csrf_token() if user is not None else "",
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
