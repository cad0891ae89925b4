"""Typed client of the People API v1: contact groups (labels), contacts, incremental sync.

What the provider makes us do (FACTS.md, `people.v1.json`):
- Errors are google.rpc.Status bodies; clients must key on the ErrorInfo `reason` (or the legacy
  `errors[].reason`), never on the message: the expired sync token shows up as 400
  FAILED_PRECONDITION, 400 INVALID_ARGUMENT or (older docs) 410, always with EXPIRED_SYNC_TOKEN.
- "Mutate requests for the same user should be sent sequentially": a `PeopleClient` serialises its
  own writes with a lock, but it cannot see other processes. The caller (sync engine, job queue)
  must run at most one writer per Google account; use one client per account.
- Creates are not idempotent. A 429 means Google refused the request, so it is retried here; a 5xx
  or a broken connection may come after the contacts were created, so it is NOT retried blindly:
  `WriteOutcomeUnknown` tells the caller to look the contacts up by their clientData marker
  (`find_by_marker`) before creating them again.
- Paged reads are generators; `iter_connections` yields whole pages so a caller can save a bookmark
  after each one, and only the last page carries `next_sync_token`.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import requests

from hub.errors import Fatal, Retriable

from ..base import ApiClient, TokenSource, parse_retry_after
from ..contract import contacts as contract
from ..retry import Throttled, Unreachable

Mask = str | Iterable[str]

GROUP_FIELDS = "clientData,groupType,memberCount,metadata,name"
GROUP_READ_AFTER_WRITE = "clientData,groupType,metadata,name"
_CONTACT_LIMIT_TEXT = re.compile(r"contacts?\s+limit|maximum number of contacts", re.I)
_ETAG_TEXT = re.compile(r"etag", re.I)
_RATE_REASONS = {"RATE_LIMIT_EXCEEDED", "rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"}
_FAILED_PRECONDITION = 9  # google.rpc.Code inside batch contactErrors


# -- errors -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GoogleStatus:
    """A parsed google.rpc.Status error body; every part is optional in practice."""

    http: int
    status: str = ""                      # canonical code name, e.g. FAILED_PRECONDITION
    message: str = ""
    reasons: tuple[str, ...] = ()         # ErrorInfo reasons, then legacy errors[].reason
    metadata: Mapping[str, str] = field(default_factory=dict)
    contact_errors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # batch create/update

    @classmethod
    def from_response(cls, response: requests.Response) -> "GoogleStatus":
        try:
            body = response.json()
        except ValueError:
            return cls(response.status_code, message=(response.text or response.reason or "")[:300])
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(response.status_code, message=str(body)[:300])
        reasons: list[str] = []
        metadata: dict[str, str] = {}
        contact_errors: dict[str, Mapping[str, Any]] = {}
        for detail in error.get("details") or []:
            if not isinstance(detail, dict):
                continue
            kind = str(detail.get("@type", ""))
            if kind.endswith("google.rpc.ErrorInfo"):
                if detail.get("reason"):
                    reasons.append(str(detail["reason"]))
                metadata.update({str(k): str(v) for k, v in (detail.get("metadata") or {}).items()})
            elif kind.endswith("ContactsErrorDetails") and isinstance(detail.get("contactErrors"), dict):
                contact_errors.update({str(k): v for k, v in detail["contactErrors"].items() if isinstance(v, dict)})
        for legacy in error.get("errors") or []:
            if isinstance(legacy, dict) and legacy.get("reason"):
                reasons.append(str(legacy["reason"]))
        return cls(response.status_code, str(error.get("status") or ""), str(error.get("message") or ""),
                   tuple(reasons), metadata, contact_errors)

    def describe(self) -> str:
        head = "/".join(p for p in (self.status, self.reasons[0] if self.reasons else "") if p)
        return f"{head}: {self.message}" if head else self.message


class PeopleApiError(Fatal):
    """A People API refusal that retrying will not change; `google` is the parsed error body."""

    def __init__(self, message: str, google: GoogleStatus):
        super().__init__(message, google.http)
        self.google = google


class NotFound(PeopleApiError):
    """The contact or group does not exist (any more)."""


class SyncTokenExpired(PeopleApiError):
    """The sync token is expired or unknown (7 days after its full sync): drop it and do a full sync."""


class EtagMismatch(PeopleApiError):
    """The contact changed since its etag was read: re-read, merge, retry (bounded).
    `resource_names` are the stale contacts (all of them for a single update)."""

    def __init__(self, message: str, google: GoogleStatus, resource_names: Sequence[str] = ()):
        super().__init__(message, google)
        self.resource_names = list(resource_names)


class ContactLimitReached(PeopleApiError):
    """The account holds as many contacts as Google allows (25,000 reported). Not retriable: the
    engine must stay under the cap and report what it left out. Google's exact error is
    undocumented; recognised by reason CONTACT_LIMIT_EXCEEDED or the message, at 400 or 429."""


class GroupNameTaken(PeopleApiError):
    """409: the account already has a contact group of that name."""


class BatchRejected(PeopleApiError):
    """A batch create/update refused for per-contact reasons; `google.contact_errors` maps the
    contact's index (create, 0-based within the chunk) or resource name (update) to a Status."""


