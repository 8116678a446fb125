"""Open mode (no key needed) is decided at start-up: only if no API key was ever created,
and then only on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from triage.service import ExposureError, Runtime, is_loopback
from triage.settings import Settings
from triage.store.api_keys import ApiKeyStore, Scope


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                           ("0.0.0.0", False), ("10.1.2.3", False), ("::", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_open_api_refuses_a_public_address_until_a_key_exists(tmp_path: Path) -> None:
    runtime = Runtime.build(Settings(database_url=f"sqlite:///{tmp_path / 'k.db'}", api_host="0.0.0.0"))
    try:
        with pytest.raises(ExposureError, match="triage keys create"):
            runtime.check_api_exposure()
        ApiKeyStore(runtime.store.engine).create("ops", {Scope.admin})
        runtime.check_api_exposure()  # now every call needs a key: any address will do
    finally:
        runtime.close()


def test_open_api_on_loopback_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runtime = Runtime.build(Settings(database_url=f"sqlite:///{tmp_path / 'k.db'}"))
    try:
        runtime.check_api_exposure()
    finally:
        runtime.close()
    assert "the API is open (no API key was ever created); listening on loopback only" in caplog.text


def test_revoked_keys_keep_the_api_closed_at_start_up(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Revoking every key never makes the API open: a revoked key still counts as one that
    existed, so a public address is allowed and every call will need a (new) key."""
    runtime = Runtime.build(Settings(database_url=f"sqlite:///{tmp_path / 'k.db'}", api_host="0.0.0.0"))
    try:
        keys = ApiKeyStore(runtime.store.engine)
        key, _ = keys.create("ops", {Scope.admin})
        keys.revoke(key.id)
        assert runtime.check_api_exposure() is False
    finally:
        runtime.close()
    assert "every API key is revoked" in caplog.text


def test_secrets_do_not_show_in_settings_repr() -> None:
    s = Settings(pagerduty_routing_key="R0UTING-KEY-123", page_webhook_secret="hush",
                 pagerduty_webhook_secrets="a,b")
    assert "R0UTING-KEY-123" not in repr(s) and "hush" not in repr(s) and s.pagerduty_secrets == ["a", "b"]
