"""Thin client for the HubSpot API subset the hub uses (legacy `/crm/v3/...` paths, FACTS §5-7).

Methods return HubSpot's own records (`{"id", "properties", "createdAt", "updatedAt", "archived",
"associations"}`); lists follow `paging.next.after` until it is gone. Timeouts, retries, the 401
refresh and the mapping of responses come from `ApiClient`; this class reads HubSpot's error body
(`status`, `message`, `category`, `errors[]`, every field optional) and its 429 body
(`errorType: RATE_LIMIT`, `policyName` ten-secondly or daily)."""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import requests

from ...errors import Fatal, NeedsReauth, Retriable
from ..base import ApiClient, TokenSource
from . import manifest

Record = dict[str, Any]

# the CRM objects the hub reads, by the path segment HubSpot names them with
OBJECTS = ("contacts", "companies", "deals", "leads", "tasks", "emails", "calls", "meetings", "communications")
# an expired or revoked grant: the connection waits for its admin (a 401 after a refresh says so too)
_REAUTH_CATEGORIES = {"INVALID_AUTHENTICATION", "EXPIRED_AUTHENTICATION"}


def _drop_none(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class HubSpotClient(ApiClient):
    provider = "hubspot"

    def __init__(self, api_base: str, tokens: TokenSource | None, *, session: requests.Session | None = None,
                 rate_limit: float | None = manifest.RATE_LIMIT_PER_SECOND, sleep=None,
                 page_size: int = manifest.MAX_PAGE_SIZE, **options: Any):
        super().__init__(api_base or manifest.MANIFEST.api_url, tokens, session=session, rate_limit=rate_limit,
                         sleep=sleep, retry_policy=options.get("retry_policy"))
        self.page_size = max(1, min(page_size, manifest.MAX_PAGE_SIZE))

    # -- errors -----------------------------------------------------------------------------------
    @staticmethod
    def _body(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    def error_message(self, response: requests.Response) -> str:
        """HubSpot's message, with the first of `errors[]` when it adds something (a property name)."""
        body = self._body(response)
        if not isinstance(body, dict):
            return (response.text or response.reason or "")[:300]
        message = body.get("message") if isinstance(body.get("message"), str) else ""
        details = [e.get("message") for e in body.get("errors") or [] if isinstance(e, dict)
                   and isinstance(e.get("message"), str) and e.get("message") not in message]
        text = "; ".join([m for m in [message, *details[:3]] if m]) or str(body.get("category") or body)[:300]
        return text[:500]

    def check(self, response: requests.Response, ok: tuple[int, ...] = ()) -> requests.Response:
        """A 429 of the daily policy waits for tomorrow's budget rather than seconds; a 403 or 400
        whose category says the grant is gone is NeedsReauth, not a failed step."""
        status = response.status_code
        if 200 <= status < 300 or status in ok:
            return response
        body = self._body(response)
        body = body if isinstance(body, dict) else {}
        if status == 429 and str(body.get("policyName") or "").upper() == "DAILY":
            raise Retriable(f"hubspot 429: {self.error_message(response)}", 3600.0)
        if str(body.get("category") or "") in _REAUTH_CATEGORIES:
            raise NeedsReauth(f"hubspot {status}: {self.error_message(response)}")
        return super().check(response, ok)

    # -- token metadata ---------------------------------------------------------------------------
    def token_info(self, access_token: str) -> dict[str, Any]:
        """`hub_id`, `user`, `user_id`, `scopes`, `expires_in` of an access token (FACTS §1)."""
        return self.json("GET", "/oauth/v1/access-tokens/{token}", path_params={"token": access_token}) or {}

    # -- paging -----------------------------------------------------------------------------------
    def iter_pages(self, path: str, params: dict[str, Any] | None = None, *,
                   path_params: dict[str, Any] | None = None) -> Iterator[Record]:
        """GET lists: `results`, then `paging.next.after` until there is none."""
        query = {**_drop_none(params or {}), "limit": self.page_size}
        while True:
            body = self.json("GET", path, params=query, path_params=path_params) or {}
            yield from body.get("results") or []
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after or not body.get("results"):
                return
            query["after"] = after

    def iter_search(self, object_type: str, body: dict[str, Any], max_results: int | None = None) -> Iterator[Record]:
        """POST /search, paged by `after` in the body (200 a page, 10,000 a query at most)."""
        query = {**body, "limit": min(max_results or manifest.MAX_SEARCH_PAGE_SIZE, manifest.MAX_SEARCH_PAGE_SIZE)}
        seen = 0
        while True:
            page = self.json("POST", "/crm/v3/objects/{object_type}/search", path_params={"object_type": object_type},
                             json=query) or {}
            for item in page.get("results") or []:
                yield item
                seen += 1
                if max_results is not None and seen >= max_results:
                    return
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after or not page.get("results"):
                return
            query["after"] = after

    # -- objects ----------------------------------------------------------------------------------
    def get(self, object_type: str, object_id: Any, *, properties: Iterable[str] | None = None,
            associations: Iterable[str] | None = None, history: Iterable[str] | None = None) -> Record:
        params = _drop_none({"properties": ",".join(properties) if properties else None,
                             "associations": ",".join(associations) if associations else None,
                             "propertiesWithHistory": ",".join(history) if history else None})
        return self.json("GET", "/crm/v3/objects/{object_type}/{object_id}",
                         path_params={"object_type": object_type, "object_id": object_id}, params=params or None)

    def find(self, object_type: str, object_id: Any, **kwargs: Any) -> Record | None:
        """The object, or None when HubSpot no longer has it (deleted, merged away)."""
        try:
            return self.get(object_type, object_id, **kwargs)
        except Fatal as exc:
            if exc.status == 404:
                return None
            raise

    def create(self, object_type: str, properties: dict[str, Any],
               associations: list[dict[str, Any]] | None = None) -> Record:
        body: dict[str, Any] = {"properties": properties}
        if associations:
            body["associations"] = associations
        return self.json("POST", "/crm/v3/objects/{object_type}", path_params={"object_type": object_type}, json=body)

    def update(self, object_type: str, object_id: Any, properties: dict[str, Any]) -> Record:
        return self.json("PATCH", "/crm/v3/objects/{object_type}/{object_id}",
                         path_params={"object_type": object_type, "object_id": object_id},
                         json={"properties": properties})

    def recent(self, object_type: str, limit: int, properties: Iterable[str] | None = None) -> list[Record]:
        """The most recently modified objects (search sorted by their last modification)."""
        modified = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        body: dict[str, Any] = {"sorts": [{"propertyName": modified, "direction": "DESCENDING"}]}
        if properties:
            body["properties"] = list(properties)
        return list(self.iter_search(object_type, body, max_results=limit))

    def associated(self, object_type: str, object_id: Any, to_type: str) -> list[str]:
        """Ids of the `to_type` objects associated with one object (v4 associations)."""
        return [str(item.get("toObjectId")) for item in
                self.iter_pages("/crm/v4/objects/{object_type}/{object_id}/associations/{to_type}",
                                path_params={"object_type": object_type, "object_id": object_id, "to_type": to_type})
                if item.get("toObjectId") not in (None, "")]

    # -- metadata ---------------------------------------------------------------------------------
    def pipelines(self, object_type: str) -> list[Record]:
        """Pipelines of deals or leads, each with `stages` (`displayOrder`, `metadata`)."""
        body = self.json("GET", "/crm/v3/pipelines/{object_type}", path_params={"object_type": object_type}) or {}
        return body.get("results") or []

    def properties(self, object_type: str) -> list[Record]:
        body = self.json("GET", "/crm/v3/properties/{object_type}", path_params={"object_type": object_type}) or {}
        return body.get("results") or []

    def property(self, object_type: str, name: str) -> Record:
        return self.json("GET", "/crm/v3/properties/{object_type}/{name}",
                         path_params={"object_type": object_type, "name": name}) or {}

    def owners(self) -> list[Record]:
        return list(self.iter_pages("/crm/v3/owners"))

    def association_labels(self, from_type: str, to_type: str) -> list[Record]:
        body = self.json("GET", "/crm/v4/associations/{from_type}/{to_type}/labels",
                         path_params={"from_type": from_type, "to_type": to_type}) or {}
        return body.get("results") or []
