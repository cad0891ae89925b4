"""Secrets at rest: encrypted, rotatable, checked at start, never in logs or responses."""
from __future__ import annotations

import logging
import os
import stat

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from hub import create_app
from hub.config import ConfigError
from hub.secrets import KEY_FILE, SecretKeyError
from hub.store import Secret, migrate
from tests.conftest import TEST_KEY, hub_config


def test_secret_is_encrypted_at_rest_and_reads_back(make_hub):
    services = make_hub().extensions["hub"]
    with services.db.begin() as s:
        services.secrets.put(s, "conn:1:access_token", "tok-live-0123456789")
    with services.db.begin() as s:
        row = s.scalar(select(Secret).where(Secret.ref == "conn:1:access_token"))
        assert b"tok-live-0123456789" not in row.ciphertext
        assert services.secrets.get(s, "conn:1:access_token") == "tok-live-0123456789"
        services.secrets.put(s, "conn:1:access_token", "tok-live-second-value")
    with services.db.begin() as s:
        assert services.secrets.get(s, "conn:1:access_token") == "tok-live-second-value"
        assert services.secrets.delete_prefix(s, "conn:1:") == 1
        assert services.secrets.get(s, "conn:1:access_token") is None


def test_rotation_reencrypts_with_the_new_first_key(db_url, tmp_path):
    app = create_app(hub_config(db_url, tmp_path / "i"))
    services = app.extensions["hub"]
    migrate.upgrade(services.db.engine)
    services.secrets.verify(services.db)
    with services.db.begin() as s:
        services.secrets.put(s, "install:7:client_secret", "very-secret-value")
    new_key = Fernet.generate_key().decode()
    services.db.dispose()

    rotated = create_app(hub_config(db_url, tmp_path / "i", secret_keys=f"{new_key},{TEST_KEY}"))
    result = rotated.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 2 secret(s)" in result.output  # the canary and ours
    rotated.extensions["hub"].db.dispose()

    only_new = create_app(hub_config(db_url, tmp_path / "i", secret_keys=new_key))
    services = only_new.extensions["hub"]
    services.check_ready_to_run()
    with services.db.begin() as s:
        assert services.secrets.get(s, "install:7:client_secret") == "very-secret-value"
    services.db.dispose()


def test_wrong_key_is_a_clear_error_at_start(db_url, tmp_path):
    app = create_app(hub_config(db_url, tmp_path / "i"))
    migrate.upgrade(app.extensions["hub"].db.engine)
    app.extensions["hub"].check_ready_to_run()
    app.extensions["hub"].db.dispose()
    other = create_app(hub_config(db_url, tmp_path / "i", secret_keys=Fernet.generate_key().decode()))
    with pytest.raises(SecretKeyError, match="cannot be decrypted with HUB_SECRET_KEYS"):
        other.extensions["hub"].check_ready_to_run()
    other.extensions["hub"].db.dispose()


def test_bad_key_text_names_the_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"HUB_SECRET_KEYS: key #2 is not a Fernet key"):
        create_app(hub_config("sqlite://", tmp_path, secret_keys=f"{TEST_KEY},not-a-key"))


@pytest.mark.postgres
def test_postgres_requires_configured_keys(pg_url, tmp_path):
    with pytest.raises(ConfigError, match="HUB_SECRET_KEYS: required with PostgreSQL"):
        create_app(hub_config(pg_url, tmp_path, secret_keys=""))


def test_embedded_mode_generates_one_private_key_file(tmp_path):
    config = hub_config(f"sqlite:///{tmp_path / 'hub.db'}", tmp_path / "inst", secret_keys="", session_secret="")
    first = create_app(config)
    key_file = tmp_path / "inst" / KEY_FILE
    content = key_file.read_text()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    migrate.upgrade(first.extensions["hub"].db.engine)
    first.extensions["hub"].check_ready_to_run()
    second = create_app(config)
    assert key_file.read_text() == content
    second.extensions["hub"].check_ready_to_run()
    result = second.test_cli_runner().invoke(args=["secrets", "rotate", "--generate"])
    assert result.exit_code == 0, result.output
    keys = key_file.read_text().strip().split(",")
    assert len(keys) == 2 and keys[1] == content.strip()
    third = create_app(config)
    third.extensions["hub"].check_ready_to_run()


def test_secrets_and_credentials_never_reach_the_log(make_hub, caplog):
    services = make_hub().extensions["hub"]
    with services.db.begin() as s:
        services.secrets.put(s, "c:1:refresh", "rt-abcdef-0123456789")
    log = logging.getLogger("hub.test")
    with caplog.at_level(logging.INFO):
        log.info("refreshing with %s", "rt-abcdef-0123456789")
        log.info("sent headers {'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig'}")
        log.info("POST /oauth/token body grant_type=refresh_token&refresh_token=zzz-unknown-token-99&x=1")
        try:
            raise RuntimeError("token rt-abcdef-0123456789 refused")
        except RuntimeError:
            log.exception("refresh failed")
    text = caplog.text
    assert "rt-abcdef-0123456789" not in text
    assert "eyJhbGciOiJIUzI1NiJ9" not in text
    assert "zzz-unknown-token-99" not in text
    assert text.count("[REDACTED]") >= 4


def test_unexpected_errors_answer_without_details(make_hub):
    app = make_hub()

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret-ish detail sk_live_123456")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert b"sk_live" not in response.data and b"Traceback" not in response.data
