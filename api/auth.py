"""Who may call what: bearer API keys with scopes (read, ingest, admin).

With no active key the API is open, and the process refuses to listen anywhere but
loopback (see ``triage.service``); once a key exists every call needs one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from triage.store.keys import ApiKey, ApiKeyStore, Scope

_OPEN_CHECK_SECONDS = 5.0


class KeyGate:
    """Caches "are there any keys?" for a few seconds: it is asked on every request."""

    def __init__(self, keys: ApiKeyStore) -> None:
        self.keys = keys
        self._open: tuple[float, bool] | None = None

    def is_open(self) -> bool:
        now = time.monotonic()
        if self._open is None or now - self._open[0] > _OPEN_CHECK_SECONDS:
            self._open = (now, not self.keys.any_active())
        return self._open[1]

    def forget(self) -> None:
        self._open = None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    kind, _, token = authorization.partition(" ")
    return token.strip() if kind.lower() == "bearer" and token.strip() else None


def authorize(request: Request, scope: Scope, token: str | None) -> ApiKey | None:
    gate: KeyGate = request.app.state.key_gate
    if gate.is_open():
        return None
    if token is None:
        raise HTTPException(401, "an API key is required: Authorization: Bearer <key>",
                            headers={"WWW-Authenticate": "Bearer"})
    key = gate.keys.authenticate(token)
    if key is None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if not key.allows(scope):
        raise HTTPException(403, f"this key lacks the {scope.value!r} scope")
    return key


def require(scope: Scope) -> Callable[..., ApiKey | None]:
    def dependency(request: Request,
                   authorization: Annotated[str | None, Header()] = None) -> ApiKey | None:
        return authorize(request, scope, bearer_token(authorization))

    dependency.__name__ = f"require_{scope.value}"
    return dependency


ReadAccess = Annotated[ApiKey | None, Depends(require(Scope.read))]
IngestAccess = Annotated[ApiKey | None, Depends(require(Scope.ingest))]
AdminAccess = Annotated[ApiKey | None, Depends(require(Scope.admin))]
