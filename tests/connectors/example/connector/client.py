"""The Example CRM's API client and its request signing (../API.md "Authentication").

`sign` is the connector's `ApiKey.sign`: `X-Api-Key` carries the key; `X-Signature` is the hex
HMAC-SHA256, keyed with the secret, of `METHOD\\n<target as sent>\\n<raw body>`. It runs on the
prepared request (what really goes on the wire, every retry afresh), so the query string's
encoding and the body's bytes are exactly what the CRM sees."""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

import requests

from hub.connectors.base import ApiClient


def sign(prepared: requests.PreparedRequest, key: str, secret: str) -> requests.PreparedRequest:
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    message = prepared.method.upper().encode() + b"\n" + prepared.path_url.encode() + b"\n" + body
    prepared.headers["X-Api-Key"] = key
    prepared.headers["X-Signature"] = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return prepared


class ExampleClient(ApiClient):
    """Made by the core as `ExampleClient(api_base, None, authenticator=...)` for an API-key connection."""

    provider = "example"

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

    def tasks(self, limit: int = 20) -> list[dict]:
        return self.json("GET", "api/v1/tasks", params={"limit": max(1, min(int(limit), 100))})["items"]

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
