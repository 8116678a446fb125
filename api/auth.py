"""Who may call what: bearer API keys with scopes (read, ingest, admin).

Authentication fails closed. Open mode (every call allowed without a key) is decided
once, when the process starts (``triage.service.Runtime.check_api_exposure``): only when
no API key has ever been created (revoked keys count) and the API listens on loopback.
Nothing opens the API after that. Open mode ends for good the moment any key exists, one
created by ``triage keys create`` in another process included: while open, the gate asks
the store on every request. Once closed, revoking every key leaves it closed (every call
needing a key gets 401 until a new key is created).

Tokens are looked up in the store on every call and nothing caches them, so a revoked
token is refused from its next request on. A store that cannot be asked means 503, never
"open".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Header, HTTPException, Request

from triage.store.api_keys import ApiKey, ApiKeyStore, Scope

log = logging.getLogger(__name__)

STORE_RETRY_AFTER_S = 5


class KeyGate:
    """Whether calls need a key. ``open_mode`` is the start-up decision; it can only end."""

    def __init__(self, keys: ApiKeyStore, *, open_mode: bool) -> None:
        self.keys = keys
        self._open = open_mode
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        if not self._open:
            return False
        # Asked on every request while open (one indexed row read, and open mode is a
        # loopback-only development set-up), so that the first key created anywhere
        # closes the API at this process's next request, not some seconds later.
        if self.keys.any_created():
            with self._lock:
                if self._open:
                    self._open = False
                    log.warning("an API key now exists: the API needs keys from now on, for good")
            return False
        return True


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    kind, _, token = authorization.partition(" ")
    return token.strip() if kind.lower() == "bearer" and token.strip() else None


def store_unavailable() -> HTTPException:
    return HTTPException(503, "API keys cannot be checked now (the store does not answer); retry",
                         headers={"Retry-After": str(STORE_RETRY_AFTER_S)})


def authorize(request: Request, scope: Scope, token: str | None) -> ApiKey | None:
    """The key the call is made with (None in open mode); 401/403 otherwise. Blocking (it
    reads the store): call it from a worker thread, never on the event loop."""
    gate: KeyGate = request.app.state.key_gate
    try:
        if gate.is_open():
            return None
        key = gate.keys.authenticate(token) if token is not None else None
    except sa.exc.SQLAlchemyError:
        raise store_unavailable() from None
    if token is None:
        raise HTTPException(401, "an API key is required: Authorization: Bearer <key>",
                            headers={"WWW-Authenticate": "Bearer"})
    if key is None:
        raise HTTPException(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if not key.allows(scope):
        raise HTTPException(403, f"this key lacks the {scope.value!r} scope")
    return key


def may_read(request: Request, token: str | None) -> bool:
    """Would a call needing ``read`` be allowed? For routes open to anyone that say more
    to those who may read (``/readyz``'s reasons). Never raises: in doubt, no."""
    try:
        authorize(request, Scope.read, token)
    except HTTPException:
        return False
    return True


def require(scope: Scope) -> Callable[..., ApiKey | None]:
    # A plain ``def``: FastAPI runs it in a worker thread, off the event loop.
    def dependency(request: Request,
                   authorization: Annotated[str | None, Header()] = None) -> ApiKey | None:
        return authorize(request, scope, bearer_token(authorization))

    dependency.__name__ = f"require_{scope.value}"
    return dependency


ReadAccess = Annotated[ApiKey | None, Depends(require(Scope.read))]
IngestAccess = Annotated[ApiKey | None, Depends(require(Scope.ingest))]
AdminAccess = Annotated[ApiKey | None, Depends(require(Scope.admin))]
