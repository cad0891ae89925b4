"""People API v1 `people.*` methods: get, batchGet, connections.list (paging + sync), contact writes.

Batch writes are validated completely before anything is applied: one bad contact rejects the
batch with Batch{Create,Update}ContactsErrorDetails and nothing lands (Google leaves partial
behaviour undocumented; all-or-nothing is the case a client can reason about)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from . import knobs
from . import people as P
from .api import bool_arg, int_arg, json_body, require_read, require_write, sources_arg
from .emulator import GoogleSandbox, iso
from .errors import (BATCH_CREATE_DETAILS, BATCH_UPDATE_DETAILS, ApiError, expired_sync_token, invalid_argument,
                     not_found, server_error, unknown_field)

SORT_ORDERS = ("LAST_MODIFIED_ASCENDING", "LAST_MODIFIED_DESCENDING", "FIRST_NAME_ASCENDING",
               "LAST_NAME_ASCENDING")


def _person_fields(required: bool, param: str = "personFields", raw: str | None = None) -> set[str]:
    raw = request.args.get(param) if raw is None else raw
    if raw is None:
        raw = request.args.get("requestMask.includeField")
    return P.parse_mask(raw, P.READ_FIELDS, param, required=required)


def _profile(sb: GoogleSandbox, acct: dict, fields: set[str]) -> dict[str, Any]:
    """`people/me`: the signed-in account's own profile (read-only, sources PROFILE/ACCOUNT)."""
    aid = acct["id"]
    source = {"type": "PROFILE", "id": aid}
    out: dict[str, Any] = {"resourceName": f"people/{aid}", "etag": "%EgMBAi4aAQ" + aid[-6:]}
    if "metadata" in fields:
        out["metadata"] = {"sources": [dict(source, etag="#" + aid[-8:], updateTime=iso(0))],
                           "objectType": "PERSON"}
    given, _, family = acct["name"].partition(" ")
    if "names" in fields:
        out["names"] = [{"metadata": {"primary": True, "source": source}, "displayName": acct["name"],
                         "givenName": given, "familyName": family,
                         "displayNameLastFirst": f"{family}, {given}" if family else given,
                         "unstructuredName": acct["name"]}]
    if "emailAddresses" in fields:
        out["emailAddresses"] = [{"metadata": {"primary": True, "verified": True,
                                               "source": {"type": "ACCOUNT", "id": aid}},
                                  "value": acct["email"]}]
    return out


