"""Reading request parameters strictly (RFC 6749 §3.1: parameters must not repeat; §5.2: errors).

Query strings and ``application/x-www-form-urlencoded`` bodies are decoded as UTF-8 strictly;
control characters, oversized values and repeated names are refused with ``invalid_request``
before any of them reaches protocol logic.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.requests import Request

from freshid.errors import InvalidRequest

MAX_BODY = 64 * 1024
MAX_VALUE = 8 * 1024
MAX_PARAMS = 64
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
FORM_TYPE = "application/x-www-form-urlencoded"


class Params(dict[str, str]):
    """Single-valued parameters; ``get`` returns None for absent and empty values alike."""

    def value(self, name: str) -> str | None:
        v = self.get(name)
        return v if v else None


def parse(raw: bytes) -> Params:
    if len(raw) > MAX_BODY:
        raise InvalidRequest("request too large")
    try:
        pairs = parse_qsl(
            raw.decode("ascii"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_PARAMS,
        )
    except UnicodeDecodeError:
        raise InvalidRequest("parameters must be UTF-8") from None
    except ValueError:
        raise InvalidRequest("too many parameters") from None
    out = Params()
    for name, value in pairs:
        if name in out:
            raise InvalidRequest(f"parameter {_safe_name(name)} is repeated")
        if len(value) > MAX_VALUE or len(name) > 128:
            raise InvalidRequest(f"parameter {_safe_name(name)} is too long")
        if _CONTROL.search(name) or _CONTROL.search(value):
            raise InvalidRequest(f"parameter {_safe_name(name)} contains control characters")
        out[name] = value
    return out


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "?", name)[:40]
    return cleaned or "?"


def query(request: Request) -> Params:
    return parse(request.scope.get("query_string", b""))


async def form(request: Request) -> Params:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != FORM_TYPE:
        raise InvalidRequest(f"content type must be {FORM_TYPE}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise InvalidRequest("request too large")
    return parse(body)