class QuotaExceeded(Throttled):
    """429 RESOURCE_EXHAUSTED: Google refused the call before doing anything, so even a create
    is safe to send again after `retry_after`."""

    def __init__(self, message: str, retry_after: float | None = None, google: GoogleStatus | None = None):
        super().__init__(message, retry_after)
        self.google = google


class WriteOutcomeUnknown(contract.WriteOutcomeUnknown):
    """A create failed with a 5xx or a broken connection: the contacts may or may not exist.
    Before creating them again, look them up by their clientData marker (`find_by_marker`)."""


# -- pages ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectionsPage:
    """One page of people/me/connections.

    Checkpoint after processing a page with (`sync_token` of the run, `next_page_token`): a run is
    resumed by passing both back, with the same `person_fields` (Google requires every parameter to
    match). `next_sync_token` is set on the last page only; save it once that page is processed.
    Deletions (`metadata.deleted`) appear only in incremental runs; a full run proves a deletion
    only by absence, and only after its last page."""

    people: list[dict[str, Any]]
    page_token: str | None              # the token this page was fetched with (None: first page)
    next_page_token: str | None
    next_sync_token: str | None
    total_items: int | None
    incremental: bool

    @property
    def is_last(self) -> bool:
        return self.next_page_token is None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.people)

    def __len__(self) -> int:
        return len(self.people)


def _mask(value: Mask) -> str:
    return value if isinstance(value, str) else ",".join(value)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# -- the client -----------------------------------------------------------------------------------------
