"""Connections made with an API key (a connector whose auth is `ApiKey`): the form's values
checked, the key and secret kept encrypted like OAuth tokens, and the authenticator that signs
each request a client sends with them.

A key has no refresh: when the provider refuses it, the connection waits for its admin exactly as
an OAuth connection whose refresh was refused (hub/oauth/reconnect.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import connectors
from ..connectors.contract import Connector
from ..connectors.contract.auth import ApiKey, Identity
from ..errors import NeedsReauth
from ..logs import redactor
from ..store import Connection
from .flow import connector_origin
from .reconnect import mark_needs_reconnection

MAX_KEY_CHARS = 4096
MAX_ACCOUNT_CHARS = 500


class FormError(ValueError):
    """A form value that cannot be used; `field` names it (the page answers 400 with it)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class KeyForm:
    """What the person typed, checked for shape (the provider checks the rest)."""

    key: str
    secret: str
    account: str

    @classmethod
    def read(cls, auth: ApiKey, form: Any) -> "KeyForm":
        """From a request's form; FormError naming the first field that cannot be used."""
        def value(name: str, label: str | None, limit: int) -> str:
            raw = form.get(name)
            text = raw.strip() if isinstance(raw, str) else ""
            if label is None:
                return ""
            if not text:
                raise FormError(name, f"enter your {label}")
            if len(text) > limit:
                raise FormError(name, f"at most {limit} characters")
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
                raise FormError(name, "must be one line of text without control characters")
            return text

        return cls(key=value("key", auth.key_label, MAX_KEY_CHARS),
                   secret=value("secret", auth.secret_label, MAX_KEY_CHARS),
                   account=value("account", auth.account_label, MAX_ACCOUNT_CHARS))


def key_ref(connection_id: int) -> str:
    return f"connection:{connection_id}:api_key"


def secret_ref(connection_id: int) -> str:
    return f"connection:{connection_id}:api_secret"


def fresh_keys(services: Any) -> dict[int, tuple[str, str]]:
    """Per hub process: connection id -> (key, secret), so a signed call costs no read and decryption."""
    return services.extras.setdefault("fresh_keys", {})


def store_key(services: Any, session, connection: Connection, key: str, secret: str) -> None:
    """Keep a key on the connection (inside the caller's transaction)."""
    fresh_keys(services).pop(connection.id, None)
    services.secrets.put(session, key_ref(connection.id), key)
    if secret:
        services.secrets.put(session, secret_ref(connection.id), secret)
    else:
        services.secrets.delete(session, secret_ref(connection.id))
    connection.token_expires_at = connection.refresh_due_at = None


def api_key_auth(services: Any, connector: Connector) -> ApiKey:
    """The connector's ApiKey with this hub's origin for it applied (the sandbox, when on)."""
    if not isinstance(connector.auth, ApiKey):
        raise KeyError(connector.name)
    return connector.auth.with_origin(connector_origin(services, connector.name))


class TypedKey:
    """Signs with the key the person has just typed, before any connection holds it."""

    def __init__(self, services: Any, auth: ApiKey, form: KeyForm):
        self.services = services    # the client's retry policy is this hub's
        self.auth = auth
        self.form = form

    def __call__(self, request):
        return self.auth.sign(request, self.form.key, self.form.secret)


class StoredKey:
    """The authenticator of one key connection (see hub.connectors.base.Authenticator)."""

    def __init__(self, services: Any, auth: ApiKey, connection_id: int):
        self.services = services
        self.auth = auth
        self.connection_id = connection_id

    def __call__(self, request):
        key, secret = self._credentials()
        return self.auth.sign(request, key, secret)

    def _credentials(self) -> tuple[str, str]:
        cached = fresh_keys(self.services).get(self.connection_id)
        if cached is not None:
            return cached
        with self.services.db.begin() as session:
            connection = session.get(Connection, self.connection_id)
            if connection is None or connection.status == "disconnected":
                raise NeedsReauth(f"connection {self.connection_id} is disconnected", self.connection_id)
            if connection.status == "needs_reconnection":
                raise NeedsReauth(f"{connection.provider} connection needs reconnection: {connection.status_reason}",
                                  self.connection_id)
            key = self.services.secrets.get(session, key_ref(self.connection_id))
            secret = self.services.secrets.get(session, secret_ref(self.connection_id)) or ""
        if not key:
            raise NeedsReauth(f"connection {self.connection_id} has no API key", self.connection_id)
        fresh_keys(self.services)[self.connection_id] = (key, secret)
        return key, secret

    def rejected(self, message: str) -> str:
        """Mark the connection (once) and return the provider's message without the key in it."""
        message = redactor.scrub(message)[:300]
        fresh_keys(self.services).pop(self.connection_id, None)
        with self.services.db.begin() as session:
            connection = session.get(Connection, self.connection_id)
            if connection is not None and connection.status == "connected":
                mark_needs_reconnection(self.services, session, connection,
                                        f"the provider refused the API key ({message}); enter a new one")
        return message


def check_key(services: Any, provider: str, form: Any) -> tuple[KeyForm, Identity, str]:
    """Read the form, ask the provider who the key belongs to (its identity hook, through a signed
    call) and return (the values, who, the API root). FormError for a value that cannot be used;
    the provider's refusal (NeedsReauth, Fatal) and silence (Retriable) pass through."""
    connector = connectors.connector(provider)
    auth = api_key_auth(services, connector)
    values = KeyForm.read(auth, form)
    for text in (values.key, values.secret):
        redactor.add(text)  # before the first call: whatever the provider echoes stays out of the logs
    try:
        api_base = auth.api_base(values.account)
    except ValueError as exc:
        raise FormError("account", str(exc)) from None
    hook = connector.identity or auth.identity
    if connector.client is None or hook is None:
        raise LookupError(f"{connector.title} cannot be connected with a key: its connector has no client or "
                          "identity hook")
    client = connector.client(api_base, None, authenticator=TypedKey(services, auth, values))
    who: Identity = hook(client)
    return values, who, (who.api_base or api_base).rstrip("/")
