"""Python's handle on ``node/rp.mjs``: panva's openid-client, an OpenID-certified relying party.

One Node process serves a whole test session; each call writes one JSON command line and reads one
JSON answer line. :class:`CertifiedRP` is one registered client as openid-client sees it: discovery,
authorization URLs with PKCE S256, a nonce and a state, the callback (openid-client validates the
authorization response, RFC 9207 ``iss`` included, redeems the code and validates the ID token),
refresh, userinfo, introspection, revocation and the end-session URL.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NODE_DIR = Path(__file__).parent / "node"
SCRIPT = NODE_DIR / "rp.mjs"
_TIMEOUT = 30.0


class NodeUnavailable(RuntimeError):
    """``node`` or the npm dependencies are missing (``npm ci --prefix tests/conformance/node``)."""


@dataclass(eq=False)
class Refused(Exception):
    """openid-client refused: a check of its own failed, or the provider answered with an error."""

    name: str
    code: str | None
    error: str | None
    error_description: str | None
    status: int | None
    message: str
    cause: Any = None

    def __str__(self) -> str:
        return f"{self.name}({self.code or self.error}): {self.message} {self.cause or ''}"


class NodeRP:
    """The long-lived ``node rp.mjs`` process."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise NodeUnavailable("node is not installed")
        if not (NODE_DIR / "node_modules" / "openid-client").is_dir():
            raise NodeUnavailable("run: npm ci --prefix tests/conformance/node")
        self._proc = subprocess.Popen(
            [node, str(SCRIPT)],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "NODE_NO_WARNINGS": "1"},
        )

    def call(self, command: str, client: dict[str, Any], **args: Any) -> dict[str, Any]:
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"command": command, "client": client, **args}) + "\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], _TIMEOUT)
        if not ready:
            raise TimeoutError(f"openid-client did not answer {command} in {_TIMEOUT} s")
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"openid-client exited ({proc.poll()}) during {command}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@dataclass(frozen=True)
class AuthURL:
    url: str
    code_verifier: str | None
    nonce: str | None
    state: str | None


@dataclass(frozen=True)
class TokenSet:
    tokens: dict[str, Any]
    claims: dict[str, Any]
    """The ID token's claims, after openid-client validated it."""

    @property
    def access_token(self) -> str:
        return str(self.tokens["access_token"])

    @property
    def refresh_token(self) -> str:
        return str(self.tokens["refresh_token"])

    @property
    def id_token(self) -> str:
        return str(self.tokens["id_token"])


@dataclass
class CertifiedRP:
    node: NodeRP
    issuer: str
    client_id: str
    client_secret: str | None
    redirect_uri: str
    auth: str = "basic"

    @property
    def client(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "auth": self.auth,
        }

    def _call(self, command: str, **args: Any) -> dict[str, Any]:
        answer = self.node.call(command, self.client, **args)
        if not answer.pop("ok"):
            raise Refused(
                answer["name"],
                answer.get("code"),
                answer.get("error"),
                answer.get("error_description"),
                answer.get("status"),
                answer["message"],
                answer.get("cause"),
            )
        return answer

    def discover(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self._call("discover")["metadata"]
        return metadata

    def authorization_url(
        self,
        *,
        scope: str = "openid",
        pkce: bool = True,
        nonce: bool = True,
        state: bool = True,
        redirect_uri: str | None = "",
        **params: str,
    ) -> AuthURL:
        """An authorization request URL built by openid-client; ``redirect_uri=None`` leaves the
        parameter out, ``""`` (the default) uses the client's own."""
        args: dict[str, Any] = {"scope": scope, "pkce": pkce, "nonce": nonce, "state": state}
        if redirect_uri is not None:
            args["redirect_uri"] = redirect_uri or self.redirect_uri
        a = self._call("authorize", params=params, **args)
        return AuthURL(a["url"], a.get("code_verifier"), a.get("nonce"), a.get("state"))

    def callback(
        self,
        request: AuthURL,
        callback_url: str,
        *,
        max_age: int | None = None,
        **overrides: Any,
    ) -> TokenSet:
        """openid-client handles the redirect: response checks, code redemption, ID token."""
        checks: dict[str, Any] = {
            "code_verifier": request.code_verifier,
            "state": request.state,
            "nonce": request.nonce,
            "max_age": max_age,
            **overrides,
        }
        answer = self._call("callback", url=callback_url, **checks)
        return TokenSet(answer["tokens"], answer["claims"])

    def refresh(self, refresh_token: str, **params: str) -> TokenSet:
        answer = self._call("refresh", refresh_token=refresh_token, params=params or None)
        return TokenSet(answer["tokens"], answer["claims"] or {})

    def userinfo(
        self, access_token: str, *, sub: str | None = None, method: str = "GET"
    ) -> tuple[int, Any]:
        answer = self._call("userinfo", access_token=access_token, sub=sub, method=method)
        return int(answer["status"]), answer["body"]

    def introspect(self, token: str) -> dict[str, Any]:
        body: dict[str, Any] = self._call("introspect", token=token)["body"]
        return body

    def revoke(self, token: str) -> None:
        self._call("revoke", token=token)

    def end_session_url(self, **params: str) -> str:
        return str(self._call("end_session", params=params)["url"])