def register_people_routes(bp: Blueprint, sb: GoogleSandbox) -> None:
    @bp.get("/v1/people/<seg:pid>")
    def people_get(pid: str):
        fields = _person_fields(required=True)
        sources_arg()
        sb.charge(g.account_id, critical_read=1)
        with sb.state.lock:
            acct = sb.account(g.account_id)
            if pid in ("me", acct["id"]):
                return jsonify(_profile(sb, acct, fields))
            require_read()
            return jsonify(P.render_person(sb._resolve(acct, f"people/{pid}"), fields))

    @bp.get("/v1/people:batchGet")
    def people_batch_get():
        require_read()
        fields = _person_fields(required=True)
        sources_arg()
        names = request.args.getlist("resourceNames")
        if not names:
            raise invalid_argument("At least one resourceNames value is required.", "resourceNames")
        if len(names) > 200:
            raise invalid_argument("Too many resourceNames: at most 200 are allowed.", "resourceNames")
        sb.charge(g.account_id, critical_read=1)
        responses = []
        with sb.state.lock:
            acct = sb.account(g.account_id)
            for name in names:
                entry: dict[str, Any] = {"requestedResourceName": name}
                try:
                    if name in ("people/me", f"people/{acct['id']}"):
                        person = _profile(sb, acct, fields)
                    else:
                        person = P.render_person(sb._resolve(acct, name), fields)
                    entry.update(httpStatusCode=200, person=person, status={})
                except ApiError as exc:
                    entry.update(httpStatusCode=exc.http, status=exc.as_status())
                responses.append(entry)
        return jsonify({"responses": responses})

    @bp.get("/v1/people/<seg:pid>/connections")
    def connections_list(pid: str):
        require_read()
        if pid != "me":
            raise invalid_argument("Only people/me is valid for connections.", "resourceName")
        fields = _person_fields(required=True)
        page_size = int_arg("pageSize", 100, 1, 1000, "page_size")
        sort_order = request.args.get("sortOrder") or "LAST_MODIFIED_ASCENDING"
        if sort_order not in SORT_ORDERS:
            raise invalid_argument(f"Invalid value at 'sort_order' (type.googleapis.com/"
                                   f"google.apps.people.v1.ListConnectionsRequest.SortOrder), \"{sort_order}\"",
                                   "sortOrder")
        request_sync = bool_arg("requestSyncToken")
        sync_token = request.args.get("syncToken") or ""
        page_token = request.args.get("pageToken") or ""
        params = {"personFields": sorted(fields), "pageSize": page_size, "sortOrder": sort_order,
                  "sources": sources_arg(), "requestSyncToken": request_sync, "syncToken": sync_token}
        sb.charge(g.account_id, critical_read=1)
        return jsonify(list_connections(sb, g.account_id, fields, params, page_token))

    @bp.post("/v1/people:createContact")
    def create_contact():
        require_write()
        fields = _person_fields(required=False)
        sources_arg()
        body = json_body()
        sb.charge(g.account_id, critical_read=1, critical_write=1)
        with sb.state.change():
            acct = sb.account(g.account_id)
            sb._check_limit(acct, 1)
            rec = sb._new_contact(acct, body)
            knobs.after_write(sb, acct, rec, update=False)
            return jsonify(P.render_person(rec, fields))

    @bp.patch("/v1/people/<seg:pid>:updateContact")
    def update_contact(pid: str):
        require_write()
        raw_mask = request.args.get("updatePersonFields")
        update_fields = P.parse_mask(raw_mask, P.UPDATE_FIELDS, "updatePersonFields", required=True)
        fields = _person_fields(required=False)
        sources_arg()
        body = json_body()
        sb.charge(g.account_id, critical_read=1, critical_write=1)
        with sb.state.change():
            acct = sb.account(g.account_id)
            rec = sb._update_contact(acct, f"people/{pid}", body, update_fields)
            knobs.after_write(sb, acct, rec, update=True)
            return jsonify(P.render_person(rec, fields))

    @bp.delete("/v1/people/<seg:pid>:deleteContact")
    def delete_contact(pid: str):
        require_write()
        sb.charge(g.account_id, write=1)
        with sb.state.change():
            acct = sb.account(g.account_id)
            sb._delete_contact(acct, sb._resolve(acct, f"people/{pid}"))
        return jsonify({})

    @bp.post("/v1/people:batchCreateContacts")
    def batch_create():
        require_write()
        body = _batch_body({"contacts", "readMask", "sources"}, "batch_create_contacts_request")
        contacts = body.get("contacts") or []
        if not isinstance(contacts, list) or not contacts:
            raise invalid_argument("contacts must contain at least one contact.", "contacts")
        if len(contacts) > 200:
            raise invalid_argument("Too many contacts in the request: at most 200 are allowed.", "contacts")
        read_mask = _read_mask(body)
        sources_arg(body.get("sources") or [])
        sb.charge(g.account_id, critical_read=6, critical_write=6)
        with sb.state.change():
            acct = sb.account(g.account_id)
            errors: dict[str, dict] = {}
            for index, item in enumerate(contacts):
                try:
                    if not isinstance(item, dict) or set(item) - {"contactPerson"}:
                        bad = sorted(set(item) - {"contactPerson"}) if isinstance(item, dict) else ["contacts"]
                        raise unknown_field(bad[0], f"contacts[{index}]")
                    person = P.check_person_body(item.get("contactPerson") or {}, f"contacts[{index}].contact_person")
                    sb._prepare(acct, person, list(person))
                except ApiError as exc:
                    errors[str(index)] = exc.as_status()
            if errors:
                raise ApiError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                               details=[{"@type": BATCH_CREATE_DETAILS, "contactErrors": errors}])
            rejected = {"0": knobs.rejected_status()} if sb.faults.take("batch_partial_reject") else {}
            sb._check_limit(acct, len(contacts) - len(rejected))
            created = [sb._new_contact(acct, item.get("contactPerson") or {}) for index, item in enumerate(contacts)
                       if str(index) not in rejected]
            for rec in created:
                knobs.after_write(sb, acct, rec, update=False)
            answer = {"createdPeople": [
                {"httpStatusCode": 200, "person": P.render_person(rec, read_mask), "status": {}}
                for rec in created]} if read_mask else {}
        if rejected:
            raise ApiError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                           details=[{"@type": BATCH_CREATE_DETAILS, "contactErrors": rejected}])
        if sb.faults.take("batch_timeout_after_apply"):
            raise server_error(504)
        return jsonify(answer)

    @bp.post("/v1/people:batchUpdateContacts")
    def batch_update():
        require_write()
        body = _batch_body({"contacts", "readMask", "sources", "updateMask"}, "batch_update_contacts_request")
        contacts = body.get("contacts") or {}
        if not isinstance(contacts, dict) or not contacts:
            raise invalid_argument("contacts must contain at least one contact.", "contacts")
        if len(contacts) > 200:
            raise invalid_argument("Too many contacts in the request: at most 200 are allowed.", "contacts")
        update_fields = P.parse_mask(body.get("updateMask"), P.UPDATE_FIELDS, "updateMask", required=True)
        read_mask = _read_mask(body)
        sources_arg(body.get("sources") or [])
        sb.charge(g.account_id, critical_read=6, critical_write=6)
        with sb.state.change():
            acct = sb.account(g.account_id)
            errors: dict[str, dict] = {}
            for name, person in contacts.items():
                try:
                    P.check_person_body(person, f"contacts[{name}]")
                    rec = sb._resolve(acct, name)
                    sb._check_etag(rec, person)
                    _, groups = sb._prepare(acct, person, update_fields)
                    if "memberships" in update_fields and not groups:
                        raise invalid_argument("A contact must keep at least one contact group membership.",
                                               "person.memberships")
                except ApiError as exc:
                    errors[name] = exc.as_status()
            if errors:
                raise ApiError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                               details=[{"@type": BATCH_UPDATE_DETAILS, "contactErrors": errors}])
            rejected = {next(iter(contacts)): knobs.rejected_status()} if sb.faults.take("batch_partial_reject") else {}
            updated = {name: sb._update_contact(acct, name, person, update_fields)
                       for name, person in contacts.items() if name not in rejected}
            for rec in updated.values():
                knobs.after_write(sb, acct, rec, update=True)
            answer = {"updateResult": {
                name: {"httpStatusCode": 200, "person": P.render_person(rec, read_mask),
                       "requestedResourceName": name, "status": {}}
                for name, rec in updated.items()}} if read_mask else {}
        if rejected:
            raise ApiError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                           details=[{"@type": BATCH_UPDATE_DETAILS, "contactErrors": rejected}])
        if sb.faults.take("batch_timeout_after_apply"):
            raise server_error(504)
        return jsonify(answer)

    @bp.post("/v1/people:batchDeleteContacts")
    def batch_delete():
        require_write()
        body = _batch_body({"resourceNames"}, "batch_delete_contacts_request")
        names = body.get("resourceNames") or []
        if not isinstance(names, list) or not names:
            raise invalid_argument("resourceNames must contain at least one resource name.", "resourceNames")
        if len(names) > 500:
            raise invalid_argument("Too many resourceNames: at most 500 are allowed.", "resourceNames")
        sb.charge(g.account_id, write=10)
        with sb.state.change():
            acct = sb.account(g.account_id)
            records = []
            for name in names:
                try:
                    records.append(sb._resolve(acct, str(name)))
                except ApiError as exc:
                    if exc.http == 404:
                        raise not_found(f"Resource {name} was not found.") from None
                    raise
            for rec in {id(r): r for r in records}.values():
                sb._delete_contact(acct, rec)
        if sb.faults.take("batch_timeout_after_apply"):
            raise server_error(504)
        return jsonify({})