class PeopleClient(ApiClient):
    """People API v1 for one Google account (the token's user; only `people/me` is valid)."""

    provider = "google"
    BATCH_GET_MAX = 200
    BATCH_CREATE_MAX = 200
    BATCH_UPDATE_MAX = 200
    BATCH_DELETE_MAX = 500
    MEMBERS_MODIFY_MAX = 1000
    PAGE_SIZE_MAX = 1000

    def __init__(self, base_url: str, tokens: TokenSource | None, **kwargs: Any):
        super().__init__(base_url, tokens, **kwargs)
        self._writes = threading.RLock()  # one mutate call at a time through this client

    # -- errors -------------------------------------------------------------------------------------------
    def error_message(self, response: requests.Response) -> str:
        return GoogleStatus.from_response(response).describe()

    def check(self, response: requests.Response, ok: tuple[int, ...] = ()) -> requests.Response:
        status = response.status_code
        if 200 <= status < 300 or status in ok:
            return response
        google = GoogleStatus.from_response(response)
        message = f"google {status}: {google.describe()}"
        reasons = set(google.reasons)
        if "EXPIRED_SYNC_TOKEN" in reasons or status == 410:
            raise SyncTokenExpired(message, google)
        if "CONTACT_LIMIT_EXCEEDED" in reasons or _CONTACT_LIMIT_TEXT.search(google.message):
            raise ContactLimitReached(message, google)
        if status == 429 or (status == 403 and reasons & _RATE_REASONS):
            raise QuotaExceeded(message, parse_retry_after(response.headers.get("Retry-After")), google)
        if status == 409:
            raise GroupNameTaken(message, google)
        if status == 404:
            raise NotFound(message, google)
        if google.contact_errors:
            stale = [key for key, err in google.contact_errors.items() if _is_etag_error(err)]
            if stale and len(stale) == len(google.contact_errors):
                raise EtagMismatch(message, google, stale)
            raise BatchRejected(message, google)
        if status == 400 and (google.status == "FAILED_PRECONDITION" or "failedPrecondition" in reasons) \
                and _ETAG_TEXT.search(google.message):
            raise EtagMismatch(message, google)
        if status >= 500:
            return super().check(response, ok)  # Retriable, Retry-After honoured
        raise PeopleApiError(message, google)

    # -- contact groups (labels) ---------------------------------------------------------------------
    def groups(self, *, group_fields: Mask = GROUP_FIELDS, page_size: int = PAGE_SIZE_MAX) -> Iterator[dict]:
        """Every contact group of the account (system groups included), page by page."""
        params: dict[str, Any] = {"groupFields": _mask(group_fields), "pageSize": page_size}
        for page in self._pages("v1/contactGroups", params):
            yield from page.get("contactGroups") or []

    def create_group(self, name: str, client_data: Mapping[str, str] | None = None, *,
                     adopt_existing: bool = True) -> dict:
        """Create a user label. Names are unique per account: on 409 the existing label of that name
        is adopted (FACTS §3), so a retried create after a lost response converges on one label. The
        adopted label's `clientData` shows whether we made it. `adopt_existing=False` raises
        `GroupNameTaken` instead (e.g. when the admin must pick another name)."""
        group: dict[str, Any] = {"name": name}
        if client_data:
            group["clientData"] = [{"key": k, "value": v} for k, v in client_data.items()]
        try:
            with self._writes:
                return self.json("POST", "v1/contactGroups",
                                 json={"contactGroup": group, "readGroupFields": GROUP_READ_AFTER_WRITE})
        except GroupNameTaken:
            if not adopt_existing:
                raise
            wanted = name.strip()
            for existing in self.groups():
                if existing.get("groupType") == "USER_CONTACT_GROUP" and existing.get("name", "").strip() == wanted:
                    return existing
            raise  # taken, yet not listed (deleted meanwhile or a system name): let the caller decide

    def group(self, resource_name: str, *, max_members: int = 0, group_fields: Mask = GROUP_FIELDS) -> dict:
        """One group; `memberResourceNames` holds up to `max_members` names, `memberCount` the total."""
        params: dict[str, Any] = {"groupFields": _mask(group_fields)}
        if max_members:
            params["maxMembers"] = max_members
        return self.json("GET", "v1/contactGroups/{group_id}", path_params=_group(resource_name), params=params)

    def delete_group(self, resource_name: str, *, delete_contacts: bool = False) -> bool:
        """Delete a user label (contacts stay unless `delete_contacts`); False if already gone."""
        try:
            with self._writes:
                self.json("DELETE", "v1/contactGroups/{group_id}", path_params=_group(resource_name),
                          params={"deleteContacts": "true" if delete_contacts else "false"})
            return True
        except NotFound:
            return False

    def modify_members(self, group: str, add: Sequence[str] = (), remove: Sequence[str] = ()) -> dict[str, list[str]]:
        """Add/remove contacts to/from a label, <= 1000 names per call (adds first). Returns the
        merged `notFoundResourceNames` and `canNotRemoveLastContactGroupResourceNames` (a contact
        must keep one group). Use this rather than updating `memberships`, which replaces them all."""
        work = [("resourceNamesToAdd", n) for n in add] + [("resourceNamesToRemove", n) for n in remove]
        result: dict[str, list[str]] = {"notFoundResourceNames": [], "canNotRemoveLastContactGroupResourceNames": []}
        for chunk in _chunks(work, self.MEMBERS_MODIFY_MAX):
            body: dict[str, list[str]] = {}
            for key, name in chunk:
                body.setdefault(key, []).append(name)
            with self._writes:
                answer = self.json("POST", "v1/contactGroups/{group_id}/members:modify", path_params=_group(group),
                                   json=body) or {}
            for key in result:
                result[key].extend(answer.get(key) or [])
        return result

    # -- reading contacts --------------------------------------------------------------------------------
    def iter_connections(self, person_fields: Mask, *, sync_token: str | None = None,
                         request_sync_token: bool = True, page_size: int = PAGE_SIZE_MAX,
                         page_token: str | None = None) -> Iterator[ConnectionsPage]:
        """The account's contacts (full run) or the changes since `sync_token` (incremental run),
        one `ConnectionsPage` at a time. Only a page without `next_page_token` ends a run; short or
        empty pages do not (FACTS §5). Pass `page_token` (with the same other arguments) to resume
        a run from a checkpoint. Raises `SyncTokenExpired`: then run a full sync."""
        params: dict[str, Any] = {"personFields": _mask(person_fields), "pageSize": page_size}
        if request_sync_token:
            params["requestSyncToken"] = "true"
        if sync_token:
            params["syncToken"] = sync_token
        seen: set[str] = set()
        token = page_token
        while True:
            body = self.json("GET", "v1/people/me/connections",
                             params=dict(params, pageToken=token) if token else params) or {}
            next_token = body.get("nextPageToken") or None
            yield ConnectionsPage(people=list(body.get("connections") or []), page_token=token,
                                  next_page_token=next_token,
                                  next_sync_token=None if next_token else body.get("nextSyncToken"),
                                  total_items=body.get("totalItems"), incremental=bool(sync_token))
            if next_token is None:
                return
            if next_token in seen:
                raise Retriable(f"google returned page token {next_token[:12]}... twice; listing aborted")
            seen.add(next_token)
            token = next_token

    def get_person(self, resource_name: str, person_fields: Mask) -> dict:
        return self.json("GET", "v1/people/{person_id}", path_params=_person(resource_name),
                         params={"personFields": _mask(person_fields)})

    def batch_get(self, resource_names: Sequence[str], person_fields: Mask) -> dict[str, dict | None]:
        """People by resource name (<= 200 per call), keyed by the REQUESTED name (Google may answer
        with a newer `person.resourceName`); None for names that no longer exist."""
        out: dict[str, dict | None] = {}
        for chunk in _chunks(list(dict.fromkeys(resource_names)), self.BATCH_GET_MAX):
            body = self.json("GET", "v1/people:batchGet",
                             params={"resourceNames": list(chunk), "personFields": _mask(person_fields)}) or {}
            for entry in body.get("responses") or []:
                out[entry.get("requestedResourceName", "")] = entry.get("person")
        return out

    def find_by_marker(self, key: str, values: Iterable[str] | None = None) -> dict[str, dict]:
        """Contacts carrying clientData `key` (optionally only these values), keyed by value.
        Google cannot search clientData, so this is a full listing: use it to reconcile after
        `WriteOutcomeUnknown`, not routinely."""
        wanted = set(values) if values is not None else None
        found: dict[str, dict] = {}
        for page in self.iter_connections("names,emailAddresses,clientData,metadata", request_sync_token=False):
            for person in page:
                for item in person.get("clientData") or []:
                    if item.get("key") == key and (wanted is None or item.get("value") in wanted):
                        found[str(item.get("value"))] = person
        return found

    # -- writing contacts --------------------------------------------------------------------------------
    def create_contact(self, person: Mapping[str, Any], person_fields: Mask) -> dict:
        """Create one contact; may raise `WriteOutcomeUnknown` (see module docstring)."""
        return self._create("v1/people:createContact", {"personFields": _mask(person_fields)}, dict(person))

    def update_contact(self, resource_name: str, person: Mapping[str, Any], update_fields: Mask,
                       person_fields: Mask) -> dict:
        """Replace the `update_fields` of a contact wholesale. `person["etag"]` must be the etag last
        read (or returned by the previous update): a stale one raises `EtagMismatch`."""
        if not person.get("etag"):
            raise ValueError("update_contact needs person['etag'] (Google refuses an update without it)")
        with self._writes:
            return self.json("PATCH", "v1/people/{person_id}:updateContact", path_params=_person(resource_name),
                             json=dict(person),
                             params={"updatePersonFields": _mask(update_fields), "personFields": _mask(person_fields)})

    def delete_contact(self, resource_name: str) -> bool:
        """Delete one contact; False if it was already gone (deletes are idempotent for the caller)."""
        try:
            with self._writes:
                self.json("DELETE", "v1/people/{person_id}:deleteContact", path_params=_person(resource_name))
            return True
        except NotFound:
            return False

    def iter_batch_create(self, contacts: Sequence[Mapping[str, Any]], read_mask: Mask) -> Iterator[list[dict]]:
        """Create contacts <= 200 per call, yielding each chunk's created people in input order, so
        the caller can store links after every chunk. An empty `read_mask` yields empty lists (Google
        then skips the post-write read and returns no resource names)."""
        for chunk in _chunks(list(contacts), self.BATCH_CREATE_MAX):
            body = {"contacts": [{"contactPerson": dict(p)} for p in chunk], "readMask": _mask(read_mask)}
            answer = self._create("v1/people:batchCreateContacts", None, body) or {}
            yield [entry.get("person") or {} for entry in answer.get("createdPeople") or []]

    def batch_create(self, contacts: Sequence[Mapping[str, Any]], read_mask: Mask) -> list[dict]:
        """All of `iter_batch_create`; if a later chunk fails, earlier chunks stay created."""
        return [person for chunk in self.iter_batch_create(contacts, read_mask) for person in chunk]

    def iter_batch_update(self, contacts: Mapping[str, Mapping[str, Any]], update_mask: Mask,
                          read_mask: Mask) -> Iterator[dict[str, dict]]:
        """Update contacts (resource name -> Person with its etag), <= 200 per call, yielding each
        chunk's `{resource name: updated person}`. Stale etags raise `EtagMismatch` naming them."""
        items = list(contacts.items())
        for chunk in _chunks(items, self.BATCH_UPDATE_MAX):
            body = {"contacts": {name: dict(p) for name, p in chunk}, "updateMask": _mask(update_mask),
                    "readMask": _mask(read_mask)}
            with self._writes:
                answer = self.json("POST", "v1/people:batchUpdateContacts", json=body) or {}
            yield {name: entry.get("person") or {} for name, entry in (answer.get("updateResult") or {}).items()}

    def batch_update(self, contacts: Mapping[str, Mapping[str, Any]], update_mask: Mask,
                     read_mask: Mask) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for chunk in self.iter_batch_update(contacts, update_mask, read_mask):
            out.update(chunk)
        return out

    def batch_delete(self, resource_names: Sequence[str]) -> None:
        """Delete contacts, <= 500 per call. If a chunk names a contact that is already gone, Google
        refuses it with 404; that chunk is then deleted one by one so the rest still goes."""
        for chunk in _chunks(list(dict.fromkeys(resource_names)), self.BATCH_DELETE_MAX):
            try:
                with self._writes:
                    self.json("POST", "v1/people:batchDeleteContacts", json={"resourceNames": list(chunk)})
            except NotFound:
                for name in chunk:
                    self.delete_contact(name)

    # -- plumbing ------------------------------------------------------------------------------------------
    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        token: str | None = None
        while True:
            body = self.json("GET", path, params=dict(params, pageToken=token) if token else params) or {}
            yield body
            token = body.get("nextPageToken") or None
            if token is None:
                return

    def _create(self, path: str, params: dict[str, Any] | None, body: dict[str, Any]) -> Any:
        """A non-idempotent write: retried inside the call only after a quota refusal or a failed
        connection (nothing was done); any other Retriable becomes WriteOutcomeUnknown."""
        url = self.url(path)
        try:
            with self._writes:
                send = lambda: self._send("POST", url, params, body, None, None, None, False, ())  # noqa: E731
                response = self._call("POST", send, may_retry=lambda e: isinstance(e, (QuotaExceeded, Unreachable)))
        except (QuotaExceeded, Unreachable):
            raise   # refused or never sent: nothing was created
        except Retriable as exc:
            raise WriteOutcomeUnknown(f"{exc} (the create may have happened: reconcile by clientData marker "
                                      "before retrying)", exc.retry_after) from exc
        return response.json() if response.content else None


def _resource_id(resource_name: str, collection: str, key: str) -> dict[str, str]:
    """`people/c123` -> {key: "c123"}: the collection is fixed by the caller's template, the id is
    quoted as one segment, so a name like `people/../contactGroups/x` cannot reach another endpoint."""
    prefix = f"{collection}/"
    if not isinstance(resource_name, str) or not resource_name.startswith(prefix) or resource_name == prefix:
        raise ValueError(f"not a {collection} resource name: {resource_name!r}")
    return {key: resource_name[len(prefix):]}


def _person(resource_name: str) -> dict[str, str]:
    return _resource_id(resource_name, "people", "person_id")


def _group(resource_name: str) -> dict[str, str]:
    return _resource_id(resource_name, "contactGroups", "group_id")


def _is_etag_error(status: Mapping[str, Any]) -> bool:
    return status.get("code") == _FAILED_PRECONDITION and bool(_ETAG_TEXT.search(str(status.get("message", ""))))
