"""Thin typed client for the Pipedrive API subset the hub uses (FACTS §11).

API v2 wherever Pipedrive offers it (v1 deals/persons/pipelines/stages are out of support since
2026-08-01, FACTS §17); v1 only for users, leads, notes, files and webhooks, which have no v2 form.
Methods return the provider's own data (plain dicts); lists are generators or fully read lists for
small metadata. Timeouts, retries, the 401 refresh and error mapping come from `ApiClient`."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import requests

from ...errors import Retriable
from ..base import ApiClient, TokenSource, parse_retry_after
from .manifest import MAX_FILES_PAGE_SIZE, MAX_PAGE_SIZE, RATE_LIMIT_PER_SECOND

# The provider's records, as returned (aliases say what a dict holds, nothing is reshaped).
Deal = dict[str, Any]
Person = dict[str, Any]
Organization = dict[str, Any]
Lead = dict[str, Any]
Note = dict[str, Any]
FileInfo = dict[str, Any]
Field = dict[str, Any]
Webhook = dict[str, Any]
User = dict[str, Any]

Timestamp = datetime | str


def rfc3339(value: Timestamp) -> str:
    """v2 filters take RFC 3339; naive datetimes are taken as UTC (Pipedrive stores UTC)."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def v1_time(value: Timestamp) -> str:
    """v1 filters take `YYYY-MM-DD HH:MM:SS` in UTC."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _contacts(items: Iterable[str | dict] | None) -> list[dict] | None:
    """v2 person writes want emails/phones as objects; plain strings are the common case for callers."""
    if items is None:
        return None
    return [{"value": i, "primary": n == 0, "label": "work"} if isinstance(i, str) else dict(i)
            for n, i in enumerate(items)]


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class PipedriveClient(ApiClient):
    """One company's API, reached at `api_domain` (from the token response) with the user's token."""

    provider = "pipedrive"

    def __init__(self, api_domain: str, tokens: TokenSource | None, *, session: requests.Session | None = None,
                 rate_limit: float | None = RATE_LIMIT_PER_SECOND, sleep=None, page_size: int = MAX_PAGE_SIZE):
        super().__init__(api_domain, tokens, session=session, rate_limit=rate_limit, sleep=sleep)
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))

    # -- errors -----------------------------------------------------------------------------------
    def error_message(self, response: requests.Response) -> str:
        """Pipedrive has three error bodies (FACTS §15): the general `{error, error_info}`, the
        webhook API's `{errors: {field: [msg]}}` and a bare `{message}`; plus Cloudflare HTML pages."""
        try:
            body = response.json()
        except ValueError:
            return (response.text or response.reason or "")[:300]
        if not isinstance(body, dict):
            return str(body)[:300]
        if isinstance(body.get("errors"), dict) and body["errors"]:
            return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                             for k, v in body["errors"].items())
        message = body.get("error") or body.get("message") or body.get("error_description")
        if isinstance(message, str):
            info = body.get("error_info")
            generic = isinstance(info, str) and "developers.pipedrive.com" in info
            return f"{message} ({info})" if isinstance(info, str) and info and not generic else message
        return str(body)[:300]

    def check(self, response: requests.Response, ok: tuple[int, ...] = ()) -> requests.Response:
        """A 429 without Retry-After (its presence is unconfirmed, FACTS §14) still says when the
        2-second burst window frees up: `x-ratelimit-reset`, in seconds."""
        try:
            return super().check(response, ok)
        except Retriable as exc:
            if exc.retry_after is None and response.status_code == 429:
                reset = parse_retry_after(response.headers.get("x-ratelimit-reset"))
                if reset is not None:
                    exc.retry_after = reset
            raise

    # -- paging -----------------------------------------------------------------------------------
    def _data(self, method: str, path: str, **kwargs) -> Any:
        body = self.json(method, path, **kwargs)
        return body.get("data") if isinstance(body, dict) else body

    def iter_cursor(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        """v2 lists: follow `additional_data.next_cursor` until it is null (FACTS §12)."""
        query = {**_drop_none(params or {}), "limit": self.page_size}
        while True:
            body = self.json("GET", path, params=query) or {}
            yield from body.get("data") or []
            cursor = (body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    def iter_offset(self, path: str, params: dict[str, Any] | None = None, *,
                    path_params: dict[str, Any] | None = None, max_limit: int = MAX_PAGE_SIZE) -> Iterator[dict]:
        """v1 lists: `start`/`limit`; pagination sits under `additional_data.pagination` in the docs
        but directly under `additional_data` in some schemas (FACTS §12): accept both."""
        limit = min(self.page_size, max_limit)
        start = 0
        while True:
            body = self.json("GET", path, path_params=path_params,
                             params={**_drop_none(params or {}), "start": start, "limit": limit}) or {}
            items = body.get("data") or []
            yield from items
            extra = body.get("additional_data") or {}
            page = extra.get("pagination") if isinstance(extra.get("pagination"), dict) else extra
            if not page.get("more_items_in_collection"):
                return
            start = page.get("next_start") or start + len(items)
            if not items:
                return   # defensive: "more" with an empty page would loop forever

    # -- users (v1) -------------------------------------------------------------------------------
    def me(self) -> User:
        """The installing user and the company (`company_id`, `company_domain`, `access[]`)."""
        return self._data("GET", "/api/v1/users/me")

    def users(self) -> list[User]:
        return self._data("GET", "/api/v1/users") or []

    # -- pipelines / stages (v2) ------------------------------------------------------------------
    def pipelines(self) -> list[dict]:
        return list(self.iter_cursor("/api/v2/pipelines"))

    def stages(self, pipeline_id: int | None = None) -> list[dict]:
        return list(self.iter_cursor("/api/v2/stages", {"pipeline_id": pipeline_id}))

    # -- deals (v2) -------------------------------------------------------------------------------
    def iter_deals(self, updated_since: Timestamp | None = None, *, updated_until: Timestamp | None = None,
                   status: str | Iterable[str] | None = None, pipeline_id: int | None = None,
                   stage_id: int | None = None, owner_id: int | None = None,
                   include_fields: Iterable[str] | None = None, sort_by: str = "update_time",
                   sort_direction: str = "asc") -> Iterator[Deal]:
        """All matching deals, page by page. Sorted by `update_time` ascending by default so an
        incremental reader can checkpoint the last `update_time` it saw; a deal edited while we page
        moves behind the cursor and is still read. `status` may include "deleted" (last 30 days)."""
        if status is not None and not isinstance(status, str):
            status = ",".join(status)
        params = {"updated_since": rfc3339(updated_since) if updated_since else None,
                  "updated_until": rfc3339(updated_until) if updated_until else None,
                  "status": status, "pipeline_id": pipeline_id, "stage_id": stage_id, "owner_id": owner_id,
                  "include_fields": ",".join(include_fields) if include_fields else None,
                  "sort_by": sort_by, "sort_direction": sort_direction}
        return self.iter_cursor("/api/v2/deals", params)

    def deal(self, deal_id: int, *, include_fields: Iterable[str] | None = None) -> Deal:
        params = {"include_fields": ",".join(include_fields)} if include_fields else None
        return self._data("GET", "/api/v2/deals/{deal_id}", path_params={"deal_id": int(deal_id)}, params=params)

    def update_deal(self, deal_id: int, **fields: Any) -> Deal:
        """PATCH with v2's strict types (ints, booleans, `custom_fields: {hash: value}`)."""
        return self._data("PATCH", "/api/v2/deals/{deal_id}", path_params={"deal_id": int(deal_id)}, json=fields)

    # -- persons / organizations (v2) -------------------------------------------------------------
    def iter_persons(self, updated_since: Timestamp | None = None, *, updated_until: Timestamp | None = None,
                     org_id: int | None = None, owner_id: int | None = None, sort_by: str = "update_time",
                     sort_direction: str = "asc") -> Iterator[Person]:
        params = {"updated_since": rfc3339(updated_since) if updated_since else None,
                  "updated_until": rfc3339(updated_until) if updated_until else None,
                  "org_id": org_id, "owner_id": owner_id, "sort_by": sort_by, "sort_direction": sort_direction}
        return self.iter_cursor("/api/v2/persons", params)

    def person(self, person_id: int) -> Person:
        return self._data("GET", "/api/v2/persons/{person_id}", path_params={"person_id": int(person_id)})

    def create_person(self, name: str | None = None, *, first_name: str | None = None, last_name: str | None = None,
                      emails: Iterable[str | dict] | None = None, phones: Iterable[str | dict] | None = None,
                      org_id: int | None = None, owner_id: int | None = None, visible_to: int | None = None,
                      custom_fields: dict[str, Any] | None = None) -> Person:
        """Give `name` or both `first_name` and `last_name`; plain-string emails/phones become
        `{value, primary, label: "work"}` with the first one primary."""
        body = _drop_none({"name": name, "first_name": first_name, "last_name": last_name,
                           "emails": _contacts(emails), "phones": _contacts(phones), "org_id": org_id,
                           "owner_id": owner_id, "visible_to": visible_to, "custom_fields": custom_fields})
        return self._data("POST", "/api/v2/persons", json=body)

    def update_person(self, person_id: int, **fields: Any) -> Person:
        """Partial update; `emails`/`phones` replace the whole list (strings accepted as above)."""
        for kind in ("emails", "phones"):
            if kind in fields and fields[kind] is not None:
                fields[kind] = _contacts(fields[kind])
        return self._data("PATCH", "/api/v2/persons/{person_id}", path_params={"person_id": int(person_id)},
                          json=fields)

    def delete_person(self, person_id: int) -> int:
        """Soft delete (Pipedrive purges after 30 days); returns the deleted id."""
        data = self._data("DELETE", "/api/v2/persons/{person_id}", path_params={"person_id": int(person_id)}) or {}
        return int(data.get("id", person_id))

    def organization(self, org_id: int) -> Organization:
        return self._data("GET", "/api/v2/organizations/{org_id}", path_params={"org_id": int(org_id)})

    # -- leads (v1) -------------------------------------------------------------------------------
    def iter_leads(self, updated_since: Timestamp | None = None, *, owner_id: int | None = None,
                   person_id: int | None = None, organization_id: int | None = None) -> Iterator[Lead]:
        """Non-archived leads, oldest first (archived ones are not listed since 2025-07-15).
        Lead custom fields come in the v1 flat form (`<hash>: value`), unlike deals in v2."""
        params = {"updated_since": rfc3339(updated_since) if updated_since else None, "owner_id": owner_id,
                  "person_id": person_id, "organization_id": organization_id}
        return self.iter_offset("/api/v1/leads", params)

    def lead(self, lead_id: str) -> Lead:
        return self._data("GET", "/api/v1/leads/{lead_id}", path_params={"lead_id": lead_id})

    # -- notes and files (v1) ---------------------------------------------------------------------
    def deal_notes(self, deal_id: int, pinned_only: bool = True) -> list[Note]:
        """Notes of a deal, newest first; `content` is sanitized HTML."""
        params = {"deal_id": int(deal_id), "pinned_to_deal_flag": 1 if pinned_only else None}
        return list(self.iter_offset("/api/v1/notes", params))

    def deal_files(self, deal_id: int) -> list[FileInfo]:
        return list(self.iter_offset("/api/v1/deals/{deal_id}/files", path_params={"deal_id": int(deal_id)},
                                     max_limit=MAX_FILES_PAGE_SIZE))

    def download_file(self, file_id: int, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """The file's bytes in chunks, never whole in memory (attachments can be large)."""
        return self.iter_download("/api/v1/files/{file_id}/download", chunk_size, path_params={"file_id": int(file_id)})

    # -- custom fields (v2) -----------------------------------------------------------------------
    def deal_fields(self) -> list[Field]:
        """Every deal field: `field_code` (40-char hash for custom ones), `field_name`, `field_type`,
        `options` [{id, label}] for enum/set, `is_custom_field`. Leads use these fields too."""
        return list(self.iter_cursor("/api/v2/dealFields"))

    def person_fields(self) -> list[Field]:
        return list(self.iter_cursor("/api/v2/personFields"))

    # -- webhooks (v1; the app sees only its own) -------------------------------------------------
    def webhooks(self) -> list[Webhook]:
        return self._data("GET", "/api/v1/webhooks") or []

    def create_webhook(self, subscription_url: str, event_action: str, event_object: str,
                       http_auth_user: str, http_auth_password: str, name: str, version: str = "2.0",
                       user_id: int | None = None) -> Webhook:
        """Pipedrive signs nothing: the Basic credentials set here are how deliveries prove where
        they come from (FACTS §7). `user_id` filters events through that user's permissions."""
        body = _drop_none({"subscription_url": subscription_url, "event_action": event_action,
                           "event_object": event_object, "http_auth_user": http_auth_user,
                           "http_auth_password": http_auth_password, "name": name, "version": version,
                           "user_id": user_id})
        return self._data("POST", "/api/v1/webhooks", json=body)

    def delete_webhook(self, webhook_id: int) -> None:
        self.json("DELETE", "/api/v1/webhooks/{webhook_id}", path_params={"webhook_id": int(webhook_id)})
