"""The Google sandbox itself: accounts, their contacts and labels, sync/page tokens and quotas.

Every change — API call, sandbox page, or a test calling these methods — goes through the same
methods, so the change sequence that sync tokens are built on sees all of them. State lives in
`state.data["google"]` (plain JSON, persisted by SandboxState):

    accounts: {account_id: {id, email, name, seq, people: {pid: record}, groups: {gid: group},
                            aliases: {old_pid: pid}}}
    consents: {client_id: {account_id: {scopes, offline}}}      (OAuth, see oauth.py)
    sync_tokens / page_tokens: {token: {...}}                      (server-side cursors)
    runs: {run_id: {ids, seq, ...}}                                (one listing's snapshot, shared by its page tokens)

`seq` is a per-account change counter: a contact or group changed at seq N is returned by a sync
token issued at any seq < N. Deleted contacts and groups stay as tombstones until every sync token
that could still ask for them has expired."""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from hub.sandbox.common import Faults, SandboxState, TokenAuthority

from . import people as P
from .errors import (ApiError, expired_sync_token, invalid_argument, not_found, rate_limited, stale_etag,
                     unknown_field)

SYSTEM_GROUPS = {"myContacts": "My Contacts", "starred": "Starred"}
ADDABLE_SYSTEM_GROUPS = {"myContacts", "starred"}
DEFAULT_ACCOUNTS = [
    {"email": "anna@sandbox.example", "name": "Anna Schmidt"},
    {"email": "ben@sandbox.example", "name": "Ben Okafor"},
]
GROUP_FIELDS = {"clientData", "groupType", "memberCount", "metadata", "name"}
GROUP_DEFAULT_FIELDS = {"metadata", "groupType", "memberCount", "name"}
# quota buckets: (metric, metric label, limit name, limit label, which option)
QUOTA_BUCKETS = {
    "critical_read": ("people.googleapis.com/critical_read_requests",
                      "Critical read requests (Contact and Profile Reads)",
                      "CriticalReadRequestsPerMinutePerProjectPerUser",
                      "Critical read requests (Contact and Profile Reads) per minute per user", "read"),
    "critical_write": ("people.googleapis.com/critical_write_requests",
                       "Critical write requests (Contact Creates and Updates)",
                       "CriticalWritesPerMinutePerProjectPerUser",
                       "Critical write requests (Contact Creates and Updates) per minute per user", "write"),
    "write": ("people.googleapis.com/write_requests", "Write requests (Contact Deletes and Contact Group Writes)",
              "WritesPerMinutePerProjectPerUser",
              "Write requests (Contact Deletes and Contact Group Writes) per minute per user", "write"),
    "read": ("people.googleapis.com/read_requests", "Read requests (Contact Group Reads)",
             "ReadRequestsPerMinutePerProjectPerUser", "Read requests (Contact Group Reads) per minute per user",
             "read"),
}
PAGE_TOKEN_TTL = 24 * 3600


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def account_id_for(email: str) -> str:
    """A stable 21-digit id like Google's account ids, derived from the e-mail."""
    return "10" + str(int(hashlib.sha256(email.lower().encode()).hexdigest(), 16))[:19]


