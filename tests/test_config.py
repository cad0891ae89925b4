"""Settings: defaults, environment, file; a bad value fails at start with one line naming it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hub.config import ConfigError, load_settings
from tests.conftest import REPO


def test_defaults_and_environment_overrides():
    settings = load_settings(environ={"HUB_JOBS_MAX_ATTEMPTS": "3", "HUB_EMBEDDED": "false", "HUB_PORT": "9000"})
    assert settings["jobs.max_attempts"] == 3
    assert settings["hub.embedded"] is False
    assert settings["hub.port"] == 9000
    assert settings["jobs.backoff_cap"] == 600.0


@pytest.mark.parametrize("env, message", [
    ({"HUB_JOBS_MAX_ATTEMPTS": "many"}, "HUB_JOBS_MAX_ATTEMPTS: expected a whole number, got 'many'"),
    ({"HUB_JOBS_MAX_ATTEMPTS": "0"}, "HUB_JOBS_MAX_ATTEMPTS: must be greater than 0"),
    ({"HUB_EMBEDDED": "maybe"}, "HUB_EMBEDDED: expected true or false"),
    ({"HUB_JOBS_BACKOFF_BASE": "fast"}, "HUB_JOBS_BACKOFF_BASE: expected a number"),
    ({"HUB_PORT": "70000"}, "HUB_PORT: must be a TCP port"),
    ({"HUB_LOG_FORMAT": "xml"}, "HUB_LOG_FORMAT: expected 'text' or 'json'"),
    ({"HUB_DATABASE_URL": "mysql://x/y"}, "HUB_DATABASE_URL: expected a sqlite:/// or postgresql+psycopg:// URL"),
    ({"HUB_BASE_URL": "hub.example"}, "HUB_BASE_URL: expected an http(s):// URL"),
])
def test_invalid_values_name_the_setting(env, message):
    with pytest.raises(ConfigError) as info:
        load_settings(environ=env)
    assert message in str(info.value)


def test_config_file_layer_and_unknown_keys(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text("[jobs]\nconcurrency = 9\n")
    assert load_settings(environ={"HUB_CONFIG": str(path)})["jobs.concurrency"] == 9
    path.write_text("[jobs]\nconcurency = 9\n")
    with pytest.raises(ConfigError, match="unknown setting jobs.concurency"):
        load_settings(environ={"HUB_CONFIG": str(path)})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(environ={"HUB_CONFIG": str(tmp_path / "missing.toml")})


def test_cli_prints_one_clear_line_and_fails(tmp_path):
    env = dict(os.environ, HUB_JOBS_CONCURRENCY="lots", HUB_INSTANCE_PATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "hub", "jobs", "stats"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip() == "Error: HUB_JOBS_CONCURRENCY: expected a whole number, got 'lots'"


@pytest.mark.parametrize("freeze", [True, False])
def test_a_serving_process_freezes_what_it_loaded_out_of_the_collectors_reach(tmp_path, freeze):
    """A full collection would otherwise walk the whole loaded hub (the ingest's p99 showed the
    pauses); tests build many apps in one process and leave it off."""
    from cryptography.fernet import Fernet
    code = ("import gc, sys; from hub import create_app; "
            f"create_app({{'database_url': 'sqlite:///{tmp_path}/h.db', 'instance_path': '{tmp_path}', "
            f"'secret_keys': '{Fernet.generate_key().decode()}', 'session_secret': 's', 'sandbox': False, "
            f"'embedded': False, 'freeze_heap': {freeze}}}); print(gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    frozen = int(out.stdout.split()[-1])
    assert (frozen > 10000) if freeze else (frozen == 0)
