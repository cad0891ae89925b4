"""The Example CRM's API client: the shared ApiClient, every request signed with the account's secret.

Signing (../API.md): `X-Api-Key` is the key; `X-Signature` is the hex HMAC-SHA256, keyed with the
secret, of `METHOD\\n<target as sent>\\n<raw body>`. It is computed on the prepared request (what
really goes on the wire), so the query string's encoding and a retried body sign alike."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping

import requests
from requests.auth import AuthBase

from hub.connectors.base import ApiClient
from hub.errors import Fatal


class Signer(AuthBase):
    def __init__(self, api_key: str, api_secret: str):
        self.api_key = api_key
        self._secret = api_secret.encode()

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        message = prepared.method.upper().encode() + b"\n" + prepared.path_url.encode() + b"\n" + body
        prepared.headers["X-Api-Key"] = self.api_key
        prepared.headers["X-Signature"] = hmac.new(self._secret, message, hashlib.sha256).hexdigest()
        return prepared

    def __repr__(self) -> str:  # the secret never shows in a log line or a traceback's locals
        return f"Signer(api_key={self.api_key!r})"


def credentials_of(credentials: Any) -> tuple[str, str]:
    """(key, secret) from what the hub keeps for an API-key connection (a mapping or an object)."""
    get = credentials.get if isinstance(credentials, Mapping) else (lambda k: getattr(credentials, k, None))
    key, secret = get("api_key"), get("api_secret")
    if not key or not secret:
        raise Fatal("example: the connection has no API key and secret", 401)
    return str(key), str(secret)


class ExampleClient(ApiClient):
    provider = "example"

    def __init__(self, api_base: str, credentials: Any, *, session: requests.Session | None = None, **options):
        # A session of its own signs every request; a given one lends only its transport (adapters).
        http = requests.Session()
        if session is not None:
            http.adapters = session.adapters
        http.auth = Signer(*credentials_of(credentials))
        super().__init__(api_base, None, session=http, **options)

    def error_message(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return (response.text or response.reason or "")[:300]
        if isinstance(body, dict) and isinstance(body.get("message"), str):
            return body["message"][:300]
        return str(body)[:300]

    # -- reads ------------------------------------------------------------------------------------
    def me(self) -> dict:
        return self.json("GET", "api/v1/me")

    def users(self) -> list[dict]:
        return self.json("GET", "api/v1/users")["items"]

    def stages(self) -> list[dict]:
        return self.json("GET", "api/v1/stages")["items"]

    def deals(self, limit: int = 20) -> list[dict]:
        return self.json("GET", "api/v1/deals", params={"limit": max(1, min(int(limit), 100))})["items"]

    def deal(self, deal_id: Any) -> dict:
        return self.json("GET", "api/v1/deals/{deal_id}", path_params={"deal_id": deal_id})

    # -- tasks ------------------------------------------------------------------------------------
    def create_task(self, body: dict) -> tuple[dict | None, int | None]:
        """(task, None) when made; (None, id of the holder) when the external id is taken."""
        response = self.request("POST", "api/v1/tasks", json=body, ok=(409,))
        payload = response.json()
        if response.status_code == 409:
            return None, payload.get("task_id")
        return payload, None

    def task_by_external(self, external_id: str) -> dict | None:
        items = self.json("GET", "api/v1/tasks", params={"external_id": external_id})["items"]
        return items[0] if items else None

    def task(self, task_id: Any) -> dict:
        return self.json("GET", "api/v1/tasks/{task_id}", path_params={"task_id": task_id})

    def complete_task(self, task_id: Any) -> dict:
        return self.json("POST", "api/v1/tasks/{task_id}/complete", path_params={"task_id": task_id})

    # -- webhooks ---------------------------------------------------------------------------------
    def subscribe(self, url: str, secret: str | None, events: list[str] | None = None) -> dict:
        body: dict[str, Any] = {"url": url}
        if secret:
            body["secret"] = secret
        if events:
            body["events"] = events
        return self.json("POST", "api/v1/webhooks", json=body)

    def webhooks(self) -> list[dict]:
        return self.json("GET", "api/v1/webhooks")["items"]

    def unsubscribe(self, webhook_id: Any) -> None:
        self.request("DELETE", "api/v1/webhooks/{webhook_id}", path_params={"webhook_id": webhook_id}, ok=(404,))