class GoogleSandbox:
    def __init__(self, state: SandboxState, faults: Faults, options: dict[str, Any] | None = None):
        options = dict(options or {})
        self.state = state
        self.faults = faults
        self.options = options
        self.clock: Callable[[], float] = options.get("clock", time.time)
        self.contact_limit = int(options.get("contact_limit", 25000))
        self.contact_limit_status = int(options.get("contact_limit_status", 400))
        self.quota_limits = {"read": int(options.get("read_quota_per_minute", 6000)),
                             "write": int(options.get("write_quota_per_minute", 6000))}
        self.sync_token_ttl = float(options.get("sync_token_ttl", 7 * 24 * 3600))
        self.auto_my_contacts = bool(options.get("auto_my_contacts", True))
        self.validate_emails = bool(options.get("validate_emails", True))
        from .knobs import KNOBS
        faults.extend(**KNOBS)  # runtime switches of what a sync must survive (knobs.py)
        faults.update({"empty_pages": int(options.get("empty_pages", 0))})
        self.tokens = TokenAuthority(state, faults, prefix="ya29.", access_ttl=int(options.get("access_ttl", 3599)),
                                     clock=self.clock)
        self._quota_lock = threading.Lock()
        self._quota_used: dict[tuple[str, str, int], int] = {}
        with state.change() as data:
            fresh = "google" not in data
            root = data.setdefault("google", {})
            for key in ("accounts", "consents", "sync_tokens", "page_tokens", "runs"):
                root.setdefault(key, {})
            for spec in options.get("accounts") or DEFAULT_ACCOUNTS:
                self._ensure_account(root, spec["email"], spec.get("name") or spec["email"])
        if fresh and options.get("seed", True):
            from .seed import seed_demo_data
            seed_demo_data(self)

    @property
    def empty_pages(self) -> int:
        """The `empty_pages` fault knob (knobs.py), also settable as an attribute by tests."""
        return int(self.faults.knob("empty_pages"))

    @empty_pages.setter
    def empty_pages(self, value: int) -> None:
        self.faults.update({"empty_pages": value})

    # ==== accounts ===================================================================================
    def _ensure_account(self, root: dict, email: str, name: str) -> dict:
        aid = account_id_for(email)
        acct = root["accounts"].get(aid)
        if acct is None:
            now = self.clock()
            acct = root["accounts"][aid] = {"id": aid, "email": email, "name": name, "seq": 0,
                                            "people": {}, "groups": {}, "aliases": {}}
            for gid in SYSTEM_GROUPS:
                acct["groups"][gid] = {"id": gid, "name": gid, "system": True, "clientData": [], "version": 1,
                                       "update_time": iso(now), "updated_at": now, "seq": 0, "deleted": False}
        return acct

    def accounts(self) -> list[dict[str, str]]:
        with self.state.lock:
            return [{"id": a["id"], "email": a["email"], "name": a["name"]}
                    for a in self._root()["accounts"].values()]

    def add_account(self, email: str, name: str | None = None) -> dict[str, str]:
        with self.state.change():
            acct = self._ensure_account(self._root(), email, name or email)
            return {"id": acct["id"], "email": acct["email"], "name": acct["name"]}

    def account(self, key: str) -> dict[str, Any]:
        """The live account dict for an id or e-mail (call under the state lock)."""
        accounts = self._root()["accounts"]
        if key in accounts:
            return accounts[key]
        for acct in accounts.values():
            if acct["email"].lower() == str(key).lower():
                return acct
        raise KeyError(f"no sandbox Google account {key!r}")

    def _root(self) -> dict:
        return self.state.data["google"]

    def _bump(self, acct: dict, item: dict) -> None:
        now = self.clock()
        acct["seq"] += 1
        item["seq"] = acct["seq"]
        item["version"] = item.get("version", 0) + 1
        item["update_time"] = iso(now)
        item["updated_at"] = now

    # ==== quotas =====================================================================================
    def charge(self, account_id: str, **units: int) -> None:
        """Count one call against the per-minute, per-user buckets; 429 when any bucket would overflow."""
        now = self.clock()
        window = int(now // 60)
        with self._quota_lock:
            for key in [k for k in self._quota_used if k[2] < window]:
                del self._quota_used[key]
            for bucket, amount in units.items():
                metric, metric_label, limit, limit_label, option = QUOTA_BUCKETS[bucket]
                allowed = self.quota_limits[option]
                if self._quota_used.get((account_id, bucket, window), 0) + amount > allowed:
                    raise rate_limited(metric, metric_label, limit, limit_label, allowed,
                                       retry_after=max(1, int((window + 1) * 60 - now)))
            for bucket, amount in units.items():
                key = (account_id, bucket, window)
                self._quota_used[key] = self._quota_used.get(key, 0) + amount

    def reset_quotas(self) -> None:
        with self._quota_lock:
            self._quota_used.clear()

    # ==== contacts: internal operations (call under state.change()) ==================================
    def _live_count(self, acct: dict) -> int:
        return sum(1 for r in acct["people"].values() if not r["deleted"])

    def _check_limit(self, acct: dict, adding: int) -> None:
        if self._live_count(acct) + adding > self.contact_limit:
            message = (f"Contact limit exceeded: the account can hold at most {self.contact_limit} contacts.")
            info = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONTACT_LIMIT_EXCEEDED",
                     "domain": "people.googleapis.com",
                     "metadata": {"limit": str(self.contact_limit)}}]
            if self.contact_limit_status == 429:
                raise ApiError(429, "RESOURCE_EXHAUSTED", message, details=info)
            raise ApiError(400, "FAILED_PRECONDITION", message, details=info)

    def _resolve(self, acct: dict, resource_name: str) -> dict:
        if not resource_name.startswith("people/"):
            raise invalid_argument(f"Resource name \"{resource_name}\" is not a valid person resource name.",
                                   "resourceName")
        pid = resource_name[len("people/"):]
        pid = acct["aliases"].get(pid, pid)
        rec = acct["people"].get(pid)
        if rec is None or rec["deleted"]:
            raise not_found()
        return rec

    def _group(self, acct: dict, gid: str) -> dict:
        grp = acct["groups"].get(gid)
        if grp is None or grp["deleted"]:
            raise not_found()
        return grp

    def _prepare(self, acct: dict, body: dict, fields: Iterable[str]) -> tuple[dict[str, list], list[str] | None]:
        """Clean the writable `fields` of `body`; memberships come back as validated group ids."""
        cleaned: dict[str, list] = {}
        groups: list[str] | None = None
        for name in fields:
            if name not in P.UPDATE_FIELDS:
                continue  # output-only fields (photos, coverPhotos ...) are ignored on input
            items = P.clean_field(name, body.get(name), validate_emails=self.validate_emails)
            if name == "memberships":
                groups = P.membership_group_ids(items)
                for gid in groups:
                    grp = acct["groups"].get(gid)
                    if grp is None or grp["deleted"]:
                        raise invalid_argument(f"Contact group resource name \"contactGroups/{gid}\" "
                                               "was not found.", "person.memberships")
                    if grp["system"] and gid not in ADDABLE_SYSTEM_GROUPS:
                        raise invalid_argument(f"Cannot add contacts to system contact group "
                                               f"\"contactGroups/{gid}\".", "person.memberships")
            else:
                cleaned[name] = items
        return cleaned, groups

    def _new_contact(self, acct: dict, body: dict) -> dict:
        P.check_person_body(body)
        cleaned, groups = self._prepare(acct, body, list(body))
        groups = list(groups or [])
        if not groups or (self.auto_my_contacts and "myContacts" not in groups):
            groups.append("myContacts")
        n = self.state.next_id("google_person")
        pid = f"c{3300000000000000000 + n * 104729 + int(acct['id'][-4:])}"
        rec = {"id": pid, "source_id": hashlib.sha256(f"{acct['id']}/{pid}".encode()).hexdigest()[:16],
               "fields": {k: v for k, v in cleaned.items() if v}, "groups": groups,
               "deleted": False, "previous": [], "version": 0}
        self._bump(acct, rec)
        acct["people"][pid] = rec
        return rec

    def _check_etag(self, rec: dict, body: dict) -> None:
        person_etag, source_etag = P.etags(rec)
        given = body.get("etag")
        sources = (body.get("metadata") or {}).get("sources") or []
        contact_sources = [s for s in sources if isinstance(s, dict) and s.get("type") == "CONTACT"]
        if given:
            if given != person_etag:
                raise stale_etag(source_variant=False)
            return
        if not contact_sources:
            raise invalid_argument("Request person.metadata.sources must be set and contain a CONTACT source "
                                   "with its etag (or set person.etag).", "person.metadata.sources")
        if contact_sources[0].get("etag") != source_etag:
            raise stale_etag(source_variant=True)

    def _update_contact(self, acct: dict, resource_name: str, body: dict, update_fields: set[str]) -> dict:
        P.check_person_body(body)
        rec = self._resolve(acct, resource_name)
        if body.get("resourceName") and body["resourceName"] not in (resource_name, f"people/{rec['id']}"):
            raise invalid_argument("Resource name in the request body does not match the one in the path.",
                                   "person.resourceName")
        self._check_etag(rec, body)
        cleaned, groups = self._prepare(acct, body, update_fields)
        if "memberships" in update_fields:
            if not groups:
                raise invalid_argument("A contact must keep at least one contact group membership.",
                                       "person.memberships")
            rec["groups"] = groups
        for name, items in cleaned.items():
            if items:
                rec["fields"][name] = items
            else:
                rec["fields"].pop(name, None)
        self._bump(acct, rec)
        return rec

    def _delete_contact(self, acct: dict, rec: dict) -> None:
        rec["deleted"] = True
        rec["fields"] = {}
        rec["groups"] = []
        self._bump(acct, rec)

    # ==== groups: internal operations ================================================================
    def _new_group(self, acct: dict, name: Any, client_data: Any) -> dict:
        name = self._group_name(acct, name)
        n = self.state.next_id("google_group")
        gid = hashlib.sha256(f"{acct['id']}/group/{n}".encode()).hexdigest()[:16]
        grp = {"id": gid, "name": name, "system": False, "clientData": _group_client_data(client_data),
               "deleted": False, "version": 0}
        self._bump(acct, grp)
        acct["groups"][gid] = grp
        return grp

    def _group_name(self, acct: dict, name: Any, exclude: str | None = None) -> str:
        if not isinstance(name, str) or not name.strip():
            raise invalid_argument("Contact group name must not be empty.", "contactGroup.name")
        if any("\ud800" <= c <= "\udfff" for c in name):   # not Unicode: Google's JSON parser refuses it
            raise invalid_argument("Invalid value at 'contact_group.name' (TYPE_STRING), contains invalid UTF-8",
                                   "contactGroup.name")
        name = name.strip()
        for grp in acct["groups"].values():
            if grp["id"] != exclude and not grp["deleted"] and grp["name"] == name:
                raise ApiError(409, "ALREADY_EXISTS", "Contact group name already exists.")
        return name

    def _members(self, acct: dict, gid: str) -> list[dict]:
        return [r for r in acct["people"].values() if not r["deleted"] and gid in r["groups"]]

    def render_group(self, acct: dict, grp: dict, fields: set[str], *, max_members: int = 0) -> dict:
        out: dict[str, Any] = {"resourceName": f"contactGroups/{grp['id']}",
                               "etag": _group_etag(grp)}
        if grp["deleted"]:  # only sync responses show deleted groups, always with their flag
            out["metadata"] = {"updateTime": grp["update_time"], "deleted": True}
            return out
        if "metadata" in fields:
            out["metadata"] = {"updateTime": grp["update_time"]}
        if "groupType" in fields:
            out["groupType"] = "SYSTEM_CONTACT_GROUP" if grp["system"] else "USER_CONTACT_GROUP"
        if "name" in fields:
            out["name"] = grp["name"]
            out["formattedName"] = SYSTEM_GROUPS.get(grp["id"], grp["name"]) if grp["system"] else grp["name"]
        members = self._members(acct, grp["id"])
        if "memberCount" in fields and members:  # proto3 JSON omits a zero count
            out["memberCount"] = len(members)
        if max_members and members:
            members.sort(key=lambda r: r["seq"])
            out["memberResourceNames"] = [f"people/{r['id']}" for r in members[:max_members]]
        if "clientData" in fields and grp["clientData"]:
            out["clientData"] = [dict(c) for c in grp["clientData"]]
        return out

    # ==== tokens for paging and sync =================================================================
    def _prune_tokens(self, root: dict, now: float) -> None:
        for table in ("page_tokens", "sync_tokens", "runs"):
            tokens = root[table]
            for key in [k for k, v in tokens.items() if v["expires_at"] < now]:
                del tokens[key]

    def issue_sync_token(self, root: dict, acct: dict, kind: str, params: dict, full_sync_at: float,
                         seq: int) -> str:
        """A cursor at change `seq`; it expires `sync_token_ttl` after the FULL sync that started the
        chain ("Sync tokens expire 7 days after the full sync", DD connections.list)."""
        token = "EAE" + secrets.token_urlsafe(30)
        root["sync_tokens"][token] = {"account": acct["id"], "kind": kind, "seq": seq,
                                      "params": params, "full_sync_at": full_sync_at,
                                      "expires_at": full_sync_at + self.sync_token_ttl}
        return token

    def use_sync_token(self, root: dict, acct: dict, token: str, kind: str, now: float) -> dict:
        entry = root["sync_tokens"].get(token)
        if entry is None or entry["account"] != acct["id"] or entry["kind"] != kind or entry["expires_at"] <= now:
            raise expired_sync_token()
        return entry

    def issue_page_token(self, root: dict, acct: dict, kind: str, cursor: dict, now: float) -> str:
        """A token for the page at `cursor["offset"]`; the run's id snapshot is stored once per run,
        not per token, so paging through 25,000 contacts keeps the state small."""
        run_id = cursor.get("run")
        if run_id is None:
            run_id = secrets.token_hex(8)
            root["runs"][run_id] = {k: v for k, v in cursor.items() if k != "offset"}
        root["runs"][run_id]["expires_at"] = now + PAGE_TOKEN_TTL
        token = "GhI" + secrets.token_urlsafe(24)
        root["page_tokens"][token] = {"run": run_id, "offset": cursor["offset"], "account": acct["id"], "kind": kind,
                                      "params": cursor["params"], "expires_at": now + PAGE_TOKEN_TTL}
        return token

    def use_page_token(self, root: dict, acct: dict, token: str, kind: str, params: dict, now: float) -> dict:
        entry = root["page_tokens"].get(token)
        run = root["runs"].get(entry["run"]) if entry else None
        if entry is None or run is None or entry["account"] != acct["id"] or entry["kind"] != kind \
                or entry["expires_at"] <= now:
            raise invalid_argument("Page token is not valid or has expired.", "pageToken")
        if entry["params"] != params:
            raise invalid_argument("Parameters provided with a page token must match the call that "
                                   "produced the page token.", "pageToken")
        return dict(run, run=entry["run"], offset=entry["offset"])

    def expire_sync_tokens(self, account: str | None = None) -> int:
        """Sandbox knob: every (or one account's) sync token is expired from now on."""
        with self.state.change():
            root = self._root()
            aid = self.account(account)["id"] if account else None
            count = 0
            for entry in root["sync_tokens"].values():
                if aid is None or entry["account"] == aid:
                    entry["expires_at"] = min(entry["expires_at"], self.clock() - 1)
                    count += 1
            return count

    def prune_tombstones(self, acct: dict, now: float) -> None:
        """Tombstones outlive every sync token that could still return them, then go."""
        horizon = now - self.sync_token_ttl
        for table in ("people", "groups"):
            for key in [k for k, v in acct[table].items() if v["deleted"] and v["updated_at"] < horizon]:
                del acct[table][key]

    # ==== public helpers for tests, the sandbox page and the hub's demo ==============================
    def contacts(self, account: str, *, include_deleted: bool = False) -> list[dict]:
        """Every contact of an account rendered with all fields (memberships, metadata included)."""
        with self.state.lock:
            acct = self.account(account)
            recs = sorted(acct["people"].values(), key=lambda r: r["seq"])
            return [P.render_person(r, set(P.READ_FIELDS)) for r in recs if include_deleted or not r["deleted"]]

    def contact(self, account: str, resource_name: str) -> dict:
        with self.state.lock:
            return P.render_person(self._resolve(self.account(account), resource_name), set(P.READ_FIELDS))

    def contact_count(self, account: str) -> int:
        with self.state.lock:
            return self._live_count(self.account(account))

    def groups(self, account: str, *, include_system: bool = False) -> list[dict]:
        with self.state.lock:
            acct = self.account(account)
            return [self.render_group(acct, g, GROUP_FIELDS, max_members=100000)
                    for g in acct["groups"].values() if not g["deleted"] and (include_system or not g["system"])]

    def group_by_name(self, account: str, name: str) -> dict | None:
        return next((g for g in self.groups(account, include_system=True) if g["name"] == name), None)

    def create_contact(self, account: str, person: dict) -> dict:
        with self.state.change():
            acct = self.account(account)
            self._check_limit(acct, 1)
            return P.render_person(self._new_contact(acct, person), set(P.READ_FIELDS))

    def update_contact(self, account: str, resource_name: str, changes: dict,
                       fields: Iterable[str] | None = None) -> dict:
        """Replace `fields` (default: the keys of `changes`) of a contact, as a user editing it would;
        the etag is taken from the current contact unless `changes` carries one."""
        with self.state.change():
            acct = self.account(account)
            rec = self._resolve(acct, resource_name)
            body = dict(changes)
            body.setdefault("etag", P.etags(rec)[0])
            mask = set(fields) if fields is not None else set(changes) & P.UPDATE_FIELDS
            return P.render_person(self._update_contact(acct, resource_name, body, mask), set(P.READ_FIELDS))

    def delete_contact(self, account: str, resource_name: str) -> None:
        with self.state.change():
            acct = self.account(account)
            self._delete_contact(acct, self._resolve(acct, resource_name))

    def create_group(self, account: str, name: str, client_data: list[dict] | None = None) -> dict:
        with self.state.change():
            acct = self.account(account)
            return self.render_group(acct, self._new_group(acct, name, client_data or []), GROUP_FIELDS)

    def rename_group(self, account: str, resource_name: str, name: str) -> dict:
        with self.state.change():
            acct = self.account(account)
            grp = self._user_group(acct, resource_name)
            grp["name"] = self._group_name(acct, name, exclude=grp["id"])
            self._bump(acct, grp)
            return self.render_group(acct, grp, GROUP_FIELDS)

    def delete_group(self, account: str, resource_name: str, *, delete_contacts: bool = False) -> None:
        with self.state.change():
            acct = self.account(account)
            self._delete_group(acct, self._user_group(acct, resource_name), delete_contacts)

    def modify_members(self, account: str, resource_name: str, add: Iterable[str] = (),
                       remove: Iterable[str] = ()) -> dict:
        with self.state.change():
            acct = self.account(account)
            return self._modify_members(acct, _group_id(resource_name), list(add), list(remove))

    def relink_contact(self, account: str, resource_name: str) -> str:
        """Give a contact a new resource name, as Google does when a profile gets linked to it; the old
        name is reported in `metadata.previousResourceNames` of sync responses and still resolves."""
        with self.state.change():
            acct = self.account(account)
            return self._relink(acct, self._resolve(acct, resource_name))

    def _relink(self, acct: dict, rec: dict) -> str:
        """A new resource name for a contact (call under state.change()); the old one still resolves."""
        old = rec["id"]
        n = self.state.next_id("google_person")
        new = f"c{3300000000000000000 + n * 104729 + int(acct['id'][-4:])}"
        del acct["people"][old]
        rec["id"] = new
        rec["previous"] = rec.get("previous", []) + [old]
        for alias, target in list(acct["aliases"].items()):
            if target == old:
                acct["aliases"][alias] = new
        acct["aliases"][old] = new
        acct["people"][new] = rec
        self._bump(acct, rec)
        return f"people/{new}"

    # ==== shared internals used by the API and the helpers above =====================================
    def _user_group(self, acct: dict, resource_name: str) -> dict:
        grp = self._group(acct, _group_id(resource_name))
        if grp["system"]:
            raise invalid_argument("System contact groups cannot be modified or deleted.", "resourceName")
        return grp

    def _delete_group(self, acct: dict, grp: dict, delete_contacts: bool) -> None:
        for rec in self._members(acct, grp["id"]):
            if delete_contacts:
                self._delete_contact(acct, rec)
            else:
                rec["groups"] = [g for g in rec["groups"] if g != grp["id"]]
                self._bump(acct, rec)
        grp["deleted"] = True
        self._bump(acct, grp)

    def _modify_members(self, acct: dict, gid: str, add: list[str], remove: list[str]) -> dict:
        if len(add) + len(remove) > 1000:
            raise invalid_argument("Too many resource names: at most 1000 may be added and removed per request.",
                                   "resourceNamesToAdd")
        grp = self._group(acct, gid)
        if add and grp["system"] and gid not in ADDABLE_SYSTEM_GROUPS:
            raise invalid_argument(f"Cannot add contacts to system contact group \"contactGroups/{gid}\".",
                                   "resourceNamesToAdd")
        not_found_names: list[str] = []
        cannot_remove: list[str] = []
        for name in add:
            try:
                rec = self._resolve(acct, name)
            except ApiError:
                not_found_names.append(name)
                continue
            if gid not in rec["groups"]:
                rec["groups"].append(gid)
                self._bump(acct, rec)
        for name in remove:
            try:
                rec = self._resolve(acct, name)
            except ApiError:
                not_found_names.append(name)
                continue
            if gid in rec["groups"]:
                if len(rec["groups"]) == 1:
                    cannot_remove.append(name)
                    continue
                rec["groups"].remove(gid)
                self._bump(acct, rec)
        out: dict[str, list[str]] = {}
        if not_found_names:
            out["notFoundResourceNames"] = not_found_names
        if cannot_remove:
            out["canNotRemoveLastContactGroupResourceNames"] = cannot_remove
        return out


def _group_id(resource_name: str) -> str:
    if not isinstance(resource_name, str) or not resource_name.startswith("contactGroups/") \
            or not resource_name[len("contactGroups/"):]:
        raise invalid_argument(f"Resource name \"{resource_name}\" is not a valid contact group resource name.",
                               "resourceName")
    return resource_name[len("contactGroups/"):]


def _group_etag(grp: dict) -> str:
    digest = hashlib.sha256(f"{grp['id']}:{grp['version']}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _group_client_data(value: Any) -> list[dict[str, str]]:
    if value in (None, []):
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise invalid_argument("Invalid value at 'contactGroup.client_data': expected a list of objects.",
                               "contactGroup.clientData")
    out = []
    for item in value:
        unknown = set(item) - {"key", "value"}
        if unknown:
            raise unknown_field(sorted(unknown)[0], "contact_group.client_data[0]")
        out.append({k: str(item[k]) for k in ("key", "value") if k in item})
    return out
