"""Livespace's API client: every call fetches a one-shot token and session first, then sends the
method's parameters signed with them, and reads the answer's result code (the HTTP status is 200
whatever happened).

The signature (FACTS §1): `_api_sha = SHA1(key + token + secret)` hex, sent with `_api_auth=key`,
`_api_key` and `_api_session`, inside the `data` JSON form field together with the parameters
(the placement observed to work). A session serves ONE call and lives 15 minutes, so each attempt
of a call (a retry inside the client included) fetches its own.

`sign` is the connector's `ApiKey.sign`: the only place the key and secret are used. The client
hands it the token and session of the attempt in two hub-internal headers it removes before the
request leaves; the token call itself gets only the key.

Result codes (FACTS §2): 200 ok; 420 validation -> Fatal naming the field; 540 no permission and
400/514/515/516/550 -> Fatal (they will not change by retrying; 550 is also what a missing or
invisible id answers); 500/520 general and database errors -> Retriable; 530 and 560-564 (not
logged in, auth method errors) -> NeedsReauth: the key no longer works. HTTP 429/5xx are transport
errors (the shared policy, Retry-After honoured).

Writes are not idempotent and their echo is not trustworthy: `write()` never retries a request
that may have arrived (the shared policy retries a POST only when nothing was sent or it was
throttled), and callers re-read what they wrote."""
from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from hub.connectors.base import ApiClient
from hub.errors import Fatal, Retriable

TOKEN_HEADER = "X-Relay-Api-Token"       # hub-internal: removed by `sign`, never sent
SESSION_HEADER = "X-Relay-Api-Session"
CALL = "api/public/json/{module}/{method}"
TOKEN_CALL = "api/public/json/{module}/{call}/{method_key}/{method}"
TOKEN_PARAMS = {"module": "_Api", "call": "auth_call", "method_key": "_api_method", "method": "getToken"}
REAUTH = frozenset({530, 560, 561, 562, 563, 564})
RETRIABLE = frozenset({500, 520})


def api_sha(key: str, token: str, secret: str) -> str:
    return hashlib.sha1((key + token + secret).encode()).hexdigest()


def _set_form(prepared: requests.PreparedRequest, pairs: list[tuple[str, str]]) -> None:
    body = urlencode(pairs).encode()
    prepared.body = body
    prepared.headers["Content-Type"] = "application/x-www-form-urlencoded"
    prepared.headers["Content-Length"] = str(len(body))


def _form(prepared: requests.PreparedRequest) -> list[tuple[str, str]]:
    body = prepared.body or b""
    if isinstance(body, bytes):
        body = body.decode()
    return parse_qsl(body, keep_blank_values=True)


def sign(prepared: requests.PreparedRequest, key: str, secret: str) -> requests.PreparedRequest:
    token = prepared.headers.pop(TOKEN_HEADER, None)
    session = prepared.headers.pop(SESSION_HEADER, None)
    pairs = [(k, v) for k, v in _form(prepared) if k not in ("_api_auth", "_api_key", "_api_sha", "_api_session")]
    if urlsplit(prepared.url).path.endswith("/_Api/auth_call/_api_method/getToken"):
        _set_form(prepared, [*pairs, ("_api_auth", "key"), ("_api_key", key)])
        return prepared
    if not token or not session:
        raise ValueError("livespace: a signed call needs the token and session of its attempt")
    data = json.loads(dict(pairs).get("data") or "{}")
    data.update({"_api_auth": "key", "_api_key": key, "_api_sha": api_sha(key, token, secret),
                 "_api_session": session})
    pairs = [(k, v) for k, v in pairs if k != "data"]
    _set_form(prepared, [*pairs, ("data", json.dumps(data, ensure_ascii=False, separators=(",", ":")))])
    return prepared


def error_text(error: Any) -> tuple[str | None, str]:
    """(the field an error names, a message) from whatever shape `error` has."""
    if isinstance(error, dict) and error:
        field, message = next(iter(error.items()))
        if isinstance(message, list):
            message = "; ".join(map(str, message))
        return str(field), str(message)[:300]
    if isinstance(error, list) and error:
        return error_text(error[0]) if isinstance(error[0], dict) else (None, "; ".join(map(str, error))[:300])
    return None, (str(error) if error not in (None, "") else "no message")[:300]


