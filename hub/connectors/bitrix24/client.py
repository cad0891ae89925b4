"""Bitrix24's REST API, as the hub uses it (FACTS §1, §4, §5).

Every method is `POST {client_endpoint}{method}` with a JSON body; the access token travels in the
body as `auth` (the documented way), never in a header. Answers are the REST envelope:
`{"result": ..., "time": {...}}`, plus `total` and `next` (the offset of the next page) on lists,
whose pages are always 50 long. Errors are `{"error": CODE, "error_description": text}`:

- 401 `expired_token` (and the other 401s): the shared client refreshes once, single-flight, and
  repeats the call; a refused refresh makes the connection wait for its admin (NeedsReauth);
- 503 `QUERY_LIMIT_EXCEEDED` (the portal's leaky bucket): Retriable after a short backoff, retried
  once inside the call and then by the job queue;
- 403 `insufficient_scope`, `ACCESS_DENIED`, `user_access_error` ...: Fatal with Bitrix24's words;
- 500 `PORTAL_DELETED`: Fatal (the portal is gone; retrying changes nothing).

`batch` runs up to 50 calls in one request (one HTTP request against the leaky bucket instead of
50); it answers 200 even when some of them fail, so failures come back per command."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import quote

import requests

from ...errors import Fatal, Retriable
from ..base import ApiClient, RateLimiter, TokenSource
from .manifest import BATCH_MAX, BUCKET_SIZE, QUERY_LIMIT_BACKOFF, RATE_LIMIT_PER_SECOND

CLIENT_BURST = BUCKET_SIZE // 2   # half the portal's bucket: other workers and apps share it

TASK_SELECT = ("ID", "TITLE", "DESCRIPTION", "STATUS", "REAL_STATUS", "SUB_STATUS", "PRIORITY", "RESPONSIBLE_ID",
               "CREATED_BY", "CREATED_DATE", "CHANGED_BY", "CHANGED_DATE", "CLOSED_DATE", "STATUS_CHANGED_BY",
               "STATUS_CHANGED_DATE", "DATE_START", "DEADLINE",
               "TASK_CONTROL", "NOT_VIEWED", "VIEWED_DATE", "XML_ID", "AUDITORS", "GROUP_ID", "UF_CRM_TASK")
_FATAL_5XX = frozenset({"PORTAL_DELETED"})


def php_query(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested parameters as PHP reads them (`filter[>DATE_MODIFY]=...`, `select[0]=ID`): how a
    `batch` command carries its parameters."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs += php_query(value, name)
        elif isinstance(value, (list, tuple)):
            pairs += php_query({str(i): v for i, v in enumerate(value)}, name)
        elif value is None:
            pairs.append((name, ""))
        elif isinstance(value, bool):
            pairs.append((name, "Y" if value else "N"))
        else:
            pairs.append((name, str(value)))
    return pairs


def command(method: str, params: Mapping[str, Any] | None = None) -> str:
    """One batch command: `method?query`."""
    query = "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in php_query(params or {}))
    return f"{method}?{query}" if query else method


def b24_time(value: datetime | str) -> str:
    """A filter's time: ISO 8601 with its offset (naive datetimes are UTC, as the hub keeps them)."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


class BatchError(Fatal):
    """A command of a batch failed (its key and Bitrix24's words)."""