def _batch_body(allowed: set[str], where: str) -> dict[str, Any]:
    body = json_body()
    for key in body:
        if key not in allowed:
            raise unknown_field(key, where)
    return body


def _read_mask(body: dict[str, Any]) -> set[str]:
    """An empty readMask skips the post-write read (DD); otherwise every path must be valid."""
    raw = body.get("readMask") or ""
    return P.parse_mask(raw, P.READ_FIELDS, "readMask", required=False, default=()) if raw else set()


def list_connections(sb: GoogleSandbox, account_id: str, fields: set[str], params: dict,
                     page_token: str) -> dict[str, Any]:
    """One page of people/me/connections: a full listing or the changes since a sync token.

    The set of people a run returns is fixed on its first page (later pages read from that
    snapshot), and the run's nextSyncToken marks the change sequence at that first page, so
    anything that changes while a client pages through is returned by the next sync."""
    now = sb.clock()
    with sb.state.change() as data:
        root = data["google"]
        acct = sb.account(account_id)
        sb._prune_tokens(root, now)
        if page_token:
            cursor = sb.use_page_token(root, acct, page_token, "people", params, now)
            if cursor["sync"] and sb.faults.take("expire_sync_token_mid_run"):
                knobs.expire_account_tokens(root, acct, now)
                raise expired_sync_token()
        else:
            if params["syncToken"]:
                token = sb.use_sync_token(root, acct, params["syncToken"], "people", now)
                if token["params"] != {"personFields": params["personFields"], "sources": params["sources"]}:
                    raise invalid_argument("Parameters provided with a sync token must match the call that "
                                           "produced the sync token.", "syncToken")
                changed = sorted((r for r in acct["people"].values() if r["seq"] > token["seq"]
                                  and not r.get("echo_hold")), key=lambda r: r["seq"])
                ids, sync, full_at = [r["id"] for r in changed], True, token["full_sync_at"]
                total = len(ids)
            else:
                sb.prune_tombstones(acct, now)
                live = [r for r in acct["people"].values() if not r["deleted"]]
                ids, sync, full_at = [r["id"] for r in _sorted(live, params["sortOrder"])], False, now
                total = len(ids)
            cursor = {"ids": ids, "offset": 0, "seq": acct["seq"], "sync": sync, "full_sync_at": full_at,
                      "total": total, "params": params}
            if sync:
                knobs.release_echoes(acct)  # late echoes: left out of this listing, in the next one
        offset, size = cursor["offset"], params["pageSize"]
        if offset < len(cursor["ids"]) and sb.faults.take("empty_pages"):  # an empty page that is not the last
            out = {"nextPageToken": sb.issue_page_token(root, acct, "people", dict(cursor, offset=offset), now)}
            if cursor["total"]:
                out["totalItems"] = cursor["total"]
            return out
        page = []
        for pid in cursor["ids"][offset:offset + size]:
            rec = acct["people"].get(acct["aliases"].get(pid, pid))
            if rec is None or (rec["deleted"] and not cursor["sync"]):
                continue  # deleted mid-listing: a full listing never shows tombstones
            page.append(P.render_person(rec, fields, sync=cursor["sync"]))
        out: dict[str, Any] = {}
        if page:
            out["connections"] = page
        if offset + size < len(cursor["ids"]):
            out["nextPageToken"] = sb.issue_page_token(root, acct, "people", dict(cursor, offset=offset + size), now)
        elif params["requestSyncToken"] or cursor["sync"]:
            out["nextSyncToken"] = sb.issue_sync_token(
                root, acct, "people", {"personFields": params["personFields"], "sources": params["sources"]},
                cursor["full_sync_at"], seq=cursor["seq"])
        if cursor["total"]:
            out["totalItems"] = cursor["total"]
        return out


def _sorted(records: list[dict], order: str) -> list[dict]:
    if order == "LAST_MODIFIED_DESCENDING":
        return sorted(records, key=lambda r: r["seq"], reverse=True)
    if order == "FIRST_NAME_ASCENDING":
        return sorted(records, key=lambda r: (P.sort_key_name(r, "givenName"), r["seq"]))
    if order == "LAST_NAME_ASCENDING":
        return sorted(records, key=lambda r: (P.sort_key_name(r, "familyName"), r["seq"]))
    return sorted(records, key=lambda r: r["seq"])