class LivespaceClient(ApiClient):
    """Made by the core as `LivespaceClient(api_base, None, authenticator=...)`."""

    provider = "livespace"

    def __init__(self, base_url: str, tokens: Any = None, **options: Any):
        options.setdefault("rate_limit", 6.0)   # not published; two requests per call
        super().__init__(base_url, tokens, **options)

    def error_message(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return (response.text or response.reason or "")[:300]
        if isinstance(body, dict) and "error" in body:
            return error_text(body["error"])[1]
        return str(body)[:300]

    # -- one call ---------------------------------------------------------------------------------
    def _envelope(self, response: requests.Response, what: str) -> Any:
        response = self.check(response)
        try:
            body = response.json()
        except ValueError:
            raise Retriable(f"livespace {what}: the answer is not JSON") from None
        if not isinstance(body, dict) or "result" not in body:
            raise Retriable(f"livespace {what}: the answer has no result code")
        try:
            result = int(body["result"])
        except (TypeError, ValueError):
            raise Retriable(f"livespace {what}: result {body['result']!r} is not a code") from None
        if result == 200:
            return body.get("data")
        field, message = error_text(body.get("error"))
        if result == 420:
            named = f"{field}: {message}" if field else message
            raise Fatal(f"livespace {what}: invalid {named}", 422)
        if result in REAUTH:
            raise self.key_refused(f"result {result}: {message}")
        if result in RETRIABLE:
            raise Retriable(f"livespace {what}: result {result}: {message}")
        status = 403 if result == 540 else 404 if result == 550 else 400
        raise Fatal(f"livespace {what}: result {result}: {message}", status)

    def _session(self) -> tuple[str, str]:
        url = self.url(TOKEN_CALL, TOKEN_PARAMS)
        response = self._raw("POST", url, None, None, {"_api_auth": "key"}, None, {}, False, None)
        data = self._envelope(response, "getToken")
        if not isinstance(data, dict) or not data.get("token") or not data.get("session_id"):
            raise Retriable("livespace getToken: no token or session in the answer")
        return str(data["token"]), str(data["session_id"])

    def call(self, module: str, method: str, params: dict | None = None) -> Any:
        """One API method with a fresh session per attempt; its `data`."""
        url = self.url(CALL, {"module": module, "method": method})
        form = {"data": json.dumps(params or {}, ensure_ascii=False, separators=(",", ":"))}
        what = f"{module}/{method}"

        def attempt() -> Any:
            if self.limiter:
                self.limiter.acquire()
            token, session = self._session()
            response = self._raw("POST", url, None, None, form, None,
                                 {TOKEN_HEADER: token, SESSION_HEADER: session}, False, None)
            return self._envelope(response, what)

        return self._call("POST", attempt)

    # -- reads ------------------------------------------------------------------------------------
    @staticmethod
    def _one(data: Any, key: str) -> dict:
        value = data.get(key) if isinstance(data, dict) and key in data else data
        if not isinstance(value, dict):
            raise Retriable(f"livespace: the answer has no {key}")
        return value

    @staticmethod
    def _many(data: Any, key: str) -> list[dict]:
        value = data.get(key) if isinstance(data, dict) else data
        if value is None:
            return []
        if isinstance(value, dict):
            value = list(value.values())
        if not isinstance(value, list):
            raise Retriable(f"livespace: the answer has no list of {key}")
        return [v for v in value if isinstance(v, dict)]

    def me(self) -> dict:
        return self._one(self.call("Default", "User_getInfo"), "user")

    def users(self) -> list[dict]:
        return self._many(self.call("Default", "User_getAll"), "user")

    def processes(self) -> list[dict]:
        return self._many(self.call("Deal", "getProcesses"), "process")

    def todo_types(self) -> list[dict]:
        return self._many(self.call("Todo", "getTypes"), "type")

    def deal(self, deal_id: str) -> dict:
        return self._one(self.call("Deal", "get", {"id": deal_id}), "deal")

    def deals(self, limit: int = 20, offset: int = 0, **conditions: Any) -> list[dict]:
        conditions = conditions or {"status": "open"}
        params = {**conditions, "limit": limit, **({"offset": offset} if offset else {})}
        return self._many(self.call("Deal", "getAll", params), "deal")

    def contact(self, kind: str, object_id: str) -> dict:
        key = "company" if kind == "company" else "contact"
        return self._one(self.call("Contact", "get", {"type": key, "id": object_id}), key)

    def contacts(self, kind: str, limit: int = 20) -> list[dict]:
        key = "company" if kind == "company" else "contact"
        return self._many(self.call("Contact", "getAll", {"type": key, "limit": limit}), key)

    def todo(self, todo_id: str) -> dict:
        return self._one(self.call("Todo", "get", {"id": todo_id}), "todo")

    def todos(self, limit: int = 50, **filters: Any) -> list[dict]:
        return self._many(self.call("Todo", "getAll", {**filters, "limit": limit}), "todo")

    # -- writes (never retried once they may have arrived; re-read by the caller) ------------------
    def add_todo(self, todo: dict) -> str | None:
        """The new todo's id from the echo (nothing else in it is trusted), or None."""
        echo = self.call("Todo", "addTodo", {"todo": todo})
        made = echo.get("todo") if isinstance(echo, dict) else None
        ident = made.get("id") if isinstance(made, dict) else None
        return str(ident) if ident not in (None, "") else None

    def edit_todo(self, todo: dict) -> None:
        self.call("Todo", "editTodo", {"todo": todo})
