"""Settings: `config/hub.toml` defaults, then an optional TOML file (HUB_CONFIG), then `HUB_*`
environment variables, then the `overrides` a caller passes (tests).

Each connector has a section of its own, named after it and derived from the registry: what its
kind of auth needs (`origin`; `client_id` and `client_secret` for OAuth 2.0), then the defaults
of its `CONNECTOR.settings`. So `HUB_<NAME>_CLIENT_ID` exists exactly for the connectors there are.

Every value is checked against the type of its default, so a typo fails at start with one line
naming the setting instead of surfacing later as a strange runtime error."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

import click

DEFAULTS_FILE = Path(__file__).resolve().parents[2] / "config" / "hub.toml"


class ConfigError(click.ClickException):
    """Invalid configuration; the message is one line that names the setting (a ClickException, so
    `flask --app hub ...` prints just that line and exits non-zero)."""


def _env_name(section: str, key: str) -> str:
    return f"HUB_{key.upper()}" if section == "hub" else f"HUB_{section.upper()}_{key.upper()}"


def _coerce(name: str, default: Any, value: Any) -> Any:
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if isinstance(default, int):
        try:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
        except ValueError:
            raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected a number, got {value!r}") from None
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected text, got {value!r}")
        return value
    return value


def _load_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"HUB_CONFIG: file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"HUB_CONFIG: {path} is not valid TOML: {exc}") from None


def connector_sections() -> dict[str, dict[str, Any]]:
    """Each connector's settings section with its defaults (see the module's docstring)."""
    from .. import connectors
    from ..connectors.contract.auth import OAuth2

    sections: dict[str, dict[str, Any]] = {}
    for connector in connectors.connectors():
        table: dict[str, Any] = {"origin": ""}
        if isinstance(connector.auth, OAuth2):
            table.update(client_id="", client_secret="")
        table.update(connector.settings)
        sections[connector.name] = table
    return sections


class Settings:
    """Flat, validated settings: `settings["jobs.max_attempts"]` or `settings.jobs_max_attempts`."""

    def __init__(self, values: dict[str, Any]):
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, name: str) -> Any:
        for key, value in self._values.items():
            if key.replace(".", "_") == name or (key.startswith("hub.") and key[4:] == name):
                return value
        raise AttributeError(name)

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    defaults = _load_toml(DEFAULTS_FILE)
    layers: list[tuple[str, dict]] = []
    if environ.get("HUB_CONFIG"):
        layers.append(("HUB_CONFIG", _load_toml(Path(environ["HUB_CONFIG"]))))

    for name, table in connector_sections().items():
        if name in defaults:
            raise ConfigError(f"connector {name}: its settings section would replace the hub's [{name}]")
        defaults[name] = table
    values: dict[str, Any] = {}
    for section, table in defaults.items():
        for key, default in table.items():
            values[f"{section}.{key}"] = default
    known = dict(values)

    for origin, data in layers:
        for section, table in data.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{origin}: [{section}] must be a table")
            for key, value in table.items():
                full = f"{section}.{key}"
                if full not in known:
                    raise ConfigError(f"{origin}: unknown setting {section}.{key}")
                values[full] = _coerce(f"{section}.{key}", known[full], value)

    env_map = {_env_name(*k.split(".", 1)): k for k in known}
    for name, value in environ.items():
        if name in env_map:
            values[env_map[name]] = _coerce(name, known[env_map[name]], value)

    for key, value in (overrides or {}).items():
        full = key if "." in key else f"hub.{key}"
        if full not in known:
            raise ConfigError(f"unknown setting {key}")
        values[full] = _coerce(full, known[full], value)

    _validate(values)
    return Settings(values)


def _validate(v: dict[str, Any]) -> None:
    def positive(key: str) -> None:
        if v[key] <= 0:
            raise ConfigError(f"{_env_name(*key.split('.', 1))}: must be greater than 0, got {v[key]!r}")

    for key in ("jobs.max_attempts", "jobs.backoff_base", "jobs.backoff_cap", "jobs.lease_seconds",
                "jobs.poll_interval", "jobs.concurrency", "jobs.batch_size", "hub.port",
                "scheduler.leader_retry_seconds", "scheduler.heartbeat_stale_seconds",
                "rules.render_seconds", "rules.render_memory_mb", "rules.output_max_chars",
                "calls.connect_timeout", "calls.read_timeout", "calls.failed_calls_per_effect"):
        positive(key)
    for key in ("calls.inline_retries", "calls.inline_max_wait", "calls.connect_pause"):
        if v[key] < 0:
            raise ConfigError(f"{_env_name(*key.split('.', 1))}: must be 0 or more, got {v[key]!r}")
    if v["hub.port"] > 65535:
        raise ConfigError(f"HUB_PORT: must be a TCP port (1-65535), got {v['hub.port']}")
    if v["mail.backend"] not in ("log", "smtp"):
        raise ConfigError(f"HUB_MAIL_BACKEND: expected 'log' or 'smtp', got {v['mail.backend']!r}")
    if v["hub.log_format"] not in ("text", "json"):
        raise ConfigError(f"HUB_LOG_FORMAT: expected 'text' or 'json', got {v['hub.log_format']!r}")
    if v["hub.log_level"].upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"HUB_LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {v['hub.log_level']!r}")
    url = v["hub.database_url"]
    if url and not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise ConfigError(f"HUB_DATABASE_URL: expected a sqlite:/// or postgresql+psycopg:// URL, got {url.split(':', 1)[0]}:...")
    base = v["hub.base_url"]
    if base and not (base.startswith("http://") or base.startswith("https://")):
        raise ConfigError(f"HUB_BASE_URL: expected an http(s):// URL, got {base!r}")
