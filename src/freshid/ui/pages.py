"""Rendering hosted pages. Templates are autoescaped; no page carries inline script or style, so
the Content-Security-Policy set by :mod:`freshid.web.security` can forbid both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)
STATIC_DIR = Path(__file__).parent / "static"


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(
        static_url="/static", product_name="FreshID", **context
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def error_page(
    title: str, description: str, error: str | None = None, status_code: int = 400
) -> HTMLResponse:
    return render(
        "error.html",
        status_code,
        title=title,
        description=description,
        error=error,
        status=status_code,
    )