class Bitrix24Client(ApiClient):
    """One portal's API at `client_endpoint` (`https://<portal>/rest/`) with the user's token."""

    provider = "bitrix24"

    def __init__(self, api_base: str, tokens: TokenSource | None, *, session: requests.Session | None = None,
                 rate_limit: float | None = RATE_LIMIT_PER_SECOND, sleep=None, retry_policy=None):
        super().__init__(api_base, tokens, session=session, rate_limit=rate_limit, sleep=sleep,
                         retry_policy=retry_policy)
        if rate_limit:   # the portal's bucket takes bursts: so does ours, then drains at its pace
            self.limiter = RateLimiter(rate_limit, burst=CLIENT_BURST)

    # -- transport ----------------------------------------------------------------------------------
    def _raw(self, method, url, params, json, data, files, headers, stream, token) -> requests.Response:
        """The token goes in the body as `auth` (each retry and refresh gets the current one)."""
        body = dict(json or {})
        if token:
            body["auth"] = token
        return super()._raw(method, url, params, body, data, files, headers, stream, None)

    def error_message(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return (response.text or response.reason or "")[:300]
        if isinstance(body, dict) and ("error" in body or "error_description" in body):
            code, text = str(body.get("error") or ""), str(body.get("error_description") or "")
            return (f"{code}: {text}" if code and text and code != "0" else text or code)[:300]
        return str(body)[:300]

    def check(self, response: requests.Response, ok: tuple[int, ...] = ()) -> requests.Response:
        try:
            return super().check(response, ok)
        except Retriable as exc:
            code = _code(response)
            if code in _FATAL_5XX:
                raise Fatal(f"bitrix24 {response.status_code}: {self.error_message(response)}",
                            response.status_code) from None
            if exc.retry_after is None and code in ("QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT"):
                exc.retry_after = QUERY_LIMIT_BACKOFF
            raise

    # -- calls --------------------------------------------------------------------------------------
    def envelope(self, method: str, params: Mapping[str, Any] | None = None, *, ok: tuple[int, ...] = ()) -> dict:
        """The whole answer (`result`, `total`, `next`, `time`) of one method; `method` is a literal
        name such as `crm.deal.get` (ids go in `params`)."""
        response = self.request("POST", method, json=dict(params or {}), ok=ok)
        try:
            body = response.json()
        except ValueError:
            raise Retriable(f"bitrix24 {method}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise Retriable(f"bitrix24 {method}: the answer is not the REST envelope")
        return body

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.envelope(method, params).get("result")

    def iter_list(self, method: str, params: Mapping[str, Any] | None = None, *, key: str | None = None
                  ) -> Iterator[dict]:
        """Every item of a list method, page by page (`start` = the previous answer's `next`).
        `key`: where the items sit in `result` (`tasks` for tasks.task.list)."""
        query = dict(params or {})
        start = 0
        while True:
            body = self.envelope(method, {**query, "start": start})
            result = body.get("result")
            items = (result or {}).get(key) if key and isinstance(result, dict) else result
            for item in items or []:
                yield item
            nxt = body.get("next")
            if nxt in (None, "") or not items:
                return
            if int(nxt) <= start:
                return   # defensive: an answer that would page backwards would loop forever
            start = int(nxt)

    def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any] | None]], *, halt: bool = False
              ) -> tuple[dict[str, Any], dict[str, str]]:
        """Run many calls in as few requests as can be (50 each): (results by key, errors by key)."""
        keys = list(commands)
        results: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for at in range(0, len(keys), BATCH_MAX):
            chunk = {k: command(*commands[k]) for k in keys[at:at + BATCH_MAX]}
            result = self.call("batch", {"halt": 1 if halt else 0, "cmd": chunk}) or {}
            got = result.get("result") or {}
            failed = result.get("result_error") or {}
            if isinstance(got, dict):          # empty ones come as [] (FACTS §7)
                results.update(got)
            if isinstance(failed, dict):
                for k, err in failed.items():
                    if isinstance(err, dict):
                        errors[k] = str(err.get("error_description") or err.get("error") or err)[:300]
                    else:
                        errors[k] = str(err)[:300]
        return results, errors

    # -- who ----------------------------------------------------------------------------------------
    def whoami(self) -> tuple[dict, dict]:
        """(user.current, profile) in one round trip: the user's record and the admin flag."""
        results, errors = self.batch({"user": ("user.current", None), "profile": ("profile", None)})
        if "user" not in results:
            raise Fatal(f"bitrix24 user.current: {errors.get('user') or 'no answer'}", 400)
        return results["user"] or {}, results.get("profile") or {}

    def users(self, active_only: bool = True) -> list[dict]:
        params = {"FILTER": {"ACTIVE": True}} if active_only else {}
        return list(self.iter_list("user.get", params))

    # -- CRM ----------------------------------------------------------------------------------------
    def get_or_none(self, method: str, object_id: Any) -> dict | None:
        """A CRM object by id; None when Bitrix24 says it is not there (deleted)."""
        body = self.envelope(method, {"id": str(object_id)}, ok=(400, 404))
        if "error" in body or "error_description" in body:
            text = f"{body.get('error') or ''} {body.get('error_description') or ''}".lower()
            if "not found" in text:
                return None
            raise Fatal(f"bitrix24 {method}: {body.get('error_description') or body.get('error')}", 400)
        return body.get("result")

    def deal(self, deal_id: Any) -> dict | None:
        return self.get_or_none("crm.deal.get", deal_id)

    def lead(self, lead_id: Any) -> dict | None:
        return self.get_or_none("crm.lead.get", lead_id)

    def contact(self, contact_id: Any) -> dict | None:
        return self.get_or_none("crm.contact.get", contact_id)

    def company(self, company_id: Any) -> dict | None:
        return self.get_or_none("crm.company.get", company_id)

    def get_many(self, method: str, ids: Iterable[Any]) -> dict[str, dict]:
        """Several objects of one kind in one batch (ids not found are left out)."""
        wanted = [str(i) for i in dict.fromkeys(ids)]
        results, _ = self.batch({f"o{i}": (method, {"id": i}) for i in wanted})
        return {i: results[f"o{i}"] for i in wanted if isinstance(results.get(f"o{i}"), dict)}

    def changed(self, method: str, since: datetime | str | None, *, field: str = "DATE_MODIFY",
                select: Iterable[str] = ("*", "UF_*")) -> Iterator[dict]:
        """Objects changed since `since`, oldest change first (a reader can checkpoint as it goes)."""
        params: dict[str, Any] = {"order": {field: "ASC", "ID": "ASC"}, "select": list(select)}
        if since is not None:
            params["filter"] = {f">={field}": b24_time(since)}
        return self.iter_list(method, params)

    def fields(self, method: str) -> dict[str, dict]:
        """`crm.deal.fields` and friends: field code -> {type, title, listLabel, items ...}."""
        return self.call(method) or {}

    def statuses(self, entity_id: str) -> list[dict]:
        return list(self.iter_list("crm.status.list", {"order": {"SORT": "ASC"}, "filter": {"ENTITY_ID": entity_id}}))

    def deal_categories(self) -> list[dict]:
        """Deal pipelines: the default one (id 0) and the others (`crm.category.list`, deals: 2)."""
        found = list(self.iter_list("crm.category.list", {"entityTypeId": 2}, key="categories"))
        return found

    # -- tasks --------------------------------------------------------------------------------------
    def task(self, task_id: Any) -> dict | None:
        """A task (camelCase fields) or None when it is gone or no longer visible to the hub."""
        body = self.envelope("tasks.task.get", {"taskId": str(task_id), "select": list(TASK_SELECT),
                                                "params": {"WITH_RESULT_INFO": "Y"}}, ok=(400, 403, 404))
        if "error" in body or "error_description" in body:
            return None
        result = body.get("result")
        task = result.get("task") if isinstance(result, dict) else None
        return task or None

    def tasks(self, filter: Mapping[str, Any], *, order: Mapping[str, str] | None = None,
              select: Iterable[str] = TASK_SELECT) -> Iterator[dict]:
        return self.iter_list("tasks.task.list", {"filter": dict(filter), "select": list(select),
                                                  "order": dict(order or {"ID": "ASC"}),
                                                  "params": {"WITH_RESULT_INFO": "Y"}}, key="tasks")

    def tasks_changed(self, since: datetime | str | None) -> Iterator[dict]:
        flt = {">=CHANGED_DATE": b24_time(since)} if since is not None else {}
        return self.tasks(flt, order={"CHANGED_DATE": "ASC", "ID": "ASC"})

    def add_task(self, fields: Mapping[str, Any]) -> dict:
        return (self.call("tasks.task.add", {"fields": dict(fields)}) or {}).get("task") or {}

    def task_action(self, action: str, task_id: Any) -> dict:
        """tasks.task.start | pause | defer | complete | renew | approve | disapprove."""
        if action not in ("start", "pause", "defer", "complete", "renew", "approve", "disapprove"):
            raise ValueError(f"no task action {action!r}")
        result = self.call(f"tasks.task.{action}", {"taskId": str(task_id)})
        return (result or {}).get("task") or {} if isinstance(result, dict) else {}

    # -- events -------------------------------------------------------------------------------------
    def bound_events(self) -> list[dict]:
        return self.call("event.get") or []

    def bind(self, event: str, handler: str) -> None:
        self.call("event.bind", {"event": event, "handler": handler})

    def unbind(self, event: str, handler: str) -> int:
        result = self.call("event.unbind", {"event": event, "handler": handler})
        return int((result or {}).get("count") or 0) if isinstance(result, dict) else 0


def _code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error") or "") if isinstance(body, dict) else ""
